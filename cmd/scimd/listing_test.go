package main

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestListingCommandsFormats runs every listing command of the CLI against
// a real server in each --format: the table has its header, json is the
// API's JSON, csv parses with the same header as the table; an unknown
// format is refused naming the formats (issue 18, item 6).
func TestListingCommandsFormats(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	c := newBinClient(t, d)
	zed := c.createUser(map[string]any{"userName": "zed@example.com", "active": true})
	amy := c.createUser(map[string]any{"userName": "amy@example.com", "active": true})
	c.createGroup("Intercom Support", zed, amy)
	c.must(http.MethodPost, "/scim/v2/Groups", c.scim, map[string]any{"displayName": "Intercom Admins", "externalId": "00g-a"}, nil)
	c.admin(http.MethodPost, "/api/v1/clients", map[string]any{"name": "entra"}, nil)
	c.admin(http.MethodPost, "/api/v1/webhooks", map[string]any{"url": "https://hooks.example.com/x", "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}, nil)
	c.settle()

	for _, tc := range []struct {
		args   []string
		header string // first column of the table and CSV header
		want   string // text every table shows
	}{
		{[]string{"teammate", "list"}, "USERNAME", "amy@example.com"},
		{[]string{"changes", "list", "--state", "all"}, "ID", ""},
		{[]string{"token", "list"}, "NAME", "idp"},
		{[]string{"client", "list"}, "CLIENT ID", "entra"},
		{[]string{"webhook", "list"}, "ID", "hooks.example.com"},
		{[]string{"groups", "list"}, "GROUP", "Intercom Support"},
		{[]string{"audit", "--type", "teammate"}, "SEQ", "amy@example.com"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, err := d.cli(append(tc.args, "--format", "table")...)
			if err != nil || !strings.HasPrefix(out, tc.header) || !strings.Contains(out, tc.want) {
				t.Fatalf("--format table: %v\n%s", err, out)
			}
			out, err = d.cli(append(tc.args, "--format", "json")...)
			if err != nil || !json.Valid([]byte(out)) {
				t.Fatalf("--format json: %v\n%s", err, out)
			}
			out, err = d.cli(append(tc.args, "--format", "csv")...)
			if err != nil {
				t.Fatalf("--format csv: %v\n%s", err, out)
			}
			rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			if err != nil || len(rows) == 0 || rows[0][0] != tc.header {
				t.Fatalf("--format csv does not parse with header %q: %v\n%s", tc.header, err, out)
			}
			out, err = d.cli(append(tc.args, "--format", "yaml")...)
			if err == nil || !strings.Contains(out, "table, json, csv") { // audit adds jsonl
				t.Fatalf("--format yaml: %v, want an error naming the formats\n%s", err, out)
			}
		})
	}

	// teammate list: sorted by userName, "none" for no role, --access yes|no.
	out, err := d.cli("teammate", "list", "--format", "csv")
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := csv.NewReader(strings.NewReader(out)).ReadAll()
	var names []string
	for _, r := range rows[1:] {
		names = append(names, r[0])
	}
	if !slices.IsSorted(names) {
		t.Errorf("teammate list not sorted by userName: %v", names)
	}
	for access, want := range map[string]string{"yes": "amy@example.com", "true": "zed@example.com", "no": "marker-"} {
		out, err := d.cli("teammate", "list", "--access", access)
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("teammate list --access %s: %v\n%s", access, err, out)
		}
	}
	if out, err := d.cli("teammate", "list", "--access", "maybe"); err == nil || !strings.Contains(out, "yes, no, true or false") {
		t.Errorf("--access maybe: %v\n%s", err, out)
	}
	if out, err := d.cli("teammate", "list", "--access", "no"); err != nil || !strings.Contains(out, "none") {
		t.Errorf("a teammate without a role is not shown as none: %v\n%s", err, out)
	}

	// One spelling of "no role": null in JSON, in the teammates, the feed
	// and held changes alike.
	for _, path := range []string{"/api/v1/teammates", "/api/v1/feed?after=0&limit=1000", "/api/v1/changes?state=all"} {
		body := c.admin(http.MethodGet, path, nil, nil)
		if strings.Contains(body, `"role":""`) {
			t.Errorf("%s spells no role as \"\": %s", path, body)
		}
	}
	if feed := c.admin(http.MethodGet, "/api/v1/feed?after=0&limit=1000", nil, nil); !strings.Contains(feed, `"role":null`) {
		t.Errorf("the feed has no null role: %s", feed)
	}

	// The commands that had only curl before.
	if out, err := d.cli("teammate", "history", "amy@example.com"); err != nil || !strings.Contains(out, "support") {
		t.Errorf("teammate history: %v\n%s", err, out)
	}
	if out, err := d.cli("policy", "status"); err != nil || !strings.Contains(out, "policy: active") {
		t.Errorf("policy status: %v\n%s", err, out)
	}
	if out, err := d.cli("policy", "reload", "--format", "json"); err != nil || !json.Valid([]byte(out)) {
		t.Errorf("policy reload: %v\n%s", err, out)
	}
	if out, err := d.cli("groups", "list"); err != nil || !strings.Contains(out, "mapped by its display name") {
		t.Errorf("groups list does not show the display-name warning: %v\n%s", err, out)
	}
}

// TestPolicyDirectorySpelledOneWay: the policy directory is --policies for
// every command that reads one (serve, plan, whatif, policy test|check,
// shadow set); the older positional form still works, and two different
// directories are refused.
func TestPolicyDirectorySpelledOneWay(t *testing.T) {
	dir := filepath.Join("..", "..", "policies")
	for _, args := range [][]string{
		{"policy", "check", "--policies", dir},
		{"policy", "check", dir},
		{"policy", "test", "--policies", dir},
	} {
		if out, err := runScimd(args...); err != nil {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
	if out, err := runScimd("policy", "check", "--policies", dir, t.TempDir()); err == nil || !strings.Contains(out, "two policy directories") {
		t.Errorf("two directories: %v\n%s", err, out)
	}
	if out, err := runScimd("shadow", "set"); err == nil || !strings.Contains(out, "--policies") {
		t.Errorf("shadow set without a directory: %v\n%s", err, out)
	}
}
