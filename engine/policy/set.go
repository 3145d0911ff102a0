package policy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
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
// metadata audit events need. It is safe for concurrent use, and immutable
// but for one thing: its native decision table, when it has one, is
// switched off for good if it ever disagrees with OPA (see Native).
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
	// teammates evaluates data.scimd.teammate for each element of
	// input.batch in one evaluation (see TeammateBatch).
	teammates rego.PreparedEvalQuery

	// log receives the oracle's reports (nil: slog.Default()).
	log *slog.Logger
	// native is the native decision table and why there is none.
	native atomic.Pointer[nativeState]
	// oracleN counts the native decisions offered to the oracle.
	oracleN atomic.Int64
}

// nativeState is a set's native decision table (nil when there is none)
// and, when there is none, why.
type nativeState struct {
	table  *nativeTable
	reason string
}

// Native reports whether the set decides teammates with a native decision
// table (Go code built from the policy's data, checked against OPA) rather
// than with OPA alone, and when it does not, why: the policy does not have
// the default shape, or the table disagreed with OPA and was switched off.
// Decisions are the same either way; only their cost differs.
func (s *Set) Native() (bool, string) {
	st := s.native.Load()
	if st == nil {
		return false, "no native decision table was built"
	}
	return st.table != nil, st.reason
}

// nativeTable returns the active native table, or nil.
func (s *Set) nativeTable() *nativeTable {
	if st := s.native.Load(); st != nil {
		return st.table
	}
	return nil
}

func (s *Set) logger() *slog.Logger {
	if s.log != nil {
		return s.log
	}
	return slog.Default()
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
func (s *Set) prepare(ctx context.Context, compiler *ast.Compiler, store storage.Store) (*ast.Term, error) {
	newQuery := func(q string) (rego.PreparedEvalQuery, error) {
		return rego.New(
			rego.Query(q),
			rego.Compiler(compiler),
			rego.Store(store),
			rego.GenerateJSON(asTerm),
		).PrepareForEval(ctx)
	}
	var err error
	if s.group, err = newQuery(QueryGroup); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", QueryGroup, err)
	}
	if s.teammate, err = newQuery(QueryTeammate); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", QueryTeammate, err)
	}
	if s.teammates, err = newQuery(batchQuery); err != nil {
		return nil, fmt.Errorf("prepare %s for a batch: %w", QueryTeammate, err)
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
