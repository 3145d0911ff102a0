package review

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/reconcile"
)

// PlanMarker starts every Markdown plan, so that a CI job can find and
// update its earlier comment on a pull request instead of adding one per
// push.
const PlanMarker = "<!-- scimd-plan -->"

// DefaultMaxRows bounds the teammate rows of a Markdown plan (GitHub
// comments are limited to 65,536 characters); the JSON output is complete.
const DefaultMaxRows = 200

// Display tunes how plans and refusals are written.
type Display struct {
	// Dir is the candidate's directory as the user named it; refusal
	// locations are shown under it ("policies/groups_test.rego:12").
	Dir string
	// MaxRows bounds the rows per Markdown table (0: DefaultMaxRows).
	MaxRows int
}

func (d Display) file(name string) string {
	if d.Dir == "" || name == "" {
		return name
	}
	return path.Join(filepath.ToSlash(d.Dir), name)
}

func (d Display) maxRows() int {
	if d.MaxRows <= 0 {
		return DefaultMaxRows
	}
	return d.MaxRows
}

// ProblemText is "file:line: message" with the file shown under d.Dir.
func (d Display) ProblemText(p policy.Problem) string {
	p.File = d.file(p.File)
	return p.String()
}

// WritePlanText writes r for a terminal, Terraform style: groups whose
// mapping changes, teammates who lose access, change role or gain access
// (with the policy's reasons), the "+N ~M −K" summary and what the
// mass-change guard would do.
func WritePlanText(w io.Writer, r *PlanResult, _ Display) error {
	bw := bufio.NewWriter(w)
	head := fmt.Sprintf("Policy plan: candidate %s against live %s (%s)",
		short(r.Revision), short(r.LiveRevision), plural(r.Teammates, "teammate", "teammates"))
	if r.Commit != "" {
		head += ", commit " + r.Commit
	}
	fmt.Fprintln(bw, head)
	if r.Identical {
		fmt.Fprintln(bw, "The candidate's files are identical to the live policy's.")
	}
	if len(r.Groups) > 0 {
		fmt.Fprintln(bw, "\nGroups:")
		width := 0
		for _, g := range r.Groups {
			width = max(width, len(g.DisplayName))
		}
		for _, g := range r.Groups {
			fmt.Fprintf(bw, "  %s %-*s  %s → %s\n", groupMark(g), width, g.DisplayName, mappingText(g.From), mappingText(g.To))
		}
	}
	secs := sections(r.Changes)
	for k, list := range secs {
		if len(list) == 0 {
			continue
		}
		fmt.Fprintf(bw, "\n%s (%d):\n", sectionTitles[k], len(list))
		width := 0
		for _, d := range list {
			width = max(width, len(d.UserName))
		}
		for _, d := range list {
			demotion := ""
			if d.Demotion && k == kindChanged {
				demotion = "  (demotion)"
			}
			fmt.Fprintf(bw, "  %s %-*s  %s → %s%s\n", kindMarks[k], width, d.UserName, stateText(d.From), stateText(d.To), demotion)
			for _, reason := range d.Reasons {
				fmt.Fprintf(bw, "      %s\n", reason)
			}
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(bw, "\nWarnings (%d):\n", len(r.Warnings))
		for _, g := range r.Warnings {
			fmt.Fprintf(bw, "  ! group %s: %s\n", g.DisplayName, g.Warning)
		}
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(bw, "\nErrors: the candidate could not decide %s (they would be left unchanged and audited as policy.error):\n",
			plural(len(r.Errors), "teammate", "teammates"))
		for _, e := range r.Errors {
			fmt.Fprintf(bw, "  ! %s: %s\n", e.ID, e.Error)
		}
	}
	fmt.Fprintln(bw)
	if !r.HasChanges() && len(r.Errors) == 0 {
		fmt.Fprintln(bw, "No changes: the candidate leaves every teammate's role and access, and every group mapping, as they are.")
	} else {
		fmt.Fprintf(bw, "Plan: %s (%d gain access, %d change role, %d lose access; %s)\n", r.Summary,
			r.Granted, r.Changed, r.Removed, plural(r.Demotions, "demotion", "demotions"))
	}
	if r.HasChanges() {
		fmt.Fprintf(bw, "Guard: %s.\n", guardText(r))
	}
	fmt.Fprintln(bw, "Nothing was applied.")
	return bw.Flush()
}

// WritePlanMarkdown writes r as a pull-request comment: a summary line,
// a warning when the guard would hold it, and tables of group and teammate
// changes. Names from the identity provider are escaped.
func WritePlanMarkdown(w io.Writer, r *PlanResult, d Display) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, PlanMarker)
	fmt.Fprintf(bw, "### scimd plan: `%s`\n\n", r.Summary)
	meta := fmt.Sprintf("Candidate `%s` against live `%s` · %s", mdCode(short(r.Revision)), mdCode(short(r.LiveRevision)),
		plural(r.Teammates, "teammate", "teammates"))
	if r.Commit != "" {
		meta += fmt.Sprintf(" · commit `%s`", mdCode(r.Commit))
	}
	fmt.Fprintf(bw, "%s · %s passed\n\n", meta, plural(r.Tests, "test", "tests"))
	switch {
	case r.WouldHold:
		why := fmt.Sprintf("%d demotions of %d teammates exceed its threshold", r.Demotions, r.Teammates)
		if len(r.HoldReasons) > 0 {
			why = "it " + strings.Join(r.HoldReasons, "; ")
		}
		fmt.Fprintf(bw, "> [!CAUTION]\n> The mass-change guard would **hold** this change: %s. "+
			"After the reload nobody changes until an admin approves it (`scimd changes approve ID`).\n\n", mdCell(why))
	case len(r.Errors) > 0:
		fmt.Fprintf(bw, "> [!WARNING]\n> The candidate could not decide %s; they would be left unchanged.\n\n",
			plural(len(r.Errors), "teammate", "teammates"))
	case !r.HasChanges():
		fmt.Fprintf(bw, "No changes: every teammate keeps their role and access, and every group mapping stays as it is.\n\n")
	}
	if len(r.Groups) > 0 {
		fmt.Fprintf(bw, "#### Groups (%d)\n\n| | Group | Now | After |\n|---|---|---|---|\n", len(r.Groups))
		for i, g := range r.Groups {
			if i == d.maxRows() {
				fmt.Fprintf(bw, "| | … and %d more | | |\n", len(r.Groups)-i)
				break
			}
			fmt.Fprintf(bw, "| %s | %s | %s | %s |\n", groupMark(g), mdCell(g.DisplayName), mappingText(g.From), mappingText(g.To))
		}
		fmt.Fprintln(bw)
	}
	for k, list := range sections(r.Changes) {
		if len(list) == 0 {
			continue
		}
		fmt.Fprintf(bw, "#### %s (%d)\n\n| | Teammate | Now | After | Why |\n|---|---|---|---|---|\n", sectionTitles[k], len(list))
		for i, c := range list {
			if i == d.maxRows() {
				fmt.Fprintf(bw, "| | … and %d more (`scimd plan --format json` lists all) | | | |\n", len(list)-i)
				break
			}
			after := mdCell(stateText(c.To))
			if c.Demotion && k == kindChanged {
				after += " ⬇"
			}
			fmt.Fprintf(bw, "| %s | %s | %s | %s | %s |\n", kindMarks[k], mdCell(c.UserName), mdCell(stateText(c.From)), after,
				mdCell(joinReasons(c.Reasons)))
		}
		fmt.Fprintln(bw)
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(bw, "#### Warnings (%d)\n\n| Group | Warning |\n|---|---|\n", len(r.Warnings))
		for i, g := range r.Warnings {
			if i == d.maxRows() {
				fmt.Fprintf(bw, "| … and %d more | |\n", len(r.Warnings)-i)
				break
			}
			fmt.Fprintf(bw, "| %s | %s |\n", mdCell(g.DisplayName), mdCell(g.Warning))
		}
		fmt.Fprintln(bw)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(bw, "#### Errors (%d)\n\n| Teammate id | Error |\n|---|---|\n", len(r.Errors))
		for i, e := range r.Errors {
			if i == d.maxRows() {
				fmt.Fprintf(bw, "| … and %d more | |\n", len(r.Errors)-i)
				break
			}
			fmt.Fprintf(bw, "| %s | %s |\n", mdCell(e.ID), mdCell(e.Error))
		}
		fmt.Fprintln(bw)
	}
	fmt.Fprintf(bw, "<sub>%d gain access · %d change role · %d lose access · %s · guard: %s. Nothing was applied.</sub>\n",
		r.Granted, r.Changed, r.Removed, plural(r.Demotions, "demotion", "demotions"), guardWord(r))
	return bw.Flush()
}

