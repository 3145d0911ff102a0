package policy

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
)

// Queries of the policy contract.
const (
	QueryRoles    = "data.scimd.roles"
	QueryGroup    = "data.scimd.group"
	QueryTeammate = "data.scimd.teammate"
)

// Set is a policy set that passed the gate: prepared queries plus the
// metadata audit events need. It is safe for concurrent use and immutable
// (but for the memo of its fast path, which only remembers decisions).
type Set struct {
	revision string
	digest   string
	commit   string
	files    []string
	loadedAt time.Time
	tests    []TestResult

	roles []string
	rank  map[string]int

	group    rego.PreparedEvalQuery
	teammate rego.PreparedEvalQuery

	// compiler holds the compiled production modules (explanations).
	compiler *ast.Compiler
	// fast is the prepared fast path of data.scimd.teammate.
	fast *evaluator
}

// Revision identifies the set: digest prefix, plus "@commit" in a git work
// tree. Every decision carries it.
func (s *Set) Revision() string { return s.revision }

// Digest is the full hex SHA-256 of the set's files (see Source.Digest).
func (s *Set) Digest() string { return s.digest }

// Commit is the git commit the set was read at, or "".
func (s *Set) Commit() string { return s.commit }

// Files lists the set's files, relative to the policies directory, sorted.
func (s *Set) Files() []string { return slices.Clone(s.files) }

// LoadedAt is when the set passed the gate.
func (s *Set) LoadedAt() time.Time { return s.loadedAt }

// Tests returns the results of the set's tests (empty if they were skipped).
func (s *Set) Tests() []TestResult { return slices.Clone(s.tests) }

// Roles returns data.scimd.roles: the valid roles, highest precedence first.
func (s *Set) Roles() []string { return slices.Clone(s.roles) }

// HasRole reports whether role is one of data.scimd.roles.
func (s *Set) HasRole(role string) bool {
	_, ok := s.rank[role]
	return ok
}

// asTerm makes evaluation results come back as AST terms, which decisions
// are read from directly instead of through a JSON-like Go copy.
func asTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// prepare prepares the decision queries against the compiled production
// modules and the store of static data files, and evaluates
// data.scimd.roles. It returns the roles term (nil when undefined) for the
// contract check.
func (s *Set) prepare(ctx context.Context, prod map[string]*ast.Module, compiler *ast.Compiler, store storage.Store) (*ast.Term, error) {
	newQuery := func(q string) (rego.PreparedEvalQuery, error) {
		return rego.New(
			rego.Query(q),
			rego.Compiler(compiler),
			rego.Store(store),
			rego.GenerateJSON(asTerm),
		).PrepareForEval(ctx)
	}
	s.compiler = compiler
	var err error
	if s.group, err = newQuery(QueryGroup); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", QueryGroup, err)
	}
	if s.teammate, err = newQuery(QueryTeammate); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", QueryTeammate, err)
	}
	if s.fast, err = newEvaluator(ctx, prod, store, probeInputs(compiler)); err != nil {
		return nil, fmt.Errorf("prepare the evaluation of %s: %w", QueryTeammate, err)
	}
	if err := s.fast.useWasm(ctx, prod, store, probeInputs(compiler)); err != nil {
		return nil, fmt.Errorf("prepare the evaluation of %s: %w", QueryTeammate, err)
	}
	rolesQ, err := newQuery(QueryRoles)
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", QueryRoles, err)
	}
	rs, err := rolesQ.Eval(ctx, rego.EvalParsedInput(ast.NewObject()))
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", QueryRoles, err)
	}
	if len(rs) == 0 {
		return nil, nil
	}
	t := rs[0].Expressions[0].Value.(*ast.Term)
	s.roles, _ = stringArray(t)
	s.rank = make(map[string]int, len(s.roles))
	for i, r := range s.roles {
		if _, dup := s.rank[r]; !dup {
			s.rank[r] = i
		}
	}
	return t, nil
}

// stringArray returns the strings of an array term, and whether t was an
// array of strings only.
func stringArray(t *ast.Term) ([]string, bool) {
	arr, ok := t.Value.(*ast.Array)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, arr.Len())
	for i := range arr.Len() {
		s, ok := arr.Elem(i).Value.(ast.String)
		if !ok {
			return nil, false
		}
		out = append(out, string(s))
	}
	return out, true
}

// maxProbeInputs bounds the inputs the fast path is prepared with.
const maxProbeInputs = 12

// probeInputs are teammates made of the policy's own string constants (as
// group names and attribute values), on which partial evaluation's
// residual is compared with the query.
func probeInputs(c *ast.Compiler) []ast.Value {
	strs := stringConstants(c)
	ins := []TeammateInput{{User: map[string]any{"id": "probe", "userName": "probe", "active": true}}}
	var all []Group
	step := max(1, len(strs)/(maxProbeInputs-2))
	for i := 0; i < len(strs); i += step {
		str := strs[i]
		g := Group{ID: str, ExternalID: str, DisplayName: str}
		all = append(all, g)
		if len(ins) < maxProbeInputs-1 {
			ins = append(ins, TeammateInput{
				User: map[string]any{
					"id": "probe", "userName": str, "active": true, "title": str, "userType": str,
					"emails":          []any{map[string]any{"value": str, "primary": true}},
					enterpriseUserURN: map[string]any{"department": str, "costCenter": str},
				},
				Groups:  []Group{g},
				Current: Current{Role: str, Access: true},
			})
		}
	}
	ins = append(ins, TeammateInput{User: map[string]any{"id": "probe", "userName": "probe", "active": true}, Groups: all})
	out := make([]ast.Value, 0, len(ins))
	for _, in := range ins {
		if v, err := in.Value(); err == nil {
			out = append(out, v)
		}
	}
	return out
}
