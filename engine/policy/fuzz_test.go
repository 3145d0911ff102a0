package policy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/scimd/scimd/engine/policy"
)

// FuzzTeammateInput evaluates the default policy on arbitrary users. It
// must never panic; bad input is an error, and a decision always keeps the
// contract.
func FuzzTeammateInput(f *testing.F) {
	s := loadDefault(f)
	f.Add([]byte(`{"userName":"alice@example.com","active":true}`), "Intercom Admins\nIntercom Viewers", "viewer", true, false)
	f.Add([]byte(`{"userName":"breakglass@example.com","emails":[{"value":"x"}]}`), "", "admin", true, true)
	f.Add([]byte(`{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Support"}}`), "Sales", "", false, false)
	f.Add([]byte(`{"active":"false","emails":"breakglass@example.com","userName":null}`), "Intercom Support", "owner", true, true)
	f.Add([]byte(`[1,2,3]`), "\n\n", "", false, true)
	f.Fuzz(func(t *testing.T, userJSON []byte, groupNames, currentRole string, access, useNumber bool) {
		dec := json.NewDecoder(bytes.NewReader(userJSON))
		if useNumber {
			dec.UseNumber()
		}
		var v any
		user := map[string]any{}
		if err := dec.Decode(&v); err != nil {
			user["userName"] = string(userJSON)
		} else if m, ok := v.(map[string]any); ok {
			user = m
		} else {
			user["x"] = v
		}
		var groups []policy.Group
		for i, name := range strings.Split(groupNames, "\n") {
			groups = append(groups, policy.Group{ID: string(rune('a' + i%26)), ExternalID: name, DisplayName: name})
		}
		in := policy.TeammateInput{User: user, Groups: groups, Current: policy.Current{Role: currentRole, Access: access}}
		d, err := s.Teammate(context.Background(), in)
		if d.Revision != s.Revision() || d.DecisionID == "" {
			t.Fatalf("decision not tagged: %+v", d)
		}
		if err != nil {
			return
		}
		if d.Excluded {
			if d.Role != currentRole || d.Access != access {
				t.Fatalf("excluded teammate changed: %+v, current %q/%v", d, currentRole, access)
			}
			return
		}
		if d.Access != (d.Role != "") || (d.Role != "" && !slices.Contains(s.Roles(), d.Role)) || len(d.Reasons) == 0 {
			t.Fatalf("decision breaks the contract: %+v", d)
		}
	})
}
