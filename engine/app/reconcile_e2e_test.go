package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/scim/server"
	"github.com/scimd/scimd/scim/store"
	"github.com/scimd/scimd/scim/store/sqlite"
)

func TestNewGroupIsInactiveUntilMapped(t *testing.T) {
	e := newEnv(t)
	alice := e.createUser("alice@example.com", nil)
	e.expect(alice, "", false)
	eng := e.createGroup("Engineering", alice)
	if g := e.group(eng); g.Active || g.Role != "" {
		t.Fatalf("new unmapped group = %+v, want inactive", g)
	}
	e.expect(alice, "", false)

	e.editPolicy("groups.rego", mapGroup("Engineering", "viewer"))
	if g := e.group(eng); !g.Active || g.Role != "viewer" {
		t.Fatalf("mapped group = %+v, want active viewer", g)
	}
	tm := e.expect(alice, "viewer", true)
	if len(tm.Reasons) == 0 || !strings.Contains(tm.Reasons[0], "Engineering") {
		t.Fatalf("reasons %v do not name the group", tm.Reasons)
	}
}

func TestMembershipMovesRoles(t *testing.T) {
	e := newEnv(t)
	admins := e.createGroup("Intercom Admins")
	support := e.createGroup("Intercom Support")
	viewers := e.createGroup("Intercom Viewers")
	bob := e.createUser("bob@example.com", nil)

	steps := []struct {
		name   string
		do     func()
		role   string
		access bool
		reason string
	}{
		{"add to support", func() { e.addMembers(support, bob) }, "support", true, "Intercom Support"},
		{"move to viewers", func() { e.removeMembers(support, bob); e.addMembers(viewers, bob) }, "viewer", true, "Intercom Viewers"},
		{"also admins: precedence", func() { e.addMembers(admins, bob) }, "admin", true, "Intercom Admins"},
		{"leave admins", func() { e.removeMembers(admins, bob) }, "viewer", true, "Intercom Viewers"},
		{"leave last mapped group", func() { e.removeMembers(viewers, bob) }, "", false, "no mapped group"},
	}
	for _, s := range steps {
		s.do()
		tm := e.expect(bob, s.role, s.access)
		if !strings.Contains(strings.Join(tm.Reasons, "|"), s.reason) {
			t.Fatalf("%s: reasons %v do not mention %q", s.name, tm.Reasons, s.reason)
		}
	}
	// Every change is on the audit log for the teammate.
	var types []string
	for _, ev := range e.audit("teammate=" + bob + "&type=teammate") {
		types = append(types, ev.Type)
	}
	want := []string{audit.TypeTeammateCreated, audit.TypeAccessGranted, audit.TypeTeammateRoleChanged,
		audit.TypeTeammateRoleChanged, audit.TypeTeammateRoleChanged, audit.TypeTeammateRoleChanged, audit.TypeAccessRemoved}
	got := strings.Join(types, ",")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Fatalf("audit types %v lack %s", types, w)
		}
	}
	if len(e.audit("teammate="+bob+"&type=decision.made")) < len(steps) {
		t.Fatalf("decisions not audited")
	}
}

func TestDeactivationAndExclusions(t *testing.T) {
	e := newEnv(t)
	admins := e.createGroup("Intercom Admins")
	viewers := e.createGroup("Intercom Viewers")
	carol := e.createUser("carol@example.com", nil)
	glass := e.createUser("breakglass@example.com", nil)
	e.addMembers(admins, carol, glass)
	e.expect(carol, "admin", true)
	tm := e.expect(glass, "", false) // excluded: provisioning never changes it
	if !tm.Excluded {
		t.Fatalf("breakglass not excluded: %+v", tm)
	}

	// An admin sets the excluded account's role by hand: it sticks.
	e.mustDo(http.MethodPut, e.srv.URL+"/api/v1/teammates/"+glass+"/role", adminToken, map[string]any{"role": "admin"}, 200)
	e.idle()
	e.expect(glass, "admin", true)

	e.setActive(carol, false)
	e.expect(carol, "", false)
	e.setActive(carol, true)
	e.expect(carol, "admin", true)

	// The excluded teammate deactivated, moved, or deleted: unchanged.
	e.setActive(glass, false)
	e.expect(glass, "admin", true)
	e.removeMembers(admins, glass)
	e.addMembers(viewers, glass)
	e.expect(glass, "admin", true)
	e.mustDo(http.MethodDelete, e.scim+"/Users/"+glass, e.token, nil, 204)
	e.idle()
	e.expect(glass, "admin", true)

	// A managed teammate deleted in the IdP loses access.
	e.mustDo(http.MethodDelete, e.scim+"/Users/"+carol, e.token, nil, 204)
	e.idle()
	if status, _ := e.do(http.MethodGet, e.srv.URL+"/api/v1/teammates/"+carol, adminToken, nil); status != http.StatusNotFound {
		t.Fatalf("deleted teammate still listed: %d", status)
	}
	if evs := e.audit("teammate=" + carol + "&type=" + audit.TypeTeammateDeleted); len(evs) != 1 {
		t.Fatalf("deletion audited %d times", len(evs))
	}
}

