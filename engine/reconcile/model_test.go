package reconcile

import (
	"encoding/json"
	"testing"
)

// TestDetailsEncodeLikeTheirStructs: audit events carry State and Cause as
// plain maps; consumers reading the audit log see the same JSON as before.
func TestDetailsEncodeLikeTheirStructs(t *testing.T) {
	cases := []struct {
		name   string
		typed  any
		detail any
	}{
		{"empty state", State{}, State{}.detail()},
		{"state", State{Role: "admin", Access: true, Excluded: true, Exists: true}, State{Role: "admin", Access: true, Excluded: true, Exists: true}.detail()},
		{"empty cause", Cause{Kind: "policy"}, Cause{Kind: "policy"}.detail()},
		{"cause", Cause{Kind: "scim", Actor: "okta", RequestID: "r", Revision: "v", AuditSeqs: []uint64{1, 99}},
			Cause{Kind: "scim", Actor: "okta", RequestID: "r", Revision: "v", AuditSeqs: []uint64{1, 99}}.detail()},
	}
	for _, c := range cases {
		a, _ := json.Marshal(c.typed)
		var generic any
		_ = json.Unmarshal(a, &generic)
		want, _ := json.Marshal(generic)
		got, _ := json.Marshal(c.detail)
		if string(got) != string(want) {
			t.Errorf("%s: detail %s, struct %s", c.name, got, want)
		}
	}
}
