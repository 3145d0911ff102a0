package reconcile

import (
	"encoding/json"
	"testing"

	"github.com/scimd/scimd/engine/policy"
)

func digestInput() policy.TeammateInput {
	return policy.TeammateInput{
		User: map[string]any{"id": "u1", "userName": "alice", "active": true, "n": 1.5, "j": json.Number("7"),
			"emails": []any{map[string]any{"value": "a@example.com", "primary": true}}, "x": nil,
			"tags": []string{"a", "b"}},
		Groups:  []policy.Group{{ID: "g1", ExternalID: "e1", DisplayName: "Admins"}},
		Current: policy.Current{Role: "admin", Access: true},
	}
}

func TestInputDigestChangesWithEveryPart(t *testing.T) {
	base := inputDigest(digestInput())
	if base == "" || base != inputDigest(digestInput()) {
		t.Fatalf("digest %q is not stable", base)
	}
	for name, edit := range map[string]func(*policy.TeammateInput){
		"string":      func(in *policy.TeammateInput) { in.User["userName"] = "alicf" },
		"bool":        func(in *policy.TeammateInput) { in.User["active"] = false },
		"number":      func(in *policy.TeammateInput) { in.User["n"] = 2.5 },
		"json number": func(in *policy.TeammateInput) { in.User["j"] = json.Number("8") },
		"nested": func(in *policy.TeammateInput) {
			in.User["emails"] = []any{map[string]any{"value": "b@example.com", "primary": true}}
		},
		"null to empty": func(in *policy.TeammateInput) { in.User["x"] = "" },
		"key moved":     func(in *policy.TeammateInput) { delete(in.User, "x"); in.User["y"] = nil },
		"other type":    func(in *policy.TeammateInput) { in.User["tags"] = []string{"a", "c"} },
		"group":         func(in *policy.TeammateInput) { in.Groups[0].DisplayName = "Admin" },
		"group split": func(in *policy.TeammateInput) {
			in.Groups[0].ID, in.Groups[0].ExternalID = "g1e", "1"
		},
		"no group": func(in *policy.TeammateInput) { in.Groups = nil },
		"role":     func(in *policy.TeammateInput) { in.Current.Role = "" },
		"access":   func(in *policy.TeammateInput) { in.Current.Access = false },
	} {
		in := digestInput()
		edit(&in)
		if d := inputDigest(in); d == base || d == "" {
			t.Errorf("%s: digest %q, base %q", name, d, base)
		}
	}
}

func TestInputDigestIgnoresMapOrder(t *testing.T) {
	a := digestInput()
	b := digestInput()
	b.User = map[string]any{}
	keys := []string{"tags", "x", "emails", "j", "n", "active", "userName", "id"}
	for _, k := range keys {
		b.User[k] = a.User[k]
	}
	if inputDigest(a) != inputDigest(b) {
		t.Error("the same input built in another order has another digest")
	}
}

func TestInputDigestRefusesUnencodable(t *testing.T) {
	in := digestInput()
	in.User["c"] = make(chan int)
	if d := inputDigest(in); d != "" {
		t.Errorf("digest of an input holding a channel: %q", d)
	}
}
