package console

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/scimd/scimd/audit"
)

// FuzzContainsFold checks the allocation-free search against the obvious
// definition.
func FuzzContainsFold(f *testing.F) {
	for _, s := range [][2]string{{"Alice@Example.com", "example"}, {"bob", "BOB"}, {"Åsa", "åS"}, {"", ""}, {"abc", "abcd"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, s, q string) {
		lowered := strings.ToLower(q)
		want := strings.Contains(strings.ToLower(s), lowered)
		if got := containsFold(s, lowered); got != want {
			t.Fatalf("containsFold(%q, %q) = %v, want %v", s, lowered, got, want)
		}
	})
}

// FuzzPlanMarkdown checks that whatever a plan request carried (commit,
// reasons, revisions), the rendered plan has no markup of its own: no
// element other than the ones the template makes, no script URL.
func FuzzPlanMarkdown(f *testing.F) {
	f.Add("abc123", "<script>alert(1)</script>", "[x](javascript:alert(1))", "planned")
	f.Add("`code`", "**bold** <img src=x onerror=alert(1)>", "| a | b |\n|---|---|", "refused")
	f.Add("<a href=\"javascript:x\">", "&lt;script&gt;", "![i](javascript:alert(1))", "")
	f.Fuzz(func(t *testing.T, commit, reason, revision, outcome string) {
		if !utf8.ValidString(commit + reason + revision + outcome) {
			t.Skip()
		}
		e := audit.Event{Seq: 1, Time: time.Unix(0, 0), Type: audit.TypePolicyPlanned, Actor: audit.Actor{Name: reason},
			Reasons: []string{reason, revision},
			Details: map[string]any{"outcome": outcome, "commit": commit, "revision": revision, "summary": reason}}
		out := strings.ToLower(string(renderMarkdown(planMarkdown(e))))
		for _, bad := range []string{"<script", "<img", "<a ", `href="javascript`, `src="javascript`, "<iframe", "<svg", " on"} {
			if bad == " on" {
				if strings.Contains(out, "<") && containsAttrOn(out) {
					t.Fatalf("event handler attribute in %q", out)
				}
				continue
			}
			if strings.Contains(out, bad) {
				t.Fatalf("rendered plan contains %q:\n%s", bad, out)
			}
		}
	})
}

// containsAttrOn reports an on…= attribute inside a tag.
func containsAttrOn(html string) bool {
	inTag := false
	for i := 0; i < len(html); i++ {
		switch html[i] {
		case '<':
			inTag = true
		case '>':
			inTag = false
		case ' ':
			if inTag && strings.HasPrefix(html[i+1:], "on") {
				return true
			}
		}
	}
	return false
}
