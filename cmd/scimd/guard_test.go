package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scimd/scimd/engine/review"
)

// pendingChanges returns the changes in a state ("pending", "rejected", …).
func (c *binClient) changes(state string) []map[string]any {
	c.t.Helper()
	var out struct {
		Changes []map[string]any `json:"changes"`
	}
	c.admin(http.MethodGet, "/api/v1/changes?state="+state, nil, &out)
	return out.Changes
}

// settle waits until a marker write, made after everything before it, has
// been reconciled: a new user's teammate record appears.
func (c *binClient) settle() {
	c.t.Helper()
	id := c.createUser(map[string]any{"userName": fmt.Sprintf("marker-%d@example.com", time.Now().UnixNano()), "active": true})
	c.eventually(10*time.Second, "marker reconciled", func() bool { return c.teammate(id) != nil })
}

func state(tm map[string]any) string {
	if tm == nil {
		return "gone"
	}
	role, _ := tm["role"].(string)
	return fmt.Sprintf("%s/%v/excluded=%v", role, tm["access"], tm["excluded"])
}

// TestSelfExclusionThroughASecondaryEmail: finding 1 of issue 12. A user
// who adds "BreakGlass@example.com" as a secondary e-mail is not excluded:
// deactivating and deleting them removes their access.
func TestSelfExclusionThroughASecondaryEmail(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	c := newBinClient(t, d)
	mallory := c.createUser(map[string]any{"userName": "mallory@example.com", "active": true,
		"emails": []any{map[string]any{"value": "mallory@example.com", "primary": true}}})
	c.createGroup("Intercom Support", mallory)
	c.eventually(10*time.Second, "mallory gets support", func() bool { return state(c.teammate(mallory)) == "support/true/excluded=false" })

	c.patch("/scim/v2/Users/"+mallory, map[string]any{"op": "add", "path": "emails",
		"value": []any{map[string]any{"value": "BreakGlass@example.com", "type": "other"}}})
	c.patch("/scim/v2/Users/"+mallory, map[string]any{"op": "replace", "path": "active", "value": false})
	c.eventually(10*time.Second, "deactivated mallory loses access", func() bool { return state(c.teammate(mallory)) == "/false/excluded=false" })
	c.must(http.MethodDelete, "/scim/v2/Users/"+mallory, c.scim, nil, nil)
	c.eventually(10*time.Second, "deleted mallory is gone", func() bool { return c.teammate(mallory) == nil })
}

// TestNewExclusionIsHeldAndDeletingAnExcludedTeammateIsLoud: a SCIM write
// that newly excludes a teammate is held like a grant, its audit event
// names the identifier that matched; deleting an excluded teammate's user
// keeps its access, and the audit event and the feed say so.
func TestNewExclusionIsHeldAndDeletingAnExcludedTeammateIsLoud(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	c := newBinClient(t, d)
	ops := c.createUser(map[string]any{"userName": "ops@example.com", "active": true})
	c.createGroup("Intercom Support", ops)
	c.eventually(10*time.Second, "ops gets support", func() bool { return state(c.teammate(ops)) == "support/true/excluded=false" })

	c.patch("/scim/v2/Users/"+ops, map[string]any{"op": "replace", "path": "userName", "value": "breakglass@example.com"})
	c.eventually(10*time.Second, "the exclusion is held", func() bool { return len(c.changes("pending")) == 1 })
	if got := state(c.teammate(ops)); got != "support/true/excluded=false" {
		t.Errorf("held teammate is %s", got)
	}
	held := c.auditEvents("change.held")
	b, _ := json.Marshal(held)
	if !strings.Contains(string(b), "newly exclude") || !strings.Contains(string(b), `userName \"breakglass@example.com\" is listed`) {
		t.Errorf("change.held event does not say who is newly excluded by which attribute: %s", b)
	}
	id := c.changes("pending")[0]["id"].(string)
	c.admin(http.MethodPost, "/api/v1/changes/"+id+"/approve", nil, nil)
	c.eventually(10*time.Second, "approved exclusion applies", func() bool { return state(c.teammate(ops)) == "support/true/excluded=true" })

	c.must(http.MethodDelete, "/scim/v2/Users/"+ops, c.scim, nil, nil)
	c.eventually(10*time.Second, "the deletion is recorded", func() bool { return c.teammate(ops)["userDeleted"] == true })
	if got := state(c.teammate(ops)); got != "support/true/excluded=true" {
		t.Errorf("excluded teammate after its user's deletion is %s, want its access kept", got)
	}
	evs := c.auditEvents("teammate.excluded.user_deleted")
	if len(evs) != 1 || !strings.Contains(fmt.Sprint(evs[0]["reasons"]), "KEEPS") {
		t.Errorf("user deletion of an excluded teammate audited as %v", evs)
	}
	feed := c.admin(http.MethodGet, "/api/v1/feed?after=0&limit=1000", nil, nil)
	if !strings.Contains(feed, "teammate.excluded.user_deleted") || !strings.Contains(feed, `"userDeleted":true`) {
		t.Errorf("the feed does not say the excluded teammate's user was deleted: %s", feed)
	}
}

