package policywatch_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/policy/policytest"
)

// Policy events must verify after a round trip through JSON, as a store
// that keeps them as JSON would read them back.
func TestPolicyEventsSurviveJSONRoundTrip(t *testing.T) {
	h, _ := startMinimal(t)
	writeFile(t, filepath.Join(h.dir, "policy.rego"), policytest.FailingTest()["policy.rego"])
	writeFile(t, filepath.Join(h.dir, "policy_test.rego"), policytest.FailingTest()["policy_test.rego"])
	h.waitFor("a refusal", func() bool { return len(h.eventsOfType(audit.TypePolicyRefused)) > 0 })
	h.mu.Lock()
	events := append([]audit.Event(nil), h.events...)
	h.mu.Unlock()

	v := audit.NewVerifier()
	prev := audit.GenesisHash
	for i, e := range events {
		sealed, err := audit.Seal(e, uint64(i+1), prev)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(sealed)
		if err != nil {
			t.Fatal(err)
		}
		var back audit.Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if err := v.Next(back); err != nil {
			t.Fatalf("event %d (%s) after a JSON round trip: %v\n%s", i, e.Type, err, b)
		}
		prev = sealed.Hash
	}
	if v.Count() < 2 {
		t.Fatalf("verified %d events, want an activation and a refusal", v.Count())
	}
}
