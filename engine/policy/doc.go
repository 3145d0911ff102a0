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
// When a set has the default shape (the decision logic of the shipped
// policy, with its own group table, exclusions, roles and simple attribute
// rules), Build also compiles a native decision table from values OPA
// computes, and ordinary teammates are decided in Go, about 200 times
// faster than by OPA and with the same results. OPA remains the definition:
// unusual inputs go to OPA, a sample of the table's decisions is checked
// against OPA, and a disagreement switches the table off for the set (see
// Set.Native).
package policy
