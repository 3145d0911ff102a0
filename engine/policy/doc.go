// Package policy loads, gates and evaluates scimd's Rego policy sets.
//
// A policy set is every *.rego and data file (*.json, *.yaml, *.yml) under a
// policies directory, dot-files and dot-directories excepted. Build turns a
// Source (an in-memory snapshot of those files) into a Set only if the set
//
//   - parses as Rego v1,
//   - calls no non-deterministic built-in (see Capabilities),
//   - compiles with OPA's strict checks,
//   - passes its own *_test.rego tests (the tests `opa test` runs), and
//   - keeps the policy contract: data.scimd.roles is a non-empty array of
//     distinct strings, data.scimd.group and data.scimd.teammate are defined,
//     and no decision names a role outside data.scimd.roles.
//
// Otherwise Build returns a *RefusedError that says which stage refused the
// set and where (file:line).
//
// A Set holds prepared queries and is safe for concurrent use. Its
// evaluation methods (Group, Teammate, TeammateBatch) take all SCIM state as
// input: OPA's store holds only the static data files of the policy set, so a
// decision is a pure function of the policy revision and its input.
//
// OPA decides every teammate. Each revision prepares a fast path for
// data.scimd.teammate with OPA's own mechanisms (partial evaluation,
// folding of input-independent rules through the virtual document cache,
// input projected to what the policy can read, equal inputs decided once,
// batches over all cores) and, when it decides the probe inputs faster,
// the policy compiled to WebAssembly by OPA and run by wazero (wasm.go:
// the engine; wasm_vm.go: an instance and its calls back into Go
// built-ins; wasmfuel.go: the loop bound written into the module;
// wasm_glue.go: the module that lends it memory; wasm_json.go and
// input_json.go: the JSON across the boundary). Its decisions equal those
// of evaluating the query as written on the whole input, which the tests
// check for both engines.
package policy
