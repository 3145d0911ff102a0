package postgres

import (
	"reflect"
	"testing"

	"github.com/scimd/scimd/scim/store"
)

func TestJournalEntryRoundTrip(t *testing.T) {
	tests := []struct {
		heads store.LoadState
		rows  []store.Row
	}{
		{store.LoadState{}, nil},
		{store.LoadState{LastSeq: 7, LastHash: "abc", LastFeedSeq: 3},
			[]store.Row{{Table: "users", Key: "u1", Data: []byte(`{"id":"u1"}`)}}},
		{store.LoadState{LastSeq: 1 << 40, LastHash: "h"},
			[]store.Row{{Table: "users", Key: "u1"}, {Table: "memberships", Key: "g/u", Data: []byte{}}, {Table: "", Key: "", Data: []byte("x")}}},
	}
	for _, tc := range tests {
		heads, rows, err := DecodeEntry(EncodeEntry(tc.heads, tc.rows))
		if err != nil {
			t.Fatalf("decode %v: %v", tc.rows, err)
		}
		if heads != tc.heads {
			t.Fatalf("heads = %+v, want %+v", heads, tc.heads)
		}
		if len(tc.rows) == 0 && len(rows) == 0 {
			continue
		}
		if !reflect.DeepEqual(rows, tc.rows) {
			t.Fatalf("rows = %#v, want %#v", rows, tc.rows)
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(EncodeEntry(store.LoadState{LastSeq: 2, LastHash: "ff", LastFeedSeq: 1},
		[]store.Row{{Table: "users", Key: "u1", Data: []byte(`{}`)}, {Table: "groups", Key: "g"}}))
	f.Add([]byte{1, 200, 1})
	f.Add([]byte{1, 0, 0, 0, 5, 'u'})
	f.Fuzz(func(t *testing.T, b []byte) {
		heads, rows, err := DecodeEntry(b)
		if err != nil {
			return
		}
		h2, again, err := DecodeEntry(EncodeEntry(heads, rows))
		if err != nil || len(again) != len(rows) || h2 != heads {
			t.Fatalf("re-encoding %d rows gave %d, %v", len(rows), len(again), err)
		}
	})
}
