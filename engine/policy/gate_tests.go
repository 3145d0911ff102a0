package policy

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/tester"
)

// Test outcomes, as `opa test` prints them.
const (
	OutcomePass  = "PASS"
	OutcomeFail  = "FAIL"
	OutcomeError = "ERROR"
	OutcomeSkip  = "SKIPPED"
)

// TestResult is the result of one test_* rule of a policy set.
type TestResult struct {
	// Package is the test's package, e.g. "data.scimd_test".
	Package string `json:"package"`
	// Name is the rule name, e.g. "test_admin_wins".
	Name string `json:"name"`
	// File and Row locate the test, File relative to the policies directory.
	File string `json:"file"`
	Row  int    `json:"row"`
	// Outcome is OutcomePass, OutcomeFail, OutcomeError or OutcomeSkip.
	Outcome  string        `json:"outcome"`
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration"`
	// Output is what the test print()ed.
	Output string `json:"output,omitempty"`
}

// Failed reports whether the test failed or raised an error.
func (r TestResult) Failed() bool { return r.Outcome == OutcomeFail || r.Outcome == OutcomeError }

func (r TestResult) problem() Problem {
	msg := fmt.Sprintf("test %s.%s failed", r.Package, r.Name)
	if r.Outcome == OutcomeError {
		msg = fmt.Sprintf("test %s.%s raised an error: %s", r.Package, r.Name, r.Error)
	}
	return Problem{File: r.File, Row: r.Row, Message: msg}
}

const defaultTestTimeout = 5 * time.Second

// runTests runs every test_* rule in modules in process, with the tester
// `opa test` uses, compiled with scimd's capabilities and strict checks. It
// returns a *RefusedError when the tests do not compile, one fails, or there
// are none.
func runTests(ctx context.Context, modules map[string]*ast.Module, store storage.Store, timeout time.Duration) ([]TestResult, error) {
	if timeout <= 0 {
		timeout = defaultTestTimeout
	}
	ch, err := tester.NewRunner().
		SetCompiler(newCompiler().WithEnablePrintStatements(true)).
		SetStore(store).
		SetModules(modules).
		CapturePrintOutput(true).
		SetTimeout(timeout).
		RunTests(ctx, nil)
	if err != nil {
		return nil, refuse(StageCompile, "", problemsOf(err)...)
	}
	var results []TestResult
	for r := range ch {
		results = append(results, convertResult(r))
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("policy tests: %w", err)
	}
	slices.SortFunc(results, func(a, b TestResult) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Row, b.Row), cmp.Compare(a.Name, b.Name))
	})
	if len(results) == 0 {
		return nil, refuse(StageTest, "", Problem{Message: "no tests: a policy set needs *_test.rego files with test_* rules"})
	}
	var problems []Problem
	for _, r := range results {
		if r.Failed() {
			problems = append(problems, r.problem())
		}
	}
	if len(problems) > 0 {
		return nil, &RefusedError{Stage: StageTest, Problems: problems, Tests: results}
	}
	return results, nil
}

func convertResult(r *tester.Result) TestResult {
	tr := TestResult{
		Package:  r.Package,
		Name:     r.Name,
		Duration: r.Duration,
		Output:   string(r.Output),
		Outcome:  OutcomePass,
	}
	if r.Location != nil {
		tr.File, tr.Row = r.Location.File, r.Location.Row
	}
	switch {
	case r.Skip:
		tr.Outcome = OutcomeSkip
	case r.Error != nil:
		tr.Outcome, tr.Error = OutcomeError, r.Error.Error()
	case r.Fail:
		tr.Outcome = OutcomeFail
	}
	return tr
}
