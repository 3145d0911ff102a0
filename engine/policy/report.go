package policy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// RunTests runs the full gate on dir, as the server does before activating
// a set, and writes an `opa test -v`-like report to w: PASS/FAIL per test,
// a summary, and, if the set is refused, why, with file:line. ok is true
// when the set would be activated. err is non-nil only when the gate could
// not run (for example ctx ended); a refused set is ok=false, err=nil.
func RunTests(ctx context.Context, dir string, w io.Writer) (ok bool, err error) {
	return runGate(ctx, dir, w, BuildOptions{})
}

// Check compiles dir and checks the policy contract without running its
// tests (`scimd policy check`), and writes the outcome to w. ok and err
// mean what they mean for RunTests.
func Check(ctx context.Context, dir string, w io.Writer) (ok bool, err error) {
	return runGate(ctx, dir, w, BuildOptions{SkipTests: true})
}

func runGate(ctx context.Context, dir string, w io.Writer, opts BuildOptions) (bool, error) {
	src, err := ReadDir(dir)
	if err != nil {
		fmt.Fprintf(w, "REFUSED at %s stage:\n  %v\n", StageRead, err)
		return false, nil
	}
	set, err := Build(ctx, src, opts)
	var refused *RefusedError
	if err != nil && !errors.As(err, &refused) {
		return false, err
	}
	tests := []TestResult(nil)
	if set != nil {
		tests = set.tests
	} else {
		tests = refused.Tests
	}
	if !opts.SkipTests {
		writeTests(w, src, tests)
	}
	if refused != nil {
		fmt.Fprintf(w, "REFUSED at %s stage (revision %s):\n", refused.Stage, refused.Revision)
		for _, p := range refused.Problems {
			p.File = src.display(p.File)
			fmt.Fprintf(w, "  %s\n", p)
		}
		return false, nil
	}
	what := "compiles and keeps the policy contract"
	if !opts.SkipTests {
		what = "passes its tests and keeps the policy contract"
	}
	fmt.Fprintf(w, "OK: revision %s %s (%d files; roles, highest first: %s)\n",
		set.Revision(), what, len(set.files), strings.Join(set.roles, ", "))
	return true, nil
}

// writeTests prints results grouped by file, like `opa test -v`.
func writeTests(w io.Writer, src *Source, tests []TestResult) {
	if len(tests) == 0 {
		return
	}
	file := ""
	counts := map[string]int{}
	for _, t := range tests {
		if t.File != file {
			if file != "" {
				fmt.Fprintln(w)
			}
			file = t.File
			fmt.Fprintf(w, "%s:\n", src.display(file))
		}
		counts[t.Outcome]++
		line := fmt.Sprintf("%s.%s: %s", t.Package, t.Name, t.Outcome)
		if t.Outcome != OutcomeSkip {
			line += fmt.Sprintf(" (%s)", t.Duration)
		}
		if t.Failed() {
			line = fmt.Sprintf("%s:%d: %s", src.display(t.File), t.Row, line)
		}
		fmt.Fprintln(w, line)
		if t.Error != "" {
			fmt.Fprintf(w, "  %s\n", t.Error)
		}
		if t.Failed() && t.Output != "" {
			for l := range strings.Lines(t.Output) {
				fmt.Fprintf(w, "  %s", l)
			}
		}
	}
	fmt.Fprintln(w, strings.Repeat("-", 80))
	for _, o := range []string{OutcomePass, OutcomeFail, OutcomeError, OutcomeSkip} {
		if counts[o] > 0 {
			fmt.Fprintf(w, "%s: %d/%d\n", o, counts[o], len(tests))
		}
	}
}
