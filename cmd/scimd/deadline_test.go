package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// slowRule is a rule that is slow only for users with a given title: no
// test input reaches it, and the title is not a constant of the policy
// (the gate probes those), so it passes the gate.
const slowRule = `package scimd

attribute_grants contains {"role": "viewer", "reason": "title is Slowpoke"} if {
	input.user.title == concat("", ["Slow", "poke"])
	every i in numbers.range(1, 100000) {
		every j in numbers.range(1, 100000) {
			i != 0 - j
		}
	}
}
`

// TestSlowPolicyDoesNotStallDeprovisioning runs the real binary with a
// policy that is slow for one user (finding 3 of issue 12). That user's
// evaluation times out: the teammate keeps its decision, is marked with
// decisionError, counted and audited; a membership removal for another
// teammate still applies at once; /readyz reports the backlog.
func TestSlowPolicyDoesNotStallDeprovisioning(t *testing.T) {
	policies := copyDir(t, filepath.Join("..", "..", "policies"))
	if err := os.WriteFile(filepath.Join(policies, "slow.rego"), []byte(slowRule), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, t.TempDir(), "--policies", policies, "--eval-timeout", "300ms", "--ready-max-backlog-age", "1s")
	c := newBinClient(t, d)
	alice := c.createUser(map[string]any{"userName": "alice@example.com", "active": true})
	slow := c.createUser(map[string]any{"userName": "slow@example.com", "active": true})
	admins := c.createGroup("Intercom Admins", alice, slow)
	hasAccess := func(id string, want bool) func() bool {
		return func() bool { tm := c.teammate(id); return tm != nil && tm["access"] == want }
	}
	c.eventually(10*time.Second, "alice and slow get admin", func() bool { return hasAccess(alice, true)() && hasAccess(slow, true)() })

	// The IdP sets the title that makes slow's evaluation slow.
	c.patch("/scim/v2/Users/"+slow, map[string]any{"op": "replace", "path": "title", "value": "Slowpoke"})
	c.eventually(10*time.Second, "slow is marked with decisionError", func() bool {
		tm := c.teammate(slow)
		s, _ := tm["decisionError"].(string)
		return strings.Contains(s, "deadline")
	})
	t.Logf("slow: %v", c.teammate(slow))
	if tm := c.teammate(slow); tm["role"] != "admin" || tm["access"] != true {
		t.Errorf("slow's decision changed on a failed evaluation: %v", tm)
	}
	var list struct {
		Teammates []map[string]any `json:"teammates"`
	}
	c.admin(http.MethodGet, "/api/v1/teammates", nil, &list)
	marked := 0
	for _, tm := range list.Teammates {
		if tm["decisionError"] != nil {
			marked++
		}
	}
	if marked != 1 {
		t.Errorf("GET /api/v1/teammates marks %d teammates with decisionError, want 1", marked)
	}

	// Removing alice from the admin group applies at once, whatever slow's
	// evaluation costs.
	c.patch("/scim/v2/Groups/"+admins, map[string]any{"op": "remove", "path": `members[value eq "` + alice + `"]`})
	took := c.eventually(10*time.Second, "alice loses access", hasAccess(alice, false))
	t.Logf("alice's removal applied %s after the PATCH", took)

	if v := c.metric("scimd_decision_errors_total"); v == "" || v == "0" {
		t.Errorf("scimd_decision_errors_total = %q", v)
	}
	if v := c.metric("scimd_reconcile_backlog"); v != "1" {
		t.Errorf("scimd_reconcile_backlog = %q, want 1", v)
	}
	if v := c.metric("scimd_reconcile_oldest_pending_seconds"); v == "" || v == "0" {
		t.Errorf("scimd_reconcile_oldest_pending_seconds = %q", v)
	}
	errorsAudited := 0
	for _, e := range c.auditEvents("policy.error") {
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), slow) && strings.Contains(string(b), "deadline") {
			errorsAudited++
		}
	}
	if errorsAudited == 0 {
		t.Error("no policy.error audit event for slow's timed-out evaluation")
	}
	c.eventually(10*time.Second, "/readyz reports the backlog", func() bool {
		status, body := c.do(http.MethodGet, "/readyz", "", nil)
		return status == http.StatusServiceUnavailable && strings.Contains(body, "backlog")
	})

	// Once the title goes away, slow is decided again and unmarked.
	c.patch("/scim/v2/Users/"+slow, map[string]any{"op": "remove", "path": "title"})
	c.eventually(10*time.Second, "slow is decided again", func() bool {
		tm := c.teammate(slow)
		return tm != nil && tm["decisionError"] == nil
	})
	c.eventually(10*time.Second, "/readyz ready again", func() bool {
		status, _ := c.do(http.MethodGet, "/readyz", "", nil)
		return status == http.StatusOK
	})
	if v := c.metric("scimd_reconcile_backlog"); v != "0" {
		t.Errorf("scimd_reconcile_backlog = %q after recovery, want 0", v)
	}
}
