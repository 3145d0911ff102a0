package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/api"
	"github.com/scimd/scimd/engine/reconcile"
)

func TestExplainAndWhatIf(t *testing.T) {
	s := startLive(t)
	ctx := context.Background()
	dan := s.createUser("dan@example.com")
	s.createGroup("Intercom Support", dan)
	s.createGroup("Intercom Admins")

	// explain, by userName and by id, text and JSON.
	r := s.runCLI(ctx, "explain", "dan@example.com")
	for _, w := range []string{"dan@example.com (" + dan + "): role support",
		"chosen by data.scimd.teammate at teammate.rego:", "(else branch 2)", "support is 2 of 3 in the precedence admin > support > viewer",
		"group Intercom Support", "→ no access",
		`groups.rego:`, `scimd.group_role({"displayName":"Intercom Support"`} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("explain lacks %q:\n%s%s", w, r.stdout, r.stderr)
		}
	}
	r = s.runCLI(ctx, "explain", dan, "--format", "json")
	var ex api.ExplainResponse
	if err := json.Unmarshal([]byte(r.stdout), &ex); err != nil || ex.Explanation == nil || ex.Decision.Role != "support" || len(ex.Rules) == 0 {
		t.Fatalf("explain json: %v %s", err, r.stdout)
	}
	if r := s.runCLI(ctx, "explain", "nobody"); r.code == 0 || !strings.Contains(r.stderr, "Not Found") {
		t.Errorf("explain of an unknown user: exit %d %s", r.code, r.stderr)
	}

	// what-if: nothing changes but one audit event.
	before := s.states()
	var events struct{ Events []audit.Event }
	s.api(http.MethodGet, "/api/v1/audit?limit=1000", nil, &events)
	n := len(events.Events)
	r = s.runCLI(ctx, "whatif", "--user", "dan@example.com", "--add-group", "Intercom Admins", "--remove-group", "Intercom Support")
	for _, w := range []string{"now:    role support", "after:  role admin", "the decision would change; nothing was applied"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("whatif lacks %q:\n%s%s", w, r.stdout, r.stderr)
		}
	}
	r = s.runCLI(ctx, "whatif", "--user", dan, "--set", "active=false", "--format", "json")
	var wi reconcile.WhatIf
	if err := json.Unmarshal([]byte(r.stdout), &wi); err != nil || wi.After.Access || !wi.Changed {
		t.Fatalf("whatif --set active=false: %v %s%s", err, r.stdout, r.stderr)
	}
	r = s.runCLI(ctx, "whatif", "--user", dan, "--set", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.department=Support",
		"--remove-group", "Intercom Support")
	if !strings.Contains(r.stdout, "after:  role support") || !strings.Contains(r.stdout, `department is "Support"`) {
		t.Errorf("whatif --set department: %s%s", r.stdout, r.stderr)
	}
	// Under a candidate policy that maps a new group to admin.
	cand := copyDir(t, s.policies)
	writeEdit(t, cand, "groups.rego", mapGroupLine("Support Leads", "admin"))
	r = s.runCLI(ctx, "whatif", "--user", dan, "--add-group", "Support Leads", "--policies", cand)
	if !strings.Contains(r.stdout, "now:    role support") || !strings.Contains(r.stdout, "after:  role admin") {
		t.Errorf("whatif --policies: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	if r := s.runCLI(ctx, "whatif", "--user", dan, "--remove-group", "Sales"); r.code == 0 || !strings.Contains(r.stderr, "not in a group") {
		t.Errorf("removing a group the user is not in: exit %d %s", r.code, r.stderr)
	}
	if got := s.states(); len(got) != len(before) || got["dan@example.com"] != before["dan@example.com"] {
		t.Errorf("what-if changed teammates: %v → %v", before, got)
	}
	s.api(http.MethodGet, "/api/v1/audit?limit=1000", nil, &events)
	var whatifs int
	for _, e := range events.Events[n:] {
		if e.Type != audit.TypePolicyWhatIf {
			t.Errorf("what-if wrote a %s event", e.Type)
		}
		whatifs++
	}
	if whatifs != 4 {
		t.Errorf("%d what-if events, want 4 (one per answered query)", whatifs)
	}
}
