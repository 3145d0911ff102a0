package app_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/review"
	"github.com/scimd/scimd/scim/store/sqlite"
)

// liveFiles reads the live policy directory as a plan request's files.
func (e *env) liveFiles() map[string]string {
	e.t.Helper()
	files := map[string]string{}
	entries, err := os.ReadDir(e.policies)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, de := range entries {
		b, err := os.ReadFile(filepath.Join(e.policies, de.Name()))
		if err != nil {
			e.t.Fatal(err)
		}
		files[de.Name()] = string(b)
	}
	return files
}

// teammateStates maps every teammate id to "role/access/excluded".
func (e *env) teammateStates() map[string]string {
	e.t.Helper()
	var out struct{ Teammates []teammate }
	if err := json.Unmarshal(e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/teammates", adminToken, nil, 200), &out); err != nil {
		e.t.Fatal(err)
	}
	m := map[string]string{}
	for _, tm := range out.Teammates {
		m[tm.ID] = fmt.Sprintf("%s/%v/%v", tm.role(), tm.Access, tm.Excluded)
	}
	return m
}

// verifyChain asks the server to verify the audit chain.
func (e *env) verifyChain(query string) review.VerifyResult {
	e.t.Helper()
	var res review.VerifyResult
	if err := json.Unmarshal(e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/audit/verify?"+query, adminToken, nil, 200), &res); err != nil {
		e.t.Fatal(err)
	}
	return res
}

// approvePending approves every pending change and waits for it.
func (e *env) approvePending() {
	e.t.Helper()
	var out struct {
		Changes []struct{ ID string } `json:"changes"`
	}
	if err := json.Unmarshal(e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/changes?state=pending", adminToken, nil, 200), &out); err != nil {
		e.t.Fatal(err)
	}
	for _, c := range out.Changes {
		e.mustDo(http.MethodPost, e.srv.URL+"/api/v1/changes/"+c.ID+"/approve", adminToken, nil, 200)
	}
	e.idle()
}

func (e *env) lastSeq() uint64 {
	e.t.Helper()
	res := e.verifyChain("")
	if res.Head == nil {
		return 0
	}
	return res.Head.Seq
}

// planSetup is a live state for plans: 12 members of "Platform Admins"
// (mapped to admin), 2 of the unmapped "Engineering", 1 viewer.
func planSetup(t *testing.T) (e *env, admins, engineers []string) {
	e = newEnv(t)
	for i := range 12 {
		admins = append(admins, e.createUser(fmt.Sprintf("admin%02d@example.com", i), nil))
	}
	engineers = []string{e.createUser("eng0@example.com", nil), e.createUser("eng1@example.com", nil)}
	viewer := e.createUser("viewer@example.com", nil)
	e.createGroup("Platform Admins", admins...)
	e.createGroup("Engineering", engineers...)
	e.createGroup("Intercom Viewers", viewer)
	e.editPolicy("groups.rego", mapGroup("Platform Admins", "admin"))
	e.approvePending() // granting admin to 12 is held by the escalation guard
	for _, id := range admins {
		e.expect(id, "admin", true)
	}
	return e, admins, engineers
}