// TestManualRoleChangeOnAManagedTeammateIsRefused: finding 6 of issue 12.
// A manual role change on a managed teammate is refused with 409 and
// audited as refused; nothing reaches the feed, so no application ever
// applies a grant the policy did not decide. Drift reported by the
// application is recorded as observed, and the feed carries only the
// correction.
func TestManualRoleChangeOnAManagedTeammateIsRefused(t *testing.T) {
	e := newEnv(t)
	support := e.createGroup("Intercom Support")
	dan := e.createUser("dan@example.com", nil)
	e.addMembers(support, dan)
	e.expect(dan, "support", true)
	feedTypes := func() string {
		var feed struct {
			Entries []struct {
				Type       string
				TeammateID string
				Payload    json.RawMessage
			}
		}
		_ = json.Unmarshal(e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/feed?after=0&limit=1000", adminToken, nil, 200), &feed)
		var types []string
		for _, en := range feed.Entries {
			if en.TeammateID == dan {
				types = append(types, en.Type)
				if strings.Contains(string(en.Payload), `"role":"admin"`) {
					t.Errorf("the feed carries an admin role for dan: %s", en.Payload)
				}
			}
		}
		return strings.Join(types, ",")
	}
	before := feedTypes()

	body := e.mustDo(http.MethodPut, e.srv.URL+"/api/v1/teammates/"+dan+"/role", adminToken, map[string]any{"role": "admin"}, 409)
	if !strings.Contains(string(body), "identity provider") || !strings.Contains(string(body), "policy") {
		t.Errorf("409 does not explain who decides: %s", body)
	}
	e.idle()
	e.expect(dan, "support", true)
	if got := feedTypes(); got != before {
		t.Errorf("feed for the teammate after a refused change = %s, want unchanged %s", got, before)
	}
	refused := e.audit("teammate=" + dan + "&type=" + audit.TypeRoleManualRefused)
	if len(refused) != 1 || refused[0].Actor.Kind != "admin" || len(e.audit("teammate="+dan+"&type="+audit.TypeRoleManual)) != 0 {
		t.Fatalf("refused manual change audited as %+v", refused)
	}

	// The application reports that it gave dan admin anyway: recorded, and
	// only the correction is published.
	e.mustDo(http.MethodPost, e.srv.URL+"/api/v1/teammates/"+dan+"/drift", adminToken, map[string]any{"role": "admin"}, 200)
	e.idle()
	e.expect(dan, "support", true)
	if n := len(e.audit("teammate=" + dan + "&type=" + audit.TypeDriftObserved)); n != 1 {
		t.Errorf("drift observed %d times, want 1", n)
	}
	if got := feedTypes(); got != before+","+audit.TypeRoleReverted {
		t.Errorf("feed for the teammate after drift = %s, want %s then only the correction", got, before)
	}

	// A role the policy does not know is refused.
	if status, _ := e.do(http.MethodPut, e.srv.URL+"/api/v1/teammates/"+dan+"/role", adminToken, map[string]any{"role": "owner"}); status != http.StatusBadRequest {
		t.Fatalf("unknown role: %d, want 400", status)
	}
}

type change struct {
	ID        string
	State     string
	Demotions int
	Changes   []struct {
		ID       string
		Demotion bool
	}
	DecidedBy string
}

func (e *env) pendingChanges() []change {
	var out struct{ Changes []change }
	_ = json.Unmarshal(e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/changes", adminToken, nil, 200), &out)
	return out.Changes
}

// massRemoval builds a mapped group of 60 and removes 50 in one PATCH.
func massRemoval(t *testing.T) (*env, []string) {
	e := newEnv(t)
	var ids []string
	for i := 0; i < 60; i++ {
		ids = append(ids, e.createUser(fmt.Sprintf("member%02d@example.com", i), nil))
	}
	support := e.createGroup("Intercom Support", ids...)
	for _, id := range ids {
		e.expect(id, "support", true)
	}
	e.removeMembers(support, ids[:50]...)
	for _, id := range ids {
		e.expect(id, "support", true) // nobody changed yet
	}
	pending := e.pendingChanges()
	if len(pending) != 1 || pending[0].Demotions != 50 || len(pending[0].Changes) != 50 {
		t.Fatalf("pending changes = %+v, want one holding 50 demotions", pending)
	}
	if evs := e.audit("type=" + audit.TypeChangeHeld); len(evs) != 1 {
		t.Fatalf("held change audited %d times", len(evs))
	}
	return e, ids
}

func TestMassRemovalHeldThenApproved(t *testing.T) {
	e, ids := massRemoval(t)
	c := e.pendingChanges()[0]
	e.mustDo(http.MethodPost, e.srv.URL+"/api/v1/changes/"+c.ID+"/approve", adminToken, nil, 200)
	e.idle()
	for i, id := range ids {
		if i < 50 {
			e.expect(id, "", false)
		} else {
			e.expect(id, "support", true)
		}
	}
	if len(e.pendingChanges()) != 0 {
		t.Fatal("change still pending after approval")
	}
	approved := e.audit("type=" + audit.TypeChangeApproved)
	if len(approved) != 1 || approved[0].Actor.Name != "admin" {
		t.Fatalf("approval audit = %+v", approved)
	}
	// Deciding twice is refused.
	if status, _ := e.do(http.MethodPost, e.srv.URL+"/api/v1/changes/"+c.ID+"/reject", adminToken, nil); status != http.StatusConflict {
		t.Fatalf("second decision: %d, want 409", status)
	}
}

func TestMassRemovalHeldThenRejected(t *testing.T) {
	e, ids := massRemoval(t)
	c := e.pendingChanges()[0]
	e.mustDo(http.MethodPost, e.srv.URL+"/api/v1/changes/"+c.ID+"/reject", adminToken, nil, 200)
	e.idle()
	for _, id := range ids {
		e.expect(id, "support", true)
	}
	if rejected := e.audit("type=" + audit.TypeChangeRejected); len(rejected) != 1 {
		t.Fatalf("rejection audited %d times", len(rejected))
	}
}

func TestLaterTriggersQueueBehindPendingChange(t *testing.T) {
	e, ids := massRemoval(t)
	// A later change to a held teammate waits behind the pending change.
	viewers := e.createGroup("Intercom Viewers")
	e.addMembers(viewers, ids[0])
	e.expect(ids[0], "support", true)
	c := e.pendingChanges()[0]
	e.mustDo(http.MethodPost, e.srv.URL+"/api/v1/changes/"+c.ID+"/approve", adminToken, nil, 200)
	e.idle()
	e.expect(ids[0], "viewer", true) // both triggers applied, in order
	e.expect(ids[1], "", false)
}

// TestCrashBetweenCommitAndRoleUpdate writes SCIM changes with no
// reconciler running (as when the process dies between the SCIM commit and
// the role update), then starts scimd on the same data: the role update
// happens.
func TestCrashBetweenCommitAndRoleUpdate(t *testing.T) {
	e := newEnv(t)
	admins := e.createGroup("Intercom Admins")
	erin := e.createUser("erin@example.com", nil)
	e.stop()

	// Only the SCIM server and the store: the commit is durable, no role
	// update follows.
	ctx := context.Background()
	backend, err := sqlite.Open(ctx, e.data)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Options{Backend: backend, Records: recordsForReopen()})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{Store: st})
	r := mux.NewRouter()
	srv.Register(r)
	hs := httptest.NewServer(server.CanonicalPaths(r))
	e.scim = hs.URL + "/scim/v2"
	e.mustDo(http.MethodPatch, e.scim+"/Groups/"+admins, e.token,
		patchOp(map[string]any{"op": "add", "path": "members", "value": memberValues(erin)}), 204)
	hs.Close()
	st.Close()

	e.start()
	e.expect(erin, "admin", true)
}