func guardWord(r *PlanResult) string {
	if r.WouldHold {
		return "would hold"
	}
	return "would not hold"
}

// WriteRefusalText writes why a candidate was refused, with file:line.
func WriteRefusalText(w io.Writer, f *Refusal, d Display) error {
	bw := bufio.NewWriter(w)
	rev := ""
	if f.Revision != "" {
		rev = " " + f.Revision
	}
	fmt.Fprintf(bw, "Policy plan: candidate%s REFUSED at the %s stage; a reload would refuse it too and keep live %s.\n",
		rev, f.Stage, short(f.LiveRevision))
	for _, p := range f.Problems {
		fmt.Fprintf(bw, "  %s\n", d.ProblemText(p))
	}
	for _, t := range f.FailedTests {
		if t.Output != "" {
			fmt.Fprintf(bw, "\n%s output:\n", testName(t))
			for l := range strings.Lines(t.Output) {
				fmt.Fprintf(bw, "  %s", l)
			}
			fmt.Fprintln(bw)
		}
	}
	if f.Tests > 0 {
		fmt.Fprintf(bw, "%d of %d tests failed.\n", len(f.FailedTests), f.Tests)
	}
	fmt.Fprintln(bw, "Nothing was applied.")
	return bw.Flush()
}

// WriteRefusalMarkdown writes a refusal as a pull-request comment.
func WriteRefusalMarkdown(w io.Writer, f *Refusal, d Display) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, PlanMarker)
	fmt.Fprintf(bw, "### scimd plan: refused at the %s stage\n\n", mdCell(f.Stage))
	fmt.Fprintf(bw, "> [!CAUTION]\n> scimd would refuse this policy on reload and keep live `%s`.", mdCode(short(f.LiveRevision)))
	if f.Tests > 0 {
		fmt.Fprintf(bw, " %d of %d tests failed.", len(f.FailedTests), f.Tests)
	}
	fmt.Fprint(bw, "\n\n| Where | Problem |\n|---|---|\n")
	for i, p := range f.Problems {
		if i == d.maxRows() {
			fmt.Fprintf(bw, "| … | and %d more |\n", len(f.Problems)-i)
			break
		}
		loc := p.Location()
		if p.File != "" {
			p.File = d.file(p.File)
			loc = p.Location()
		}
		if loc != "" {
			loc = "`" + mdCode(loc) + "`"
		}
		fmt.Fprintf(bw, "| %s | %s |\n", loc, mdCell(p.Message))
	}
	fmt.Fprintln(bw, "\n<sub>Nothing was applied.</sub>")
	return bw.Flush()
}

func testName(t policy.TestResult) string { return t.Package + "." + t.Name }

// mdCell escapes text for a Markdown table cell: characters that Markdown
// or HTML would interpret are escaped, so that a name chosen in the
// identity provider cannot inject links, HTML or table columns into a
// comment.
func mdCell(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\n', '\r':
			b.WriteByte(' ')
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '|', '\\', '`', '*', '_', '[', ']', '(', ')', '#', '~', '!', '@':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// mdCode makes s safe inside a single-backtick code span.
func mdCode(s string) string { return strings.NewReplacer("`", "'", "\n", " ", "\r", " ").Replace(s) }

// DiffText describes one teammate change on a line: "alice: support → admin".
func DiffText(d reconcile.Diff) string {
	return fmt.Sprintf("%s: %s → %s", d.UserName, stateText(d.From), stateText(d.To))
}
