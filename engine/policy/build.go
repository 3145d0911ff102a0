package policy

import (
	"context"
	"errors"
	"fmt"
	"testing/fstest"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// BuildOptions tune the gate.
type BuildOptions struct {
	// SkipTests compiles and checks the contract without running the
	// *_test.rego tests (`scimd policy check`). Never use it to activate.
	SkipTests bool
	// TestTimeout bounds each test; 0 means 5 s, as in `opa test`.
	TestTimeout time.Duration
	// Now stamps Set.LoadedAt; nil means time.Now.
	Now func() time.Time
}

// LoadDir reads dir and runs the full gate on it.
func LoadDir(ctx context.Context, dir string) (*Set, error) {
	src, err := ReadDir(dir)
	if err != nil {
		return nil, &RefusedError{Stage: StageRead, Problems: []Problem{{Message: err.Error()}}}
	}
	return Build(ctx, src, BuildOptions{})
}

// LoadFiles runs the full gate on in-memory files (slash-separated paths
// relative to a policies directory), without reading or activating anything.
// `scimd plan` uses it to compile and test a candidate set.
func LoadFiles(ctx context.Context, files map[string][]byte) (*Set, error) {
	src, err := NewSource(files)
	if err != nil {
		return nil, &RefusedError{Stage: StageRead, Problems: []Problem{{Message: err.Error()}}}
	}
	return Build(ctx, src, BuildOptions{})
}

// Build runs the gate on src: parse, built-in scan, strict compile, tests,
// contract. It returns the prepared Set, or a *RefusedError. Any other
// error means ctx ended before the gate could decide.
func Build(ctx context.Context, src *Source, opts BuildOptions) (*Set, error) {
	digest := src.Digest()
	rev := revision(digest, src.Commit)
	if len(src.Files) == 0 {
		return nil, refuse(StageRead, rev, Problem{Message: "no policy files (*.rego) found"})
	}

	res, err := parse(src)
	if err != nil {
		return nil, refuse(StageParse, rev, problemsOf(err)...)
	}
	all := res.ParsedModules()
	prod := map[string]*ast.Module{}
	for name, m := range all {
		if !IsTestFile(name) {
			prod[name] = m
		}
	}
	if len(prod) == 0 {
		return nil, refuse(StageRead, rev, Problem{Message: "no policy modules: only *_test.rego files found"})
	}
	if ps := scanBuiltins(all); len(ps) > 0 {
		return nil, refuse(StageBuiltin, rev, ps...)
	}

	compiler := newCompiler()
	if compiler.Compile(prod); compiler.Failed() {
		return nil, refuse(StageCompile, rev, problemsOf(compiler.Errors)...)
	}
	if ps := checkRules(compiler); len(ps) > 0 {
		return nil, refuse(StageContract, rev, ps...)
	}

	store := inmem.NewFromObjectWithOpts(res.Documents, inmem.OptRoundTripOnWrite(false))

	var tests []TestResult
	if !opts.SkipTests {
		tests, err = runTests(ctx, all, store, opts.TestTimeout)
		if err != nil {
			var re *RefusedError
			if errors.As(err, &re) {
				re.Revision = rev
				return nil, re
			}
			return nil, fmt.Errorf("policy %s: run tests: %w", rev, err)
		}
	}

	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	s := &Set{
		revision: rev,
		digest:   digest,
		commit:   src.Commit,
		files:    src.Names(),
		loadedAt: now(),
		tests:    tests,
	}
	rolesTerm, err := s.prepare(ctx, prod, compiler, store)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, fmt.Errorf("policy %s: %w", rev, ctxErr)
	}
	if err != nil {
		return nil, refuse(StageCompile, rev, problemsOf(err)...)
	}
	ps := s.checkContract(ctx, compiler, rolesTerm)
	if ctxErr := ctx.Err(); ctxErr != nil { // probes failed because ctx ended
		return nil, fmt.Errorf("policy %s: %w", rev, ctxErr)
	}
	if len(ps) > 0 {
		return nil, &RefusedError{Stage: StageContract, Revision: rev, Problems: ps, Tests: tests}
	}
	return s, nil
}

// parse loads src through OPA's loader (Rego v1, data files merged under
// data as `opa test DIR` does), from memory so that what is compiled is
// exactly what was digested.
func parse(src *Source) (*loader.Result, error) {
	fsys := make(fstest.MapFS, len(src.Files))
	for name, b := range src.Files {
		fsys[name] = &fstest.MapFile{Data: b, Mode: 0o444}
	}
	return loader.NewFileLoader().
		WithFS(fsys).
		WithRegoVersion(ast.RegoV1).
		WithCapabilities(Capabilities()).
		WithProcessAnnotation(true).
		All([]string{"."})
}

// newCompiler returns a strict Rego v1 compiler with scimd's capabilities.
func newCompiler() *ast.Compiler {
	return ast.NewCompiler().
		WithCapabilities(Capabilities()).
		WithStrict(true).
		WithDefaultRegoVersion(ast.RegoV1)
}

// problemsOf turns parser, compiler and loader errors into located problems.
func problemsOf(err error) []Problem {
	var ps []Problem
	var add func(err error)
	add = func(err error) {
		var astErrs ast.Errors
		var astErr *ast.Error
		var loadErrs loader.Errors
		switch {
		case errors.As(err, &loadErrs):
			for _, e := range loadErrs {
				add(e)
			}
		case errors.As(err, &astErrs):
			for _, e := range astErrs {
				add(e)
			}
		case errors.As(err, &astErr):
			p := Problem{Message: astErr.Code + ": " + astErr.Message}
			if astErr.Location != nil {
				p.File, p.Row, p.Col = astErr.Location.File, astErr.Location.Row, astErr.Location.Col
			}
			ps = append(ps, p)
		default:
			ps = append(ps, Problem{Message: err.Error()})
		}
	}
	add(err)
	return ps
}
