package audit

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

type detail struct {
	Zeta  string `json:"zeta"`
	Alpha int    `json:"alpha"`
}

func chain(t *testing.T, n int) []Event {
	t.Helper()
	prev := GenesisHash
	var out []Event
	for i := 1; i <= n; i++ {
		e, err := Seal(Event{Time: time.Now(), Type: TypeUserCreated, Actor: Actor{Kind: "token", Name: "okta"},
			Target: Target{Type: "User", ID: "u"}, Change: &Change{From: detail{"z", 1}, To: map[string]any{"b": 2, "a": []int{1}}},
			Details: map[string]any{"cause": detail{"x", i}}}, uint64(i), prev)
		if err != nil {
			t.Fatal(err)
		}
		prev = e.Hash
		out = append(out, e)
	}
	return out
}

// roundTrip stores and reads back events as a store does, as JSON.
func roundTrip(t *testing.T, events []Event) []Event {
	t.Helper()
	b, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	var out []Event
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestChainVerifiesAfterRoundTrip(t *testing.T) {
	v := NewVerifier()
	for _, e := range roundTrip(t, chain(t, 5)) {
		if err := v.Next(e); err != nil {
			t.Fatal(err)
		}
	}
	if v.Count() != 5 {
		t.Fatalf("count %d", v.Count())
	}
}

func TestVerifierFindsTheBrokenLink(t *testing.T) {
	tests := []struct {
		name   string
		tamper func([]Event) []Event
		want   uint64
	}{
		{"edited content", func(es []Event) []Event { es[2].Target.ID = "other"; return es }, 3},
		{"edited reasons", func(es []Event) []Event { es[3].Reasons = []string{"x"}; return es }, 4},
		{"removed event", func(es []Event) []Event { return append(es[:1], es[2:]...) }, 3},
		{"reordered", func(es []Event) []Event { es[1], es[2] = es[2], es[1]; return es }, 3},
		{"rehashed edit", func(es []Event) []Event {
			es[1].Type = "forged"
			es[1].Hash, _ = ComputeHash(es[1])
			return es
		}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			events := tc.tamper(roundTrip(t, chain(t, 5)))
			v := NewVerifier()
			var err error
			for _, e := range events {
				if err = v.Next(e); err != nil {
					break
				}
			}
			var broken *BrokenLinkError
			if !errors.As(err, &broken) || broken.Seq != tc.want {
				t.Fatalf("err = %v, want broken link at %d", err, tc.want)
			}
		})
	}
}
