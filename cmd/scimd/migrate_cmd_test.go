package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scimd/scimd/scim/store/postgres/pgtest"
)

// TestMigrateToPostgresAndBack copies a data directory that a real scimd
// wrote into PostgreSQL, serves it from there, copies it back into a new
// data directory, and serves that: the same users, roles and audit chain.
func TestMigrateToPostgresAndBack(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	url := pgtest.Start(t).CreateDatabase(t)
	ctx := context.Background()
	dir := t.TempDir()
	d := startDaemon(t, dir, "--guard-escalation-count", "-1") // 5 admins at once
	token := d.scimToken("migrate")
	var ids []string
	for i := range 5 {
		status, body, err := call(ctx, http.DefaultClient, http.MethodPost, d.base+"/scim/v2/Users", token,
			map[string]any{"userName": fmt.Sprintf("m%d@example.com", i), "active": true})
		if err != nil || status != http.StatusCreated {
			t.Fatalf("create user: %d %s %v", status, body, err)
		}
		var u struct{ ID string }
		_ = json.Unmarshal(body, &u)
		ids = append(ids, u.ID)
	}
	members := []any{}
	for _, id := range ids {
		members = append(members, map[string]any{"value": id})
	}
	if status, body, err := call(ctx, http.DefaultClient, http.MethodPost, d.base+"/scim/v2/Groups", token,
		map[string]any{"displayName": "Intercom Admins", "members": members}); err != nil || status != http.StatusCreated {
		t.Fatalf("create group: %d %s %v", status, body, err)
	}
	for _, id := range ids {
		waitRole(t, d, id, "admin")
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}

	migrate := func(from, to string) (string, error) {
		out, err := exec.Command(binary, "migrate", "--from", from, "--to", to).CombinedOutput()
		return string(out), err
	}
	out, err := migrate(dir, url)
	if err != nil || !strings.Contains(out, "chain verified") {
		t.Fatalf("migrate to PostgreSQL: %v\n%s", err, out)
	}
	if strings.Contains(out, "@127.0.0.1") && strings.Contains(out, "password") {
		t.Fatalf("output names a password: %s", out)
	}
	// A second copy into the same database is refused and changes nothing.
	if out, err := migrate(dir, url); err == nil || !strings.Contains(out, "already holds state") {
		t.Fatalf("migrate into a non-empty database: %v\n%s", err, out)
	}
	back := filepath.Join(t.TempDir(), "back")
	if out, err := migrate(url, back); err != nil || !strings.Contains(out, "chain verified") {
		t.Fatalf("migrate back to a data directory: %v\n%s", err, out)
	}
	for _, d := range []*daemon{startDaemon(t, t.TempDir(), "--database", url), startDaemon(t, back)} {
		waitLeader(t, 30*time.Second, d)
		for _, id := range ids {
			waitRole(t, d, id, "admin")
		}
		status, body, err := call(ctx, http.DefaultClient, http.MethodGet, d.base+"/scim/v2/Users?count=100", token, nil)
		if err != nil || status != http.StatusOK || strings.Count(string(body), "@example.com") != 5 {
			t.Fatalf("list users after migration: %d %s %v", status, body, err)
		}
		if err := d.stop(); err != nil {
			t.Fatal(err)
		}
	}
}
