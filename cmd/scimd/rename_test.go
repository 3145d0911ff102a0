package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGroupRenameGoesThroughTheGuard: a rename of a group the policy maps
// by its display name demotes its members; over the guard's threshold it
// is held, and the held change, the audit events and the feed say "group
// renamed from X to Y". Renamed back while held, the approval applies
// nothing and says so (issue 12: renames, and approve's counts).
func TestGroupRenameGoesThroughTheGuard(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--guard-count", "2", "--guard-percent", "0", "--guard-escalation-count", "-1")
	c := newBinClient(t, d)
	var ids []string
	for i := range 4 {
		ids = append(ids, c.createUser(map[string]any{"userName": fmt.Sprintf("r%d@example.com", i), "active": true}))
	}
	g := c.createGroup("Intercom Admins", ids...)
	c.eventually(10*time.Second, "4 admins", func() bool { return state(c.teammate(ids[3])) == "admin/true/excluded=false" })

	rename := func(name string) {
		t.Helper()
		c.patch("/scim/v2/Groups/"+g, map[string]any{"op": "replace", "path": "displayName", "value": name})
	}
	const renamed = `group renamed from \"Intercom Admins\" to \"Former Admins\"`

	// Held: the members keep admin; the change names the rename.
	rename("Former Admins")
	c.eventually(10*time.Second, "the rename is held", func() bool { return len(c.changes("pending")) == 1 })
	ch := c.changes("pending")[0]
	if b, _ := json.Marshal(ch["trigger"]); !strings.Contains(string(b), renamed) {
		t.Errorf("held change trigger = %s, want %s", b, renamed)
	}
	for _, id := range ids {
		if got := state(c.teammate(id)); got != "admin/true/excluded=false" {
			t.Errorf("teammate %s is %s while the rename is held", id, got)
		}
	}
	if out, err := d.cli("changes", "show", ch["id"].(string)); err != nil || !strings.Contains(out, `group renamed from "Intercom Admins" to "Former Admins"`) {
		t.Errorf("changes show: %v\n%s", err, out)
	}

	// Approved: applied with the rename as the cause, in audit and feed.
	out, err := d.cli("changes", "approve", ch["id"].(string))
	if err != nil || !strings.Contains(out, "4 teammates changed") {
		t.Fatalf("changes approve: %v\n%s", err, out)
	}
	c.eventually(10*time.Second, "the rename applied", func() bool { return state(c.teammate(ids[0])) == "/false/excluded=false" })
	removed := c.auditEvents("teammate.access.removed")
	if len(removed) != 4 {
		t.Fatalf("%d teammate.access.removed events, want 4", len(removed))
	}
	if b, _ := json.Marshal(removed[0]["details"]); !strings.Contains(string(b), renamed) {
		t.Errorf("teammate.access.removed details = %s, want the rename", b)
	}
	if feed := c.admin(http.MethodGet, "/api/v1/feed?after=0&limit=1000", nil, nil); !strings.Contains(feed, renamed) {
		t.Errorf("the feed does not say %s", renamed)
	}

	// Renamed back: 4 grants, not demotions, so not held.
	rename("Intercom Admins")
	c.eventually(10*time.Second, "admins again", func() bool { return state(c.teammate(ids[3])) == "admin/true/excluded=false" })

	// Held, then undone while held: the approval changes nobody and says so.
	rename("Former Admins")
	c.eventually(10*time.Second, "the second rename is held", func() bool { return len(c.changes("pending")) == 1 })
	ch = c.changes("pending")[0]
	rename("Intercom Admins") // deferred behind the held change
	out, err = d.cli("changes", "approve", ch["id"].(string))
	if err != nil || !strings.Contains(out, "0 teammates changed, 4 left as they were") {
		t.Fatalf("changes approve of an undone rename: %v\n%s", err, out)
	}
	for _, id := range ids {
		if got := state(c.teammate(id)); got != "admin/true/excluded=false" {
			t.Errorf("teammate %s is %s after approving an undone rename", id, got)
		}
	}
}

// TestDisplayNameMappingWarnings: a group with an externalId that the
// policy maps only by its display name is flagged by GET /api/v1/groups
// and by scimd plan; a group mapped by externalId, or without one, is not.
func TestDisplayNameMappingWarnings(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	c := newBinClient(t, d)
	var byName, plain struct{ ID string }
	c.must(http.MethodPost, "/scim/v2/Groups", c.scim, map[string]any{"displayName": "Intercom Admins", "externalId": "00g-admins"}, &byName)
	c.must(http.MethodPost, "/scim/v2/Groups", c.scim, map[string]any{"displayName": "Intercom Support"}, &plain)
	var groups struct {
		Groups []struct {
			ID       string
			Warnings []string
		}
	}
	c.admin(http.MethodGet, "/api/v1/groups", nil, &groups)
	for _, g := range groups.Groups {
		switch g.ID {
		case byName.ID:
			if len(g.Warnings) != 1 || !strings.Contains(g.Warnings[0], "00g-admins") {
				t.Errorf("group mapped by name has warnings %q", g.Warnings)
			}
		case plain.ID:
			if len(g.Warnings) != 0 {
				t.Errorf("group without externalId has warnings %q", g.Warnings)
			}
		}
	}
	policies, err := filepath.Abs(filepath.Join("..", "..", "policies"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := d.cli("plan", "--policies", policies)
	if !strings.Contains(out, "Warnings (1)") || !strings.Contains(out, "group Intercom Admins: mapped by its display name") {
		t.Errorf("scimd plan does not warn: %v\n%s", err, out)
	}
}
