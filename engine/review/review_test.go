package review

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/reconcile"
)

func st(role string, access bool) reconcile.State {
	return reconcile.State{Role: role, Access: access, Exists: true}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		plan reconcile.Plan
		want int
	}{
		{"nothing", reconcile.Plan{}, ExitNoChange},
		{"group mapping only", reconcile.Plan{Groups: []reconcile.GroupChange{{ID: "g"}}}, ExitChanges},
		{"teammate change", reconcile.Plan{Changes: []reconcile.Diff{{ID: "u"}}}, ExitChanges},
		{"held", reconcile.Plan{Changes: []reconcile.Diff{{ID: "u"}}, WouldHold: true}, ExitHeld},
		{"errors win", reconcile.Plan{WouldHold: true, Errors: []reconcile.PlanError{{ID: "u", Error: "boom"}}}, ExitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &PlanResult{Plan: tt.plan}
			if got := r.ExitCode(); got != tt.want {
				t.Fatalf("ExitCode = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	if got, want := Summary(3, 2, 1), "+3 ~2 \u22121"; got != want {
		t.Fatalf("Summary = %q, want %q", got, want)
	}
}

func samplePlan() *PlanResult {
	p := reconcile.Plan{
		Revision: "cand", LiveRevision: "live", Teammates: 20,
		Changes: []reconcile.Diff{
			{ID: "1", UserName: "gina@example.com", From: st("", false), To: st("viewer", true), Reasons: []string{`member of group "Eng" → viewer`}},
			{ID: "2", UserName: "hal@example.com", From: st("admin", true), To: st("support", true), Demotion: true},
			{ID: "3", UserName: "ivy@example.com", From: st("support", true), To: st("", false), Demotion: true},
		},
		Groups:  []reconcile.GroupChange{{ID: "g", DisplayName: "Eng", To: reconcile.GroupMapping{Active: true, Role: "viewer"}}},
		Granted: 1, Changed: 1, Removed: 1, Demotions: 2,
	}
	return &PlanResult{Plan: p, Summary: Summary(1, 1, 1), Tests: 7}
}

func TestWritePlanText(t *testing.T) {
	var b bytes.Buffer
	if err := WritePlanText(&b, samplePlan(), Display{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"candidate cand against live live (20 teammates)",
		"+ Eng  inactive → viewer",
		"Lose access (1):\n  - ivy@example.com  support → no access",
		"~ hal@example.com  admin → support  (demotion)",
		"+ gina@example.com  no access → viewer\n      member of group \"Eng\" → viewer",
		"Plan: +1 ~1 \u22121",
		"Guard: would apply directly (2 demotions of 20 teammates",
		"Nothing was applied.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text plan lacks %q:\n%s", want, out)
		}
	}
	// Removals come before role changes, which come before grants.
	if strings.Index(out, "ivy@") > strings.Index(out, "hal@") || strings.Index(out, "hal@") > strings.Index(out, "gina@") {
		t.Errorf("sections out of order:\n%s", out)
	}
}

func TestWritePlanMarkdown(t *testing.T) {
	p := samplePlan()
	p.WouldHold = true
	p.Changes[0].UserName = `<img src=x onerror=alert(1)>|@org/team`
	var b bytes.Buffer
	if err := WritePlanMarkdown(&b, p, Display{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{PlanMarker, "### scimd plan: `+1 ~1 \u22121`", "[!CAUTION]", "**hold**",
		"| + | Eng | inactive | viewer |", "| - | ivy\\@example.com | support | no access |", "admin | support ⬇"} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown plan lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"<img", "|@org", " @org"} {
		if strings.Contains(out, bad) {
			t.Errorf("markdown plan contains unescaped %q:\n%s", bad, out)
		}
	}
}

func TestWritePlanMarkdownCapsRows(t *testing.T) {
	p := &PlanResult{Summary: Summary(30, 0, 0)}
	for i := range 30 {
		p.Changes = append(p.Changes, reconcile.Diff{ID: fmt.Sprint(i), UserName: fmt.Sprintf("u%02d", i), From: st("", false), To: st("viewer", true)})
	}
	var b bytes.Buffer
	if err := WritePlanMarkdown(&b, p, Display{MaxRows: 10}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "| + | u"); n != 10 || !strings.Contains(b.String(), "and 20 more") {
		t.Fatalf("rows = %d, want 10 and a note of 20 more:\n%s", n, b.String())
	}
}

func TestWriteRefusal(t *testing.T) {
	re := &policy.RefusedError{Stage: policy.StageTest, Revision: "abc",
		Problems: []policy.Problem{{File: "groups_test.rego", Row: 12, Message: "test data.scimd_test.test_x failed"}},
		Tests: []policy.TestResult{{Name: "test_x", Package: "data.scimd_test", File: "groups_test.rego", Row: 12, Outcome: policy.OutcomeFail},
			{Name: "test_y", Outcome: policy.OutcomePass}}}
	ref := NewRefusal(re, nil, "")
	tests := []struct {
		name  string
		write func(*bytes.Buffer) error
		want  []string
	}{
		{"text", func(b *bytes.Buffer) error { return WriteRefusalText(b, ref, Display{Dir: "policies"}) },
			[]string{"REFUSED at the test stage", "policies/groups_test.rego:12: test data.scimd_test.test_x failed", "1 of 2 tests failed"}},
		{"markdown", func(b *bytes.Buffer) error { return WriteRefusalMarkdown(b, ref, Display{Dir: "policies/"}) },
			[]string{PlanMarker, "refused at the test stage", "`policies/groups_test.rego:12`", "test\\_x failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.write(&b); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("refusal lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

// chain builds n sealed events.
func chain(t *testing.T, n int) []audit.Event {
	t.Helper()
	prev := audit.GenesisHash
	out := make([]audit.Event, n)
	for i := range n {
		e, err := audit.Seal(audit.Event{Time: time.Unix(int64(1700000000+i), 0), Type: audit.TypeUserCreated,
			Actor: audit.Actor{Kind: "token", Name: "okta"}, Target: audit.Target{Type: "User", ID: fmt.Sprint(i)},
			Details: map[string]any{"n": i}}, uint64(i+1), prev)
		if err != nil {
			t.Fatal(err)
		}
		out[i], prev = e, e.Hash
	}
	return out
}

func pages(events []audit.Event) PageFunc {
	return func(_ context.Context, after uint64, limit int) ([]audit.Event, error) {
		var out []audit.Event
		for _, e := range events {
			if e.Seq > after && len(out) < limit {
				out = append(out, e)
			}
		}
		return out, nil
	}
}

func TestVerify(t *testing.T) {
	const n = 2500 // more than one page
	good := chain(t, n)
	head := ChainHead{Seq: 2000, Hash: good[1999].Hash}
	tests := []struct {
		name     string
		tamper   func([]audit.Event) []audit.Event
		expect   *ChainHead
		brokenAt uint64
		reason   string
	}{
		{"intact", nil, nil, 0, ""},
		{"intact with expected head", nil, &head, 0, ""},
		{"edited", func(es []audit.Event) []audit.Event { es[1499].Actor.Name = "mallory"; return es }, nil, 1500, "edited"},
		{"edited and rehashed", func(es []audit.Event) []audit.Event {
			es[9].Actor.Name = "mallory"
			es[9].Hash, _ = audit.ComputeHash(es[9])
			return es
		}, nil, 11, "previous hash"},
		{"deleted", func(es []audit.Event) []audit.Event { return append(es[:41:41], es[42:]...) }, nil, 43, "sequence gap"},
		{"first deleted", func(es []audit.Event) []audit.Event { return es[1:] }, nil, 2, "previous hash"},
		{"tail removed", func(es []audit.Event) []audit.Event { return es[:1800] }, &head, 2000, "removed"},
		{"tail rewritten", func(es []audit.Event) []audit.Event {
			prev := es[1998].Hash
			for i := 1999; i < len(es); i++ {
				es[i].Actor.Name = "mallory"
				es[i], _ = audit.Seal(es[i], es[i].Seq, prev)
				prev = es[i].Hash
			}
			return es
		}, &head, 2000, "rewritten"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := append([]audit.Event(nil), good...)
			if tt.tamper != nil {
				es = tt.tamper(es)
			}
			res, err := Verify(context.Background(), pages(es), tt.expect)
			if err != nil {
				t.Fatal(err)
			}
			if tt.brokenAt == 0 {
				if !res.OK || res.Events != n || res.Head.Seq != n {
					t.Fatalf("result = %+v, want OK with %d events", res, n)
				}
				return
			}
			if res.OK || res.BrokenAt != tt.brokenAt || !strings.Contains(res.Reason, tt.reason) {
				t.Fatalf("result = ok %v brokenAt %d reason %q, want broken at %d (%s)", res.OK, res.BrokenAt, res.Reason, tt.brokenAt, tt.reason)
			}
		})
	}
}

func TestVerifyReportsCorruptRowAndReadErrors(t *testing.T) {
	good := chain(t, 5)
	corrupt := func(_ context.Context, after uint64, _ int) ([]audit.Event, error) {
		if after == 0 {
			return good[:2], &CorruptEventError{Seq: 3, Err: errors.New("bad json")}
		}
		return nil, nil
	}
	res, err := Verify(context.Background(), corrupt, nil)
	if err != nil || res.OK || res.BrokenAt != 3 || res.Events != 2 {
		t.Fatalf("corrupt row: %+v, %v", res, err)
	}
	failing := func(context.Context, uint64, int) ([]audit.Event, error) { return nil, errors.New("disk gone") }
	if _, err := Verify(context.Background(), failing, nil); err == nil {
		t.Fatal("a read error was not returned")
	}
}

func TestParseChainHead(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	tests := []struct {
		in   string
		ok   bool
		want ChainHead
	}{
		{"12:" + hash, true, ChainHead{Seq: 12, Hash: hash}},
		{" 12:" + strings.ToUpper(hash) + " ", true, ChainHead{Seq: 12, Hash: hash}},
		{"0:" + hash, false, ChainHead{}},
		{"12", false, ChainHead{}},
		{"x:" + hash, false, ChainHead{}},
		{"12:abc", false, ChainHead{}},
	}
	for _, tt := range tests {
		got, err := ParseChainHead(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseChainHead(%q) = %v, %v", tt.in, got, err)
		}
		if tt.ok && got.String() != fmt.Sprintf("%d:%s", tt.want.Seq, tt.want.Hash) {
			t.Errorf("String() = %q", got.String())
		}
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		name    string
		e       audit.Event
		subject string
		want    string
	}{
		{"member added, from the member's view",
			audit.Event{Type: audit.TypeGroupPatched, Target: audit.Target{Type: "Group", ID: "g", Name: "Admins"},
				Details: map[string]any{"membersAdded": []any{"u1", "u2"}}}, "u2", "added to group Admins"},
		{"member removed", audit.Event{Type: audit.TypeGroupPatched, Target: audit.Target{Name: "Admins"},
			Details: map[string]any{"membersRemoved": []string{"u1"}}}, "u1", "removed from group Admins"},
		{"group counts", audit.Event{Type: audit.TypeGroupPatched, Target: audit.Target{Name: "Admins"},
			Details: map[string]any{"membersAdded": []any{"u1"}, "membersRemoved": []any{"u2", "u3"}}}, "", "updated group Admins, +1 members, \u22122 members"},
		{"rename", audit.Event{Type: audit.TypeGroupPatched, Target: audit.Target{Name: "B"},
			Change: &audit.Change{From: map[string]any{"name": "A"}, To: map[string]any{"name": "B"}}}, "", "renamed group A → B"},
		{"deactivated", audit.Event{Type: audit.TypeUserPatched, Target: audit.Target{Name: "bob"},
			Change: &audit.Change{From: map[string]any{"active": true}, To: map[string]any{"active": "False"}}}, "", "deactivated user bob"},
		{"teammate change", audit.Event{Type: audit.TypeTeammateRoleChanged, Target: audit.Target{Name: "bob"},
			Change: &audit.Change{From: map[string]any{"role": "support", "access": true, "exists": true},
				To: map[string]any{"role": "admin", "access": true, "exists": true}}}, "", "bob role.changed: support → admin"},
		{"teammate created", audit.Event{Type: audit.TypeTeammateCreated, Target: audit.Target{Name: "bob"},
			Change: &audit.Change{To: map[string]any{"exists": true}}}, "", "bob created: new → no access"},
		{"planned", audit.Event{Type: audit.TypePolicyPlanned, Target: audit.Target{ID: "c"},
			Details: map[string]any{"liveRevision": "l", "summary": "+1 ~0 \u22120", "outcome": "planned"}}, "", "planned policy c against l: +1 ~0 \u22120"},
		{"planned and refused", audit.Event{Type: audit.TypePolicyPlanned, Target: audit.Target{ID: "c"}, Reasons: []string{"x.rego:1: boom"},
			Details: map[string]any{"liveRevision": "l", "outcome": "refused", "stage": "parse"}}, "", "planned policy c against l: refused at the parse stage: x.rego:1: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DescribeFor(tt.e, tt.subject); got != tt.want {
				t.Fatalf("DescribeFor = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHistoryGroupsEventsAndResolvesCauses(t *testing.T) {
	at := time.Unix(1700000000, 0).UTC()
	state := func(role string, access bool) map[string]any {
		return map[string]any{"role": role, "access": access, "excluded": false, "exists": true}
	}
	cause := map[string]any{"cause": map[string]any{"kind": "scim", "actor": "okta", "requestId": "r1", "auditSeqs": []any{float64(10)}}}
	events := []audit.Event{
		{Seq: 11, Time: at, Type: audit.TypeDecision, Target: audit.Target{ID: "u"}},
		{Seq: 12, Time: at, Type: audit.TypeAccessGranted, Target: audit.Target{ID: "u"}, DecisionID: "d1", RequestID: "r1",
			Change: &audit.Change{From: state("", false), To: state("admin", true)}, Details: cause},
		{Seq: 13, Time: at, Type: audit.TypeTeammateRoleChanged, Target: audit.Target{ID: "u"}, DecisionID: "d1", RequestID: "r1",
			Change: &audit.Change{From: state("", false), To: state("admin", true)}, Details: cause},
		{Seq: 20, Time: at.Add(time.Hour), Type: audit.TypeRoleManual, Actor: audit.Actor{Kind: "admin", Name: "root"},
			Target: audit.Target{ID: "u"}, Change: &audit.Change{From: state("admin", true), To: state("viewer", true)}},
	}
	lookup := func(_ context.Context, seq uint64) (*audit.Event, error) {
		if seq != 10 {
			return nil, nil
		}
		return &audit.Event{Seq: 10, Type: audit.TypeGroupPatched, Actor: audit.Actor{Kind: "token", Name: "okta"},
			Target: audit.Target{Type: "Group", ID: "g", Name: "Intercom Admins"}, Details: map[string]any{"membersAdded": []any{"u"}}}, nil
	}
	h, err := History(context.Background(), "u", events, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 {
		t.Fatalf("history = %+v, want 2 entries", h)
	}
	if got := fmt.Sprint(h[0].Seqs); got != "[12 13]" || h[0].To.Role != "admin" || h[0].Cause == nil ||
		h[0].Cause.Text != "identity provider (okta): added to group Intercom Admins" || len(h[0].Cause.Events) != 1 {
		t.Fatalf("first entry = %+v cause %+v", h[0], h[0].Cause)
	}
	if h[1].Cause == nil || h[1].Cause.Kind != "manual" || !strings.Contains(h[1].Cause.Text, "root") {
		t.Fatalf("manual entry cause = %+v", h[1].Cause)
	}
	var b bytes.Buffer
	if err := WriteHistoryText(&b, h); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "no access → admin  (teammate.access.granted, teammate.role.changed; audit 12-13)") {
		t.Fatalf("history text:\n%s", b.String())
	}
}

func TestBuildReport(t *testing.T) {
	tms := []reconcile.TeammateView{
		{Teammate: reconcile.Teammate{ID: "1", UserName: "ann", Role: "admin", Access: true, Reasons: []string{"member of Admins"}}, Groups: []string{"Admins", "Eng"}},
		{Teammate: reconcile.Teammate{ID: "2", UserName: "=cmd|' /C calc'!A0", Role: "support", Access: true, Reasons: []string{"department"}}, Groups: []string{"Eng"}},
		{Teammate: reconcile.Teammate{ID: "3", UserName: "glass", Role: "admin", Access: true, Excluded: true, Manual: &reconcile.ManualChange{Role: "admin"}}},
		{Teammate: reconcile.Teammate{ID: "4", UserName: "dan"}, Groups: []string{"Eng"}},
	}
	groups := []reconcile.GroupView{
		{ID: "g1", DisplayName: "Eng", Members: []string{"1", "2", "4", "nested"}},
		{ID: "g2", DisplayName: "Admins", Active: true, Role: "admin", Members: []string{"1"}},
	}
	r := BuildReport(tms, groups, []string{"admin", "support", "viewer"}, "rev", 7, time.Unix(0, 0))
	if r.Totals != (ReportTotals{Teammates: 4, Access: 3, Excluded: 1, Unmapped: 2}) {
		t.Fatalf("totals = %+v", r.Totals)
	}
	if fmt.Sprint(r.Roles) != "[{admin [ann glass]} {support [=cmd|' /C calc'!A0]} {viewer []}]" {
		t.Fatalf("roles = %v", r.Roles)
	}
	if r.Groups[0].DisplayName != "Admins" || fmt.Sprint(r.Groups[1].Members) != "[=cmd|' /C calc'!A0 ann dan nested]" {
		t.Fatalf("groups = %+v", r.Groups)
	}
	if len(r.Unmapped) != 2 || r.Unmapped[0].ID != "2" || r.Unmapped[1].UserName != "glass" {
		t.Fatalf("unmapped = %+v", r.Unmapped)
	}
	var md bytes.Buffer
	if err := WriteReportMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| Admins | admin | ann |", "| Eng | inactive |", "## Excluded from provisioning (1)", "| glass | admin | yes | set by hand |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown report lacks %q:\n%s", want, md.String())
		}
	}
	var c bytes.Buffer
	if err := WriteReportCSV(&c, r); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&c).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 || strings.Join(rows[0], ",") != strings.Join(CSVHeader, ",") {
		t.Fatalf("csv rows = %v", rows)
	}
	if rows[1][0] != "'=cmd|' /C calc'!A0" {
		t.Fatalf("formula not defused: %q", rows[1][0])
	}
}

// TestPlanListsExclusionsApart: a teammate newly excluded (or no longer
// excluded) with the same role is not a role change: it has its own
// section in the text and Markdown plans; and group warnings are shown.
func TestPlanListsExclusionsApart(t *testing.T) {
	p := samplePlan()
	excluded := st("support", true)
	excluded.Excluded = true
	p.Changes = append(p.Changes, reconcile.Diff{ID: "4", UserName: "jo@example.com", From: st("support", true), To: excluded,
		Reasons: []string{`excluded: externalId matches "bg-1"`}})
	p.Exclusions = 1
	p.Warnings = []reconcile.GroupWarning{{ID: "g", DisplayName: "Eng", ExternalID: "00g", Warning: "mapped by its display name"}}
	for name, write := range map[string]func(*bytes.Buffer) error{
		"text":     func(b *bytes.Buffer) error { return WritePlanText(b, p, Display{}) },
		"markdown": func(b *bytes.Buffer) error { return WritePlanMarkdown(b, p, Display{}) },
	} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := write(&b); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			change, excl := strings.Index(out, "Change role (1)"), strings.Index(out, "Exclusion from provisioning changes (1)")
			if change < 0 || excl < 0 {
				t.Fatalf("plan lacks the role change or the exclusion section:\n%s", out)
			}
			jo := strings.Index(out, "jo@example.com")
			if jo < 0 {
				jo = strings.Index(out, `jo\@example.com`) // escaped in Markdown
			}
			if jo < excl {
				t.Errorf("the exclusion is listed before its section (under change role):\n%s", out)
			}
			if !strings.Contains(out, "Warnings (1)") || !strings.Contains(out, "mapped by its display name") {
				t.Errorf("plan lacks the group warning:\n%s", out)
			}
		})
	}
}
