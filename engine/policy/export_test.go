package policy

import (
	"context"
)

// PlainTeammate evaluates data.scimd.teammate as written on the whole
// input, without the fast path: the reference of differential tests.
func PlainTeammate(ctx context.Context, s *Set, in TeammateInput) (Decision, error) {
	v, err := in.Value()
	if err != nil {
		return Decision{}, err
	}
	return s.plainTeammate(ctx, v)
}

// ForgetDecisions empties s's memo of decisions.
func ForgetDecisions(s *Set) { s.fast.memo.forget() }

// InputPaths is the projection of s's fast path, as text.
func InputPaths(s *Set) string { return s.fast.proj.String() }

// Residual is the residual of partial evaluation, and whether it
// simplified the query.
func Residual(s *Set) (string, bool) { return s.fast.residual, s.fast.partial }

// StaticRules names the rules folded once per revision.
func StaticRules(s *Set) []string { return s.fast.staticRules }

// DisableMemo makes s decide every input with OPA, even one it decided
// before: for benchmarks of one decision.
func DisableMemo(s *Set) { s.fast.memo.off = true }

// Engine says which evaluator decides s's teammates.
func Engine(s *Set) string { return s.fast.engine }

// SetFuel sets how many loop iterations one decision of s's compiled
// policy may take.
func SetFuel(s *Set, n int64) {
	if s.fast.compiled != nil {
		s.fast.compiled.maxFuel = n
	}
}

// UseCompiled makes s decide with its policy compiled to WebAssembly (when
// OPA compiled it) or with OPA's interpreter, whichever was measured
// faster, and reports whether it could.
func UseCompiled(s *Set, compiled bool) bool {
	if compiled && s.fast.compiled == nil {
		return false
	}
	s.fast.wasm = nil
	if compiled {
		s.fast.wasm = s.fast.compiled
	}
	return true
}
