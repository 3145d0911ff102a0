package policy

import (
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// disallowed reports whether scimd refuses a built-in: every built-in OPA
// marks non-deterministic (http.send, time.now_ns, rand.intn,
// net.lookup_ip_addr, uuid.rfc4122, opa.runtime, io.jwt.decode_verify,
// json.match_schema, …) and trace. A decision must be a pure function of
// its input, or re-evaluating only the affected teammates would be unsound.
func disallowed(b *ast.Builtin) bool {
	// trace is deterministic but writes to evaluation traces scimd never
	// shows; it is refused too.
	return b.Nondeterministic || b.Name == "trace"
}

// Capabilities returns OPA's capabilities for this version minus the
// built-ins scimd refuses. The gate compiles policies and tests with them;
// CI can export them (json.Marshal) for `opa check --capabilities`.
func Capabilities() *ast.Capabilities {
	c := ast.CapabilitiesForThisVersion()
	c.Builtins = slices.DeleteFunc(c.Builtins, disallowed)
	return c
}

// DisallowedBuiltins returns the names of the built-ins Capabilities
// removes, sorted.
func DisallowedBuiltins() []string {
	var names []string
	for _, b := range ast.CapabilitiesForThisVersion().Builtins {
		if disallowed(b) {
			names = append(names, b.Name)
		}
	}
	slices.Sort(names)
	return names
}

// scanBuiltins reports every call to a disallowed built-in in modules. The
// compiler would refuse them too ("undefined function"), but this message
// says why.
func scanBuiltins(modules map[string]*ast.Module) []Problem {
	banned := map[string]bool{}
	for _, n := range DisallowedBuiltins() {
		banned[n] = true
	}
	var problems []Problem
	report := func(name string, loc *ast.Location) {
		if !banned[name] {
			return
		}
		p := Problem{Message: fmt.Sprintf("built-in %s is not allowed in scimd policies: "+
			"decisions must depend only on their input (no network, clock, randomness or runtime state)", name)}
		if loc != nil {
			p.File, p.Row, p.Col = loc.File, loc.Row, loc.Col
		}
		problems = append(problems, p)
	}
	for _, name := range sortedKeys(modules) {
		ast.WalkExprs(modules[name], func(e *ast.Expr) bool {
			if e.IsCall() {
				report(e.Operator().String(), e.Location)
			}
			return false
		})
		ast.WalkTerms(modules[name], func(t *ast.Term) bool {
			if c, ok := t.Value.(ast.Call); ok && len(c) > 0 {
				report(c[0].String(), t.Location)
			}
			return false
		})
	}
	return problems
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