func TestPlanAgainstLiveState(t *testing.T) {
	e, admins, engineers := planSetup(t)
	failingTest := "\ntest_engineering_is_mapped if {\n\tscimd.group == {\"role\": \"support\"} with input as {\"group\": {\"displayName\": \"Engineering\"}}\n}\n"
	tests := []struct {
		name   string
		edit   func(files map[string]string)
		status int
		check  func(t *testing.T, body []byte)
	}{
		{
			name:   "a new mapped group grants exactly its members",
			edit:   func(f map[string]string) { f["groups.rego"] = mapGroup("Engineering", "support")(f["groups.rego"]) },
			status: http.StatusOK,
			check: func(t *testing.T, body []byte) {
				var res review.PlanResult
				mustJSON(t, body, &res)
				var got []string
				for _, c := range res.Changes {
					if c.From.Access || !c.To.Access || c.To.Role != "support" {
						t.Errorf("change %+v, want no access → support", c)
					}
					got = append(got, c.ID)
				}
				slices.Sort(got)
				want := slices.Sorted(slices.Values(engineers))
				if !slices.Equal(got, want) || res.Granted != 2 || res.Changed+res.Removed != 0 || res.WouldHold {
					t.Fatalf("plan changes %v (+%d ~%d −%d, hold %v), want exactly %v gaining access", got, res.Granted, res.Changed, res.Removed, res.WouldHold, want)
				}
				if len(res.Groups) != 1 || res.Groups[0].DisplayName != "Engineering" || res.Groups[0].From.Active || res.Groups[0].To.Role != "support" {
					t.Fatalf("group changes %+v", res.Groups)
				}
				if res.ExitCode() != review.ExitChanges || res.Summary != review.Summary(2, 0, 0) || res.Teammates != 15 {
					t.Fatalf("exit %d summary %q teammates %d", res.ExitCode(), res.Summary, res.Teammates)
				}
			},
		},
		{
			name: "unmapping the admin group is held by the guard",
			edit: func(f map[string]string) {
				f["groups.rego"] = strings.Replace(f["groups.rego"], "\t\"Platform Admins\": \"admin\",\n", "", 1)
			},
			status: http.StatusOK,
			check: func(t *testing.T, body []byte) {
				var res review.PlanResult
				mustJSON(t, body, &res)
				if res.Removed != len(admins) || res.Demotions != len(admins) || !res.WouldHold || res.ExitCode() != review.ExitHeld {
					t.Fatalf("plan −%d, %d demotions, hold %v; want %d removals held", res.Removed, res.Demotions, res.WouldHold, len(admins))
				}
			},
		},
		{
			name:   "a failing test refuses the candidate and names it",
			edit:   func(f map[string]string) { f["groups_test.rego"] += failingTest },
			status: http.StatusUnprocessableEntity,
			check: func(t *testing.T, body []byte) {
				var ref review.Refusal
				mustJSON(t, body, &ref)
				row := strings.Count(e.liveFiles()["groups_test.rego"], "\n") + 2
				if ref.Stage != "test" || len(ref.Problems) != 1 || ref.Problems[0].File != "groups_test.rego" || ref.Problems[0].Row != row ||
					!strings.Contains(ref.Problems[0].Message, "test_engineering_is_mapped") || len(ref.FailedTests) != 1 {
					t.Fatalf("refusal = %+v, want the failing test at groups_test.rego:%d", ref, row)
				}
			},
		},
		{
			name:   "a candidate that does not parse is refused with file:line",
			edit:   func(f map[string]string) { f["broken.rego"] = "package scimd\n\nx := \n" },
			status: http.StatusUnprocessableEntity,
			check: func(t *testing.T, body []byte) {
				var ref review.Refusal
				mustJSON(t, body, &ref)
				if ref.Stage != "parse" || len(ref.Problems) == 0 || ref.Problems[0].File != "broken.rego" || ref.Problems[0].Row == 0 {
					t.Fatalf("refusal = %+v", ref)
				}
			},
		},
		{
			name:   "the live policy changes nothing",
			edit:   func(map[string]string) {},
			status: http.StatusOK,
			check: func(t *testing.T, body []byte) {
				var res review.PlanResult
				mustJSON(t, body, &res)
				if !res.Identical || res.HasChanges() || res.ExitCode() != review.ExitNoChange || res.Revision != res.LiveRevision {
					t.Fatalf("identical candidate: %+v", res)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			liveRev, states, before := e.policyRevision(), e.teammateStates(), e.lastSeq()
			files := e.liveFiles()
			tt.edit(files)
			status, body := e.do(http.MethodPost, e.srv.URL+"/api/v1/plan", adminToken, review.PlanRequest{Files: files, Commit: "0123456789abcdef"})
			if status != tt.status {
				t.Fatalf("POST /api/v1/plan = %d %s, want %d", status, body, tt.status)
			}
			tt.check(t, body)

			// Nothing applied: same revision, same teammates, and the one
			// write is the policy.planned event.
			e.idle()
			if got := e.policyRevision(); got != liveRev {
				t.Fatalf("live revision %s → %s", liveRev, got)
			}
			if got := e.teammateStates(); !mapsEqual(got, states) {
				t.Fatalf("teammates changed by a plan:\n%v\n→\n%v", states, got)
			}
			after := e.audit(fmt.Sprintf("after=%d", before))
			if len(after) != 1 || after[0].Type != audit.TypePolicyPlanned || after[0].Actor.Kind != "admin" || after[0].Details["liveRevision"] != liveRev {
				t.Fatalf("audit after a plan = %+v, want one policy.planned event by the admin", after)
			}
			if after[0].Details["commit"] != "0123456789abcdef" {
				t.Fatalf("planned event details = %v", after[0].Details)
			}
			if tt.status == http.StatusOK {
				var res review.PlanResult
				mustJSON(t, body, &res)
				if after[0].Target.ID != res.Revision || after[0].Details["summary"] != res.Summary || after[0].Details["wouldHold"] != res.WouldHold {
					t.Fatalf("planned event %+v does not match the plan %s %s", after[0], res.Revision, res.Summary)
				}
			} else if after[0].Details["outcome"] != "refused" {
				t.Fatalf("refused plan event details = %v", after[0].Details)
			}
		})
	}

	t.Run("bad requests", func(t *testing.T) {
		for _, body := range []any{map[string]any{}, map[string]any{"files": map[string]string{}}, map[string]any{"filez": 1}} {
			if status, b := e.do(http.MethodPost, e.srv.URL+"/api/v1/plan", adminToken, body); status != http.StatusBadRequest {
				t.Errorf("POST %v = %d %s, want 400", body, status, b)
			}
		}
		if status, _ := e.do(http.MethodPost, e.srv.URL+"/api/v1/plan", e.token, review.PlanRequest{Files: e.liveFiles()}); status != http.StatusForbidden {
			t.Errorf("a SCIM token may plan: %d", status)
		}
	})
}

func mustJSON(t tb, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// tamper runs SQL on the stopped server's database.
func tamper(t *testing.T, dataDir, query string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%s changed %d rows, want 1", query, n)
	}
}

func TestAuditVerifyNamesTheEditedEvent(t *testing.T) {
	e := newEnv(t)
	support := e.createGroup("Intercom Support")
	alice := e.createUser("alice@example.com", nil)
	e.addMembers(support, alice)
	e.expect(alice, "support", true)

	res := e.verifyChain("")
	if !res.OK || res.Head == nil || res.Events != res.Head.Seq || res.Events < 5 {
		t.Fatalf("verify on a real run = %+v", res)
	}
	head := *res.Head
	granted := e.audit("teammate=" + alice + "&type=" + audit.TypeAccessGranted)
	if len(granted) != 1 {
		t.Fatalf("access granted events: %d", len(granted))
	}
	target := granted[0].Seq

	// An expected head is found.
	if res := e.verifyChain("expect=" + url.QueryEscape(head.String())); !res.OK {
		t.Fatalf("verify with the current head as expected = %+v", res)
	}

	e.stop()
	tamper(t, e.data, `UPDATE audit SET data = json_set(data, '$.change.to.role', 'admin') WHERE seq = ?`, target)

	// Offline, read-only, on the stopped server's data directory.
	log, err := review.OpenOffline(context.Background(), e.data)
	if err != nil {
		t.Fatal(err)
	}
	off, err := review.Verify(context.Background(), log.Page, nil)
	log.Close()
	if err != nil {
		t.Fatal(err)
	}
	if off.OK || off.BrokenAt != target || off.Events != target-1 || !strings.Contains(off.Reason, "edited") ||
		off.Broken == nil || off.Broken.Type != audit.TypeAccessGranted {
		t.Fatalf("offline verify after editing event %d = %+v", target, off)
	}

	// Through the API after a restart: the server keeps appending after
	// the edit, and still names the edited event.
	e.start()
	e.createUser("bob@example.com", nil)
	res = e.verifyChain("")
	if res.OK || res.BrokenAt != target || res.Broken == nil || res.Broken.Seq != target {
		t.Fatalf("API verify after editing event %d = %+v", target, res)
	}
}

func TestAuditVerifyDetectsRemovedEvents(t *testing.T) {
	e := newEnv(t)
	support := e.createGroup("Intercom Support")
	for i := range 3 {
		e.addMembers(support, e.createUser(fmt.Sprintf("u%d@example.com", i), nil))
	}
	head := *e.verifyChain("").Head
	e.stop()

	tests := []struct {
		name     string
		query    string
		expect   *review.ChainHead
		brokenAt uint64
	}{
		{"a middle event deleted", `DELETE FROM audit WHERE seq = 5`, nil, 6},
		{"the newest event deleted, against a recorded head", fmt.Sprintf(`DELETE FROM audit WHERE seq = %d`, head.Seq), &head, head.Seq},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range []string{sqlite.FileName, sqlite.FileName + "-wal", sqlite.FileName + "-shm"} {
				b, err := os.ReadFile(filepath.Join(e.data, name))
				if os.IsNotExist(err) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			tamper(t, dir, tt.query)
			log, err := review.OpenOffline(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			defer log.Close()
			res, err := review.Verify(context.Background(), log.Page, tt.expect)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK || res.BrokenAt != tt.brokenAt {
				t.Fatalf("verify = %+v, want broken at %d", res, tt.brokenAt)
			}
		})
	}
}

func seqs(events []event) []uint64 {
	out := make([]uint64, len(events))
	for i, ev := range events {
		out[i] = ev.Seq
	}
	return out
}

func TestAuditFiltersFindMembershipEvents(t *testing.T) {
	e := newEnv(t)
	alice := e.createUser("alice@example.com", nil)
	bob := e.createUser("bob@example.com", nil)
	support := e.createGroup("Intercom Support", alice)
	e.addMembers(support, bob)
	e.removeMembers(support, alice)
	e.createGroup("Intercom Viewers", bob)

	groupEvents := e.audit("group=" + url.QueryEscape("Intercom Support"))
	if len(groupEvents) != 3 {
		t.Fatalf("group filter by name: %d events %v, want created and two patches", len(groupEvents), groupEvents)
	}
	for _, ev := range groupEvents {
		if ev.Target.ID != support {
			t.Fatalf("group filter returned %+v", ev)
		}
	}
	if got := seqs(e.audit("group=" + support)); !slices.Equal(got, seqs(groupEvents)) {
		t.Fatalf("group filter by id %v, by name %v", got, seqs(groupEvents))
	}

	all := e.audit("teammate=alice@example.com")
	var membership []uint64
	for i, ev := range all {
		if i > 0 && all[i-1].Seq >= ev.Seq {
			t.Fatalf("teammate events out of order: %v", seqs(all))
		}
		switch {
		case strings.HasPrefix(ev.Type, "scim.group."):
			membership = append(membership, ev.Seq)
		case ev.Target.ID != alice:
			t.Fatalf("teammate filter returned an event about %s: %+v", ev.Target.ID, ev)
		}
	}
	if len(membership) != 2 {
		t.Fatalf("alice's membership events %v, want the group creation with her and her removal (all %v)", membership, seqs(all))
	}

	tests := []struct {
		query string
		want  []uint64
	}{
		{"teammate=" + alice + "&group=" + support, membership},
		{"teammate=" + alice + "&type=scim.group", membership},
		{"teammate=" + bob + "&group=" + url.QueryEscape("Intercom Viewers"), seqs(e.audit("group=" + url.QueryEscape("Intercom Viewers")))},
	}
	for _, tt := range tests {
		if got := seqs(e.audit(tt.query)); !slices.Equal(got, tt.want) {
			t.Errorf("audit?%s = %v, want %v", tt.query, got, tt.want)
		}
	}
	for _, ev := range e.audit("teammate=" + alice + "&type=teammate") {
		if !strings.HasPrefix(ev.Type, "teammate.") {
			t.Fatalf("type filter let through %s", ev.Type)
		}
	}

	// Paging one event at a time through the merged list finds every event
	// once, in order.
	var paged []uint64
	after := uint64(0)
	for range len(all) + 2 {
		var page struct {
			Events []event
			Next   *uint64
		}
		mustJSON(t, e.mustDo(http.MethodGet, fmt.Sprintf("%s/api/v1/audit?teammate=%s&limit=1&after=%d", e.srv.URL, alice, after), adminToken, nil, 200), &page)
		paged = append(paged, seqs(page.Events)...)
		if page.Next == nil {
			break
		}
		after = *page.Next
	}
	if !slices.Equal(paged, seqs(all)) {
		t.Fatalf("paged %v, unpaged %v", paged, seqs(all))
	}
}

type historyDoc struct {
	Teammate *teammate
	History  []review.HistoryEntry
}

func (e *env) history(id string) historyDoc {
	e.t.Helper()
	var h historyDoc
	mustJSON(e.t, e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/teammates/"+url.PathEscape(id)+"/history", adminToken, nil, 200), &h)
	return h
}

func TestTeammateHistoryExplainsEachChange(t *testing.T) {
	e := newEnv(t)
	support := e.createGroup("Intercom Support")
	eng := e.createGroup("Engineering")
	dan := e.createUser("dan@example.com", nil)
	e.addMembers(support, dan)
	e.addMembers(eng, dan)
	e.editPolicy("groups.rego", mapGroup("Engineering", "admin"))
	rev := e.policyRevision()
	e.expect(dan, "admin", true)
	// A manual change of a managed teammate is refused: not in its history.
	e.mustDo(http.MethodPut, e.srv.URL+"/api/v1/teammates/"+dan+"/role", adminToken, map[string]any{"role": "viewer"}, 409)
	e.idle()
	e.expect(dan, "admin", true)

	h := e.history("dan@example.com")
	if h.Teammate == nil || h.Teammate.ID != dan {
		t.Fatalf("history teammate = %+v", h.Teammate)
	}
	type step struct{ from, to, cause, text string }
	want := []step{
		{"", "", "scim", "created user dan@example.com"},
		{"", "support", "scim", "added to group Intercom Support"},
		{"support", "admin", "policy", "policy revision " + rev + " activated"},
	}
	if len(h.History) != len(want) {
		t.Fatalf("history has %d entries, want %d: %+v", len(h.History), len(want), h.History)
	}
	for i, w := range want {
		got := h.History[i]
		if got.From.Role != w.from || got.To.Role != w.to || got.Cause == nil || got.Cause.Kind != w.cause || !strings.Contains(got.Cause.Text, w.text) {
			t.Errorf("entry %d = %s → %s cause %+v, want %s → %s by %s (%s)", i, got.From.Role, got.To.Role, got.Cause, w.from, w.to, w.cause, w.text)
		}
	}
	if h.History[1].Actor.Name != "reconciler" || len(h.History[1].Reasons) == 0 || h.History[2].PolicyRevision != rev {
		t.Errorf("history entries lack reasons or revision: %+v", h.History)
	}
	if status, _ := e.do(http.MethodGet, e.srv.URL+"/api/v1/teammates/nobody/history", adminToken, nil); status != http.StatusNotFound {
		t.Errorf("history of nobody: %d", status)
	}
}

func TestAccessReport(t *testing.T) {
	e := newEnv(t)
	support := e.createGroup("Intercom Support")
	e.createGroup("Engineering")
	alice := e.createUser("alice@example.com", nil)
	e.createUser("bob@example.com", map[string]any{
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"department": "Support"}})
	glass := e.createUser("breakglass@example.com", nil)
	e.addMembers(support, alice)
	e.mustDo(http.MethodPut, e.srv.URL+"/api/v1/teammates/"+glass+"/role", adminToken, map[string]any{"role": "admin"}, 200)
	e.idle()

	var r review.Report
	mustJSON(t, e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/report", adminToken, nil, 200), &r)
	if r.Totals != (review.ReportTotals{Teammates: 3, Access: 3, Excluded: 1, Unmapped: 2}) || r.PolicyRevision != e.policyRevision() {
		t.Fatalf("report totals %+v revision %s", r.Totals, r.PolicyRevision)
	}
	roles := map[string][]string{}
	for _, rm := range r.Roles {
		roles[rm.Role] = rm.Members
	}
	if fmt.Sprint(roles["support"]) != "[alice@example.com bob@example.com]" || fmt.Sprint(roles["admin"]) != "[breakglass@example.com]" {
		t.Fatalf("members per role %v", roles)
	}
	if len(r.Unmapped) != 2 || r.Unmapped[0].UserName != "bob@example.com" || r.Unmapped[1].UserName != "breakglass@example.com" || !r.Unmapped[1].Manual {
		t.Fatalf("unmapped %+v", r.Unmapped)
	}
	for _, g := range r.Groups {
		if g.DisplayName == "Intercom Support" && (!g.Active || g.Role != "support" || fmt.Sprint(g.Members) != "[alice@example.com]") {
			t.Fatalf("group %+v", g)
		}
		if g.DisplayName == "Engineering" && g.Active {
			t.Fatalf("unmapped group active: %+v", g)
		}
	}

	// An excluded teammate outlives its user, and is still found by name.
	e.mustDo(http.MethodDelete, e.scim+"/Users/"+glass, e.token, nil, http.StatusNoContent)
	e.idle()
	if h := e.history("breakglass@example.com"); h.Teammate == nil || h.Teammate.ID != glass || h.Teammate.role() != "admin" {
		t.Fatalf("history of the deleted excluded teammate: %+v", h.Teammate)
	}
	if evs := e.audit("teammate=breakglass@example.com&type=scim.user.deleted"); len(evs) != 1 || evs[0].Target.ID != glass {
		t.Fatalf("audit by the deleted user's name: %+v", evs)
	}
}

func TestSettledWaitsForTheReconciler(t *testing.T) {
	e := newEnv(t)
	support := e.createGroup("Intercom Support")
	alice := e.createUser("alice@example.com", nil)
	// No idle wait here: GET /settled is what a client uses instead.
	e.mustDo(http.MethodPatch, e.scim+"/Groups/"+support, e.token,
		patchOp(map[string]any{"op": "add", "path": "members", "value": memberValues(alice)}), 200, 204)
	var out struct{ Settled bool }
	mustJSON(t, e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/settled?timeout=30s", adminToken, nil, 200), &out)
	if !out.Settled {
		t.Fatal("not settled")
	}
	e.expect(alice, "support", true)
	for _, bad := range []string{"forever", "0s", "2m"} {
		if status, _ := e.do(http.MethodGet, e.srv.URL+"/api/v1/settled?timeout="+bad, adminToken, nil); status != http.StatusBadRequest {
			t.Errorf("timeout=%s: %d, want 400", bad, status)
		}
	}
}