func TestPlanListsExactlyTheNewGroupsMembers(t *testing.T) {
	e := newEnv(t)
	a1 := e.createUser("p1@example.com", nil)
	a2 := e.createUser("p2@example.com", nil)
	other := e.createUser("p3@example.com", nil)
	e.createGroup("Engineering", a1, a2)
	e.createGroup("Intercom Viewers", other)

	files := map[string][]byte{}
	entries, err := os.ReadDir(e.policies)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range entries {
		b, err := os.ReadFile(filepath.Join(e.policies, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if de.Name() == "groups.rego" {
			b = []byte(mapGroup("Engineering", "support")(string(b)))
		}
		files[de.Name()] = b
	}
	candidate, err := policy.LoadFiles(context.Background(), files)
	if err != nil {
		t.Fatal(err)
	}
	live := e.policyRevision()
	plan, err := e.app.Reconciler.Plan(context.Background(), candidate)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range plan.Changes {
		got[c.ID] = c.To.Role
	}
	if len(got) != 2 || got[a1] != "support" || got[a2] != "support" || plan.Granted != 2 || plan.WouldHold {
		t.Fatalf("plan = %+v", plan)
	}
	if len(plan.Groups) != 1 || plan.Groups[0].DisplayName != "Engineering" || !plan.Groups[0].To.Active {
		t.Fatalf("plan groups = %+v", plan.Groups)
	}
	// Nothing was applied.
	e.expect(a1, "", false)
	if e.policyRevision() != live {
		t.Fatal("plan changed the live revision")
	}
}