// TestRejectedPolicyChangeSticks: finding 4 of issue 12. A policy
// activation that would remove 16 teammates' access is held and rejected;
// a later harmless PATCH of one of them does not apply the rejected policy
// piecemeal, and the rejection says to revert or fix the policy in git.
func TestRejectedPolicyChangeSticks(t *testing.T) {
	policies := copyDir(t, filepath.Join("..", "..", "policies"))
	d := startDaemon(t, t.TempDir(), "--policies", policies)
	c := newBinClient(t, d)
	var ids []string
	for i := range 16 {
		ids = append(ids, c.createUser(map[string]any{"userName": fmt.Sprintf("s%02d@example.com", i), "active": true}))
	}
	team := c.createGroup("Team S", ids...)
	writeEdit(t, policies, "groups.rego", mapGroupLine("Team S", "support"))
	c.admin(http.MethodPost, "/api/v1/policy/reload", nil, nil)
	c.eventually(10*time.Second, "16 support teammates", func() bool { return state(c.teammate(ids[15])) == "support/true/excluded=false" })

	writeEdit(t, policies, "groups.rego", func(s string) string {
		return strings.Replace(s, "\t\"Team S\": \"support\",\n", "", 1)
	})
	c.admin(http.MethodPost, "/api/v1/policy/reload", nil, nil)
	c.eventually(10*time.Second, "the activation is held", func() bool { return len(c.changes("pending")) == 1 })
	id := c.changes("pending")[0]["id"].(string)
	// A held change says when it was held (finding 7: it said 0001-01-01).
	if created, _ := c.changes("pending")[0]["created"].(string); strings.HasPrefix(created, "0001") || created == "" {
		t.Errorf("held change created %q", created)
	}
	list := runCLI(context.Background(), "changes", "list", "--server", d.base, "--token", d.admin)
	if strings.Contains(list.stdout, "0001-01-01") {
		t.Errorf("scimd changes list shows a zero creation time:\n%s", list.stdout)
	}

	// scimd teammate show says the teammate waits behind it (finding 7).
	show := runCLI(context.Background(), "teammate", "show", "s03@example.com", "--server", d.base, "--token", d.admin)
	if !strings.Contains(show.stdout, "held change "+id) {
		t.Errorf("scimd teammate show does not mention the pending change:\n%s%s", show.stdout, show.stderr)
	}

	res := runCLI(context.Background(), "changes", "reject", id, "--server", d.base, "--token", d.admin)
	if res.code != 0 || !strings.Contains(res.stdout, "revert or fix the policy in git") {
		t.Fatalf("scimd changes reject = %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	rejected := c.auditEvents("change.rejected")
	if len(rejected) != 1 || !strings.Contains(fmt.Sprint(rejected[0]["reasons"]), "revert or fix the policy in git") {
		t.Errorf("change.rejected event does not say to revert the policy: %v", rejected)
	}

	// A harmless profile change from the IdP for one of them.
	c.patch("/scim/v2/Users/"+ids[3], map[string]any{"op": "replace", "path": "title", "value": "Support engineer"})
	c.settle()
	for _, id := range ids {
		if got := state(c.teammate(id)); got != "support/true/excluded=false" {
			t.Fatalf("teammate %s is %s after the rejection: the rejected policy was applied piecemeal", id, got)
		}
	}

	// Fixing the policy (a new revision) lets the teammates follow the
	// identity provider again.
	writeEdit(t, policies, "groups.rego", func(s string) string {
		return strings.Replace(s, "group_roles := {\n", "group_roles := {\n\t\"Team S\": \"support\", # restored\n", 1)
	})
	c.admin(http.MethodPost, "/api/v1/policy/reload", nil, nil)
	c.patch("/scim/v2/Groups/"+team, map[string]any{"op": "remove", "path": `members[value eq "` + ids[3] + `"]`})
	c.eventually(10*time.Second, "a removal applies under the new revision", func() bool { return state(c.teammate(ids[3])) == "/false/excluded=false" })
}

// TestDemotionsJudgedByTheLiveRoleOrder: finding 5 of issue 12. Reordering
// roles so that everyone in two mapped groups gets the formerly lower role
// demotes them all: `scimd plan` says the guard would hold it, and the
// activation is held.
func TestDemotionsJudgedByTheLiveRoleOrder(t *testing.T) {
	policies := copyDir(t, filepath.Join("..", "..", "policies"))
	d := startDaemon(t, t.TempDir(), "--policies", policies, "--guard-escalation-count", "-1")
	c := newBinClient(t, d)
	var ids []string
	for i := range 12 {
		ids = append(ids, c.createUser(map[string]any{"userName": fmt.Sprintf("a%02d@example.com", i), "active": true}))
	}
	c.createGroup("Intercom Admins", ids...)
	c.createGroup("Intercom Viewers", ids...)
	c.eventually(10*time.Second, "12 admins", func() bool { return state(c.teammate(ids[11])) == "admin/true/excluded=false" })

	candidate := copyDir(t, policies)
	reorder := func(s string) string {
		return strings.Replace(s, `roles := ["admin", "support", "viewer"]`, `roles := ["viewer", "support", "admin"]`, 1)
	}
	writeEdit(t, candidate, "roles.rego", reorder)
	// The policy's own tests pin the order: a reviewer who rewrote them
	// would still have to face the guard. Keep one test for the gate.
	for _, f := range []string{"attributes_test.rego", "exclusions_test.rego", "groups_test.rego", "helpers_test.rego", "roles_test.rego", "teammate_test.rego"} {
		if err := os.Remove(filepath.Join(candidate, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(candidate, "smoke_test.rego"), []byte("package scimd_test\n\ntest_roles_defined if data.scimd.roles\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	plan := runCLI(context.Background(), "plan", "--policies", candidate, "--server", d.base, "--token", d.admin, "--format", "json")
	var res review.PlanResult
	if err := json.Unmarshal([]byte(plan.stdout), &res); err != nil {
		t.Fatalf("plan: %v\n%s%s", err, plan.stdout, plan.stderr)
	}
	if res.Demotions != 12 || !res.WouldHold || plan.code != review.ExitHeld {
		t.Errorf("plan of the reorder: %d demotions, wouldHold %v, exit %d; want 12, true, %d", res.Demotions, res.WouldHold, plan.code, review.ExitHeld)
	}
}

// TestDemotionsJudgedByTheLiveRoleOrderAreHeld: the same reorder, activated,
// is held; the teammates stay admins.
func TestDemotionsJudgedByTheLiveRoleOrderAreHeld(t *testing.T) {
	policies := copyDir(t, filepath.Join("..", "..", "policies"))
	d := startDaemon(t, t.TempDir(), "--policies", policies, "--guard-escalation-count", "-1")
	c := newBinClient(t, d)
	var ids []string
	for i := range 12 {
		ids = append(ids, c.createUser(map[string]any{"userName": fmt.Sprintf("a%02d@example.com", i), "active": true}))
	}
	c.createGroup("Intercom Admins", ids...)
	c.createGroup("Intercom Viewers", ids...)
	c.eventually(10*time.Second, "12 admins", func() bool { return state(c.teammate(ids[11])) == "admin/true/excluded=false" })
	for _, f := range []string{"attributes_test.rego", "exclusions_test.rego", "groups_test.rego", "helpers_test.rego", "roles_test.rego", "teammate_test.rego"} {
		if err := os.Remove(filepath.Join(policies, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(policies, "smoke_test.rego"), []byte("package scimd_test\n\ntest_roles_defined if data.scimd.roles\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeEdit(t, policies, "roles.rego", func(s string) string {
		return strings.Replace(s, `roles := ["admin", "support", "viewer"]`, `roles := ["viewer", "support", "admin"]`, 1)
	})
	c.admin(http.MethodPost, "/api/v1/policy/reload", nil, nil)
	c.eventually(10*time.Second, "the reorder is held", func() bool { return len(c.changes("pending")) == 1 })
	ch := c.changes("pending")[0]
	if ch["demotions"] != float64(12) {
		t.Errorf("held change counts %v demotions, want 12", ch["demotions"])
	}
	for _, id := range ids {
		if got := state(c.teammate(id)); got != "admin/true/excluded=false" {
			t.Errorf("teammate %s is %s while the reorder is held", id, got)
		}
	}
}

// TestEscalationIsHeld: one SCIM request that grants the highest role to
// more than --guard-escalation-count teammates is held.
func TestEscalationIsHeld(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--guard-escalation-count", "3", "--guard-escalation-roles", "support")
	c := newBinClient(t, d)
	var ids []string
	for i := range 4 {
		ids = append(ids, c.createUser(map[string]any{"userName": fmt.Sprintf("e%d@example.com", i), "active": true}))
	}
	c.createGroup("Intercom Viewers", ids...) // viewer is no escalation
	c.eventually(10*time.Second, "4 viewers", func() bool { return state(c.teammate(ids[3])) == "viewer/true/excluded=false" })
	for _, group := range []string{"Intercom Support", "Intercom Admins"} {
		t.Run(group, func(t *testing.T) {
			g := c.createGroup(group, ids...)
			c.eventually(10*time.Second, "the grant is held", func() bool { return len(c.changes("pending")) == 1 })
			ch := c.changes("pending")[0]
			if ch["escalations"] != float64(4) || !strings.Contains(fmt.Sprint(ch["reasons"]), "would grant") {
				t.Errorf("held change %v", ch)
			}
			for _, id := range ids {
				if got := state(c.teammate(id)); got != "viewer/true/excluded=false" {
					t.Errorf("teammate %s is %s while the grant is held", id, got)
				}
			}
			c.admin(http.MethodPost, "/api/v1/changes/"+ch["id"].(string)+"/reject", nil, nil)
			c.must(http.MethodDelete, "/scim/v2/Groups/"+g, c.scim, nil, nil)
			c.settle()
		})
	}
}

// TestManualGrantOnAManagedTeammateIsRefused: finding 6 of issue 12,
// through the binary. PUT /api/v1/teammates/{id}/role on a managed
// teammate is refused with 409; the feed never carries the grant.
func TestManualGrantOnAManagedTeammateIsRefused(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	c := newBinClient(t, d)
	dan := c.createUser(map[string]any{"userName": "dan@example.com", "active": true})
	c.createGroup("Intercom Support", dan)
	c.eventually(10*time.Second, "dan gets support", func() bool { return state(c.teammate(dan)) == "support/true/excluded=false" })
	status, body := c.do(http.MethodPut, "/api/v1/teammates/"+dan+"/role", d.admin, map[string]any{"role": "admin"})
	if status != http.StatusConflict || !strings.Contains(body, "identity provider") {
		t.Fatalf("manual grant on a managed teammate = %d %s, want 409 with an explanation", status, body)
	}
	c.settle()
	if feed := c.admin(http.MethodGet, "/api/v1/feed?after=0&limit=1000", nil, nil); strings.Contains(feed, `"role":"admin"`) {
		t.Errorf("the feed carries the refused grant: %s", feed)
	}
	if got := state(c.teammate(dan)); got != "support/true/excluded=false" {
		t.Errorf("dan is %s", got)
	}
	if evs := c.auditEvents("teammate.role.manual_refused"); len(evs) != 1 {
		t.Errorf("refusal audited %d times", len(evs))
	}
}

// TestPlanLabelsAnUncommittedTreeDirty: `scimd plan` of a tree with
// uncommitted changes labels it commit+dirty, not with HEAD's commit
// (issue 12, finding 7).
func TestPlanLabelsAnUncommittedTreeDirty(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	s := startLive(t)
	root := t.TempDir()
	dir := filepath.Join(root, "policies")
	if err := os.CopyFS(dir, os.DirFS(s.policies)); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-C", root, "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	git("add", ".")
	git("commit", "-q", "-m", "policies")
	head := git("rev-parse", "HEAD")
	commitOf := func() string {
		t.Helper()
		r := s.runCLI(context.Background(), "plan", "--policies", dir, "--format", "json")
		var res review.PlanResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("plan: %v\n%s%s", err, r.stdout, r.stderr)
		}
		return res.Commit
	}
	if got := commitOf(); got != head {
		t.Errorf("clean tree planned as %q, want %q", got, head)
	}
	writeEdit(t, dir, "groups.rego", mapGroupLine("Engineering", "viewer"))
	if got := commitOf(); got != head+"+dirty" {
		t.Errorf("uncommitted tree planned as %q, want %q", got, head+"+dirty")
	}
}
