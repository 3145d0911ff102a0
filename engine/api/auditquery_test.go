package api

import (
	"fmt"
	"testing"

	"github.com/scimd/scimd/audit"
)

func evs(seqs ...uint64) []audit.Event {
	out := make([]audit.Event, len(seqs))
	for i, s := range seqs {
		out[i] = audit.Event{Seq: s}
	}
	return out
}

func TestMergeEvents(t *testing.T) {
	tests := []struct {
		a, b  []audit.Event
		limit int
		want  string
	}{
		{evs(1, 4, 6), evs(2, 3, 7), 0, "[1 2 3 4 6 7]"},
		{evs(1, 4, 6), evs(2, 3, 7), 4, "[1 2 3 4]"},
		{evs(1, 2), evs(2, 3), 0, "[1 2 3]"},
		{nil, evs(5), 1, "[5]"},
		{evs(5), nil, 0, "[5]"},
		{nil, nil, 3, "[]"},
	}
	for _, tt := range tests {
		got := mergeEvents(tt.a, tt.b, tt.limit)
		seqs := make([]uint64, len(got))
		for i, e := range got {
			seqs[i] = e.Seq
		}
		if fmt.Sprint(seqs) != tt.want {
			t.Errorf("mergeEvents(%v, %v, %d) = %v, want %s", tt.a, tt.b, tt.limit, seqs, tt.want)
		}
	}
}

func TestGroupTypes(t *testing.T) {
	tests := []struct {
		in   []string
		want string
		ok   bool
	}{
		{nil, "[scim.group]", true},
		{[]string{"scim"}, "[scim.group]", true},
		{[]string{"scim.group.patched", "teammate"}, "[scim.group.patched]", true},
		{[]string{"teammate", "scim.user"}, "[]", false},
		{[]string{"scim.groupie"}, "[]", false},
	}
	for _, tt := range tests {
		got, ok := groupTypes(tt.in)
		if ok != tt.ok || fmt.Sprint(append([]string{}, got...)) != tt.want {
			t.Errorf("groupTypes(%v) = %v, %v; want %s, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
