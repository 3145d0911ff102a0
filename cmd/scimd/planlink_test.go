package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestActivationNamesItsPlan: policy.activated names the policy.planned
// event of its revision, and the activation's decision.summary says
// whether the changes applied are the plan's: as planned when nothing
// moved between plan and merge, not as planned when a teammate joined the
// newly mapped group meanwhile (issue 12: plans bound to what is
// activated).
func TestActivationNamesItsPlan(t *testing.T) {
	live := copyDir(t, filepath.Join("..", "..", "policies"))
	d := startDaemon(t, t.TempDir(), "--policies", live)
	c := newBinClient(t, d)
	erin := c.createUser(map[string]any{"userName": "erin@example.com", "active": true})
	group := c.createGroup("Platform Engineering", erin)
	c.settle()

	for i, tc := range []struct {
		name    string
		between func() // what happens between plan and activation
		matches bool
	}{
		{"as planned", func() {}, true},
		{"state moved", func() {
			fay := c.createUser(map[string]any{"userName": "fay@example.com", "active": true})
			c.patch("/scim/v2/Groups/"+group, map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": fay}}})
			c.settle()
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			candidate := copyDir(t, filepath.Join("..", "..", "policies"))
			path := filepath.Join(candidate, "groups.rego")
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			role := []string{"viewer", "support"}[i]
			mapping := fmt.Sprintf("group_roles := {\n\t\"Platform Engineering\": %q,", role)
			src = []byte(strings.Replace(string(src), "group_roles := {", mapping, 1))
			if err := os.WriteFile(path, src, 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := d.cli("plan", "--policies", candidate); err == nil || !strings.Contains(out, "Platform Engineering") {
				t.Fatalf("plan: %v\n%s", err, out) // exit status 2: changes
			}
			planned := c.auditEvents("policy.planned")
			planSeq := planned[len(planned)-1]["seq"]
			tc.between()
			if err := os.WriteFile(filepath.Join(live, "groups.rego"), src, 0o600); err != nil {
				t.Fatal(err)
			}
			var activated, summary map[string]any
			c.eventually(20*time.Second, "the activation and its pass", func() bool {
				acts := c.auditEvents("policy.activated")
				activated = acts[len(acts)-1]
				sums := c.auditEvents("decision.summary")
				if len(sums) == 0 || activated["target"].(map[string]any)["id"] != planned[len(planned)-1]["target"].(map[string]any)["id"] {
					return false
				}
				summary = sums[len(sums)-1]
				return summary["seq"].(float64) > activated["seq"].(float64)
			})
			plan, _ := activated["details"].(map[string]any)["plan"].(map[string]any)
			if plan == nil || plan["seq"] != planSeq || plan["againstReplacedRevision"] != true {
				b, _ := json.Marshal(activated["details"])
				t.Fatalf("policy.activated details = %s, want plan seq %v against the replaced revision", b, planSeq)
			}
			got, _ := summary["details"].(map[string]any)["plan"].(map[string]any)
			if got == nil || got["seq"] != planSeq || got["matches"] != tc.matches {
				b, _ := json.Marshal(summary["details"])
				t.Fatalf("decision.summary details = %s, want plan %v matches=%v", b, planSeq, tc.matches)
			}
		})
	}
}
