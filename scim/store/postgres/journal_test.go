package postgres

import (
	"reflect"
	"testing"

	"github.com/scimd/scimd/scim/store"
)

func TestJournalRowsRoundTrip(t *testing.T) {
	tests := [][]store.Row{
		nil,
		{{Table: "users", Key: "u1", Data: []byte(`{"id":"u1"}`)}},
		{{Table: "users", Key: "u1"}, {Table: "memberships", Key: "g/u", Data: []byte{}}, {Table: "", Key: "", Data: []byte("x")}},
	}
	for _, rows := range tests {
		got, err := DecodeRows(EncodeRows(rows))
		if err != nil {
			t.Fatalf("decode %v: %v", rows, err)
		}
		if len(rows) == 0 && len(got) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, rows) {
			t.Fatalf("round trip = %#v, want %#v", got, rows)
		}
	}
}

func FuzzDecodeRows(f *testing.F) {
	f.Add(EncodeRows([]store.Row{{Table: "users", Key: "u1", Data: []byte(`{}`)}, {Table: "groups", Key: "g"}}))
	f.Add([]byte{1, 200, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := DecodeRows(b)
		if err != nil {
			return
		}
		again, err := DecodeRows(EncodeRows(rows))
		if err != nil || len(again) != len(rows) {
			t.Fatalf("re-encoding %d rows gave %d, %v", len(rows), len(again), err)
		}
	})
}
