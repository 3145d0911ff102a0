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

// TestNumbersKeptAsWritten seals events whose details and change hold
// numbers a float64 cannot carry (text with trailing zeros, integers above
// 2^53), stores them as JSON and reads them back as a store does: the
// chain verifies and the numbers read back are the ones written.
func TestNumbersKeptAsWritten(t *testing.T) {
	tests := []struct {
		name  string
		value any
		text  string // the value's JSON as written and read back
	}{
		{"decimal text", json.Number("12.50"), "12.50"},
		{"exponent text", json.Number("1E+2"), "1E+2"},
		{"int64 above 2^53", int64(1<<53 + 1), "9007199254740993"},
		{"uint64 max", uint64(1<<64 - 1), "18446744073709551615"},
		{"int above 2^53", 1<<62 + 1, "4611686018427387905"},
		{"float64", 0.1, "0.1"},
		{"in a list", []any{json.Number("1.10"), int64(-1<<62 - 3)}, "[1.10,-4611686018427387907]"},
		{"in a struct", struct {
			N int64 `json:"n"`
		}{1<<60 + 7}, `{"n":1152921504606846983}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Seal(Event{Time: time.Now(), Type: TypeUserPatched, Target: Target{Type: "User", ID: "u"},
				Change: &Change{To: tc.value}, Details: map[string]any{"n": tc.value}}, 1, GenesisHash)
			if err != nil {
				t.Fatal(err)
			}
			back := roundTrip(t, []Event{e})[0]
			if err := NewVerifier().Next(back); err != nil {
				t.Fatalf("sealed event does not verify after a round trip: %v", err)
			}
			for what, v := range map[string]any{"details": back.Details["n"], "change": back.Change.To} {
				got, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tc.text {
					t.Errorf("%s read back as %s, want %s", what, got, tc.text)
				}
			}
		})
	}
}
