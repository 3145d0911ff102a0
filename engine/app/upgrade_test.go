package app_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimd/scimd/scim/store/sqlite"
)

// fixtureHead is the last audit event of testdata/upgrade-v0 (see its
// README).
const fixtureHead = "34:62f2808412d8eda67c417b47ce719d008ab55aa2093a5a6f9b4c8f3f6b9623ea"

// TestUpgradeFromV0 opens a data directory written by the release before
// the store recorded its schema version, and checks that it is backed up,
// migrated, and serves what it held: teammates, tokens, webhooks, the
// audit chain (unchanged, still verifying) and the feed, then takes new
// writes.
func TestUpgradeFromV0(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "upgrade-v0", sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, data: t.TempDir(), policies: copyPolicies(t)}
	if err := os.WriteFile(filepath.Join(e.data, sqlite.FileName), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	e.start()

	backups, _ := filepath.Glob(filepath.Join(e.data, sqlite.FileName+".schema-v0-*.backup"))
	if len(backups) != 1 {
		t.Fatalf("backups before migrating: %v, want one", backups)
	}
	if b, err := os.ReadFile(backups[0]); err != nil || len(b) == 0 {
		t.Fatalf("backup %s: %d bytes, %v", backups[0], len(b), err)
	}

	// The chain verifies and still holds the fixture's last event.
	if res := e.verifyChain("expect=" + fixtureHead); !res.OK || res.Events < 34 {
		t.Fatalf("audit verify after the upgrade = %+v", res)
	}
	// Time queries work on the migrated (fixed-width) times.
	if evs := e.audit("since=2026-12-03T08:13:00Z&until=2026-12-03T08:15:00Z&limit=1000"); len(evs) != 34 {
		t.Errorf("events of the fixture's run by time: %d, want 34", len(evs))
	}

	byName := map[string]teammate{}
	var list struct{ Teammates []teammate }
	if err := json.Unmarshal(e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/teammates", adminToken, nil, 200), &list); err != nil {
		t.Fatal(err)
	}
	for _, tm := range list.Teammates {
		byName[tm.UserName] = tm
	}
	for name, want := range map[string]struct {
		role   string
		access bool
	}{
		"alice@example.com": {"support", true},
		"bob@example.com":   {"", false},
		"carol@example.com": {"admin", true},
		"dave@example.com":  {"", false},
	} {
		tm, ok := byName[name]
		if !ok || tm.role() != want.role || tm.Access != want.access {
			t.Errorf("%s after the upgrade: %+v (found %v), want role %q access %v", name, tm, ok, want.role, want.access)
		}
	}

	hooks := string(e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/webhooks", adminToken, nil, 200))
	if !strings.Contains(hooks, "wh_07bf65b0992139fb") {
		t.Errorf("the fixture's webhook is gone: %s", hooks)
	}
	var feed struct {
		Entries []struct{ Seq uint64 }
		Head    uint64
	}
	if err := json.Unmarshal(e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/feed?after=0&limit=100", adminToken, nil, 200), &feed); err != nil {
		t.Fatal(err)
	}
	if len(feed.Entries) != 8 || feed.Head != 8 {
		t.Fatalf("feed after the upgrade: %d entries, head %d; want 8 and 8", len(feed.Entries), feed.Head)
	}

	// New writes: the old token "okta" still authenticates SCIM (its digest
	// was kept), and a new member of a mapped group gets the role.
	const fixtureOktaToken = "scimd_xMGPtCAIbbgEStt6QUZEMQ1AhXgRMaKiR4LaFY0BO4Q"
	e.token = fixtureOktaToken
	erin := e.createUser("erin@example.com", nil)
	var groups struct {
		Groups []struct{ ID, DisplayName string }
	}
	if err := json.Unmarshal(e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/groups", adminToken, nil, 200), &groups); err != nil {
		t.Fatal(err)
	}
	support := ""
	for _, g := range groups.Groups {
		if g.DisplayName == "Intercom Support" {
			support = g.ID
		}
	}
	if support == "" {
		t.Fatalf("no group Intercom Support after the upgrade: %+v", groups)
	}
	e.addMembers(support, erin)
	e.expect(erin, "support", true)
	if res := e.verifyChain("expect=" + fixtureHead); !res.OK || res.Events <= 34 {
		t.Fatalf("audit verify after new writes = %+v", res)
	}

	// Reopening does not migrate (or back up) again.
	e.restart()
	if again, _ := filepath.Glob(filepath.Join(e.data, sqlite.FileName+".schema-v*.backup")); len(again) != 1 {
		t.Errorf("backups after a second start: %v", again)
	}
}
