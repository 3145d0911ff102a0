package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func canonicalCases() []Event {
	now := time.Date(2026, 11, 27, 10, 0, 0, 123456000, time.UTC)
	return []Event{
		{Seq: 1, Time: now, Type: TypeUserCreated},
		{Seq: 2, Time: now, Type: TypeDecision, Actor: Actor{Kind: "token", Name: "okta"},
			Target: Target{Type: "User", ID: "u1", Name: "a<b>&c@example.com"}, Reasons: []string{"member of \"X\" → admin"},
			PolicyRevision: "r", DecisionID: "d", RequestID: "q", PrevHash: GenesisHash,
			Change:  &Change{From: map[string]any{"role": nil, "access": false}, To: map[string]any{"role": "admin", "access": true}},
			Details: map[string]any{"n": 5, "f": 0.1, "big": 1e21, "u": uint64(1 << 40), "list": []any{"x", 2.5, nil, true}, "ids": []string{"a", "b"}, "num": json.Number("7")}},
		{Seq: 3, Time: now, Type: TypePolicyRefused, Change: &Change{}, Reasons: []string{}, Details: map[string]any{}},
		{Seq: 4, Time: now, Type: "x", Details: map[string]any{"nested": map[string]any{"z": 1, "a": []any{map[string]any{"y": "q"}}}}},
		{Seq: 5, Time: now, Type: "x", Target: Target{Type: "Group", Name: "Admins"}, Change: &Change{From: "viewer"}, Hash: "h"},
		{Seq: 6, Time: now, Type: "x", Target: Target{Type: "Group", ID: "g1"}, Change: &Change{To: []any{"a"}}, PolicyRevision: "r"},
		{Seq: 7, Time: now.Add(-time.Hour * 24 * 365 * 30), Type: "x\u2028\"", Actor: Actor{Name: "\u2029"}, RequestID: "<q>"},
	}
}

// TestCanonicalEventMatchesRoundTrip: the one-pass encoding gives exactly
// the bytes of the encode–decode–encode route, so hashes of stored events
// verify whichever route produced them.
func TestCanonicalEventMatchesRoundTrip(t *testing.T) {
	for _, e := range canonicalCases() {
		if !plainEvent(e) {
			t.Fatalf("event %d should take the one-pass route", e.Seq)
		}
		fast, err := appendCanonicalEvent(nil, e)
		if err != nil {
			t.Fatal(err)
		}
		slow, err := canonicalJSON(e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast, slow) {
			t.Errorf("event %d:\n one pass %s\n round trip %s", e.Seq, fast, slow)
		}
	}
}

func TestStructDetailsTakeTheRoundTrip(t *testing.T) {
	e := Event{Seq: 1, Type: "x", Details: map[string]any{"s": struct{ B, A int }{1, 2}}}
	if plainEvent(e) {
		t.Fatal("struct details must not take the one-pass route")
	}
	if e2 := (Event{Type: "x", Target: Target{Name: "bad\xff"}}); plainEvent(e2) {
		t.Fatal("invalid UTF-8 must not take the one-pass route")
	}
}

func FuzzCanonicalEvent(f *testing.F) {
	f.Add("okta", "User", "u1", "reason", "k", "v", 1.5)
	f.Add("<&>", "", "", "", "", "\xff", -0.0)
	f.Fuzz(func(t *testing.T, actor, typ, id, reason, key, val string, num float64) {
		e := Event{Seq: 9, Type: typ, Actor: Actor{Kind: "token", Name: actor}, Target: Target{Type: typ, ID: id},
			Reasons: []string{reason}, Details: map[string]any{key: val, "n": num, "l": []any{val, num}}}
		if _, err := json.Marshal(e); err != nil {
			return // NaN or Inf: not encodable either way
		}
		if !plainEvent(e) {
			return
		}
		fast, err := appendCanonicalEvent(nil, e)
		if err != nil {
			t.Fatal(err)
		}
		slow, err := canonicalJSON(e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast, slow) {
			t.Fatalf("one pass %s\nround trip %s", fast, slow)
		}
	})
}

func BenchmarkComputeHash(b *testing.B) {
	e := canonicalCases()[1]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ComputeHash(e); err != nil {
			b.Fatal(err)
		}
	}
}
