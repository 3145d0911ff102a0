package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scimd/scimd/audit"
)

// discardBackend persists nothing: for measuring the in-memory state alone.
type discardBackend struct{}

func (discardBackend) Load(context.Context, func(Row) error) (LoadState, error) {
	return LoadState{LastHash: audit.GenesisHash}, nil
}
func (discardBackend) Commit(context.Context, []*Batch) error { return nil }
func (discardBackend) AuditEvents(context.Context, AuditQuery) ([]audit.Event, error) {
	return nil, nil
}
func (discardBackend) FeedEntries(context.Context, uint64, int) ([]FeedEntry, error) { return nil, nil }
func (discardBackend) Close() error                                                  { return nil }

type heapRecord struct {
	Role   string `json:"role"`
	Access bool   `json:"access"`
}

// BenchmarkLoadedHeap measures the live heap of a loaded state of 100k
// users (each with a record, as teammates have), 1k groups and 300k
// memberships. It runs once whatever b.N is and reports MB of live heap.
// With SCIMD_HEAP_PROFILE set it writes a heap profile of that state to the
// file it names.
func BenchmarkLoadedHeap(b *testing.B) {
	const users, groups, memberships = 100_000, 1_000, 300_000
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	s, err := Open(context.Background(), Options{Backend: discardBackend{}, Records: map[string]RecordDecoder{
		"teammates": func(b []byte) (any, error) { var r heapRecord; err := json.Unmarshal(b, &r); return &r, err },
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const batch = 1000
	for start := 0; start < users; start += batch {
		if err := s.Write(ctx, func(w *WriteTxn) error {
			for i := start; i < start+batch; i++ {
				id := fmt.Sprintf("%08d-0000-4000-8000-000000000000", i)
				r := &Resource{ID: id, Kind: KindUser, Name: fmt.Sprintf("user%d@example.com", i),
					Attrs: map[string]any{"active": true, "name": map[string]any{"givenName": "G", "familyName": "F"},
						"emails": []any{map[string]any{"value": fmt.Sprintf("user%d@example.com", i), "primary": true}}},
					Version: 1}
				if err := w.PutResource(r); err != nil {
					return err
				}
				if err := w.PutRecord("teammates", id, &heapRecord{Role: "viewer", Access: true}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Write(ctx, func(w *WriteTxn) error {
		for g := 0; g < groups; g++ {
			if err := w.PutResource(&Resource{ID: fmt.Sprintf("g%07d", g), Kind: KindGroup, Name: fmt.Sprintf("Group %d", g), Version: 1}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	for start := 0; start < memberships; start += batch {
		if err := s.Write(ctx, func(w *WriteTxn) error {
			for m := start; m < start+batch; m++ {
				u, g := m%users, (m/users*7+m)%groups
				if _, err := w.AddMember(&Membership{GroupID: fmt.Sprintf("g%07d", g),
					MemberID: fmt.Sprintf("%08d-0000-4000-8000-000000000000", u), MemberKind: KindUser}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if n := len(s.Read().Members("g0000000")); n == 0 {
		b.Fatal("no members loaded")
	}
	if path := os.Getenv("SCIMD_HEAP_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MB")
	b.ReportMetric(0, "ns/op")
}

// rowsBackend holds rows in memory and loads them: for measuring Open
// without a database.
type rowsBackend struct {
	discardBackend
	rows []Row
}

func (b rowsBackend) Load(_ context.Context, fn func(Row) error) (LoadState, error) {
	for _, r := range b.rows {
		if err := fn(r); err != nil {
			return LoadState{}, err
		}
	}
	return LoadState{LastHash: audit.GenesisHash}, nil
}

// BenchmarkOpenRows measures Open of 100k users with a record each, 1k
// groups and 300k memberships, as a backend hands them over (in table and
// key order, as SQLite does), without the database's own cost.
func BenchmarkOpenRows(b *testing.B) {
	const users, groups, memberships = 100_000, 1_000, 300_000
	var rows []Row
	add := func(table string, obj any) {
		key, data, err := encodeObject(table, obj)
		if err != nil {
			b.Fatal(err)
		}
		rows = append(rows, Row{Table: table, Key: key, Data: data})
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	userID := func(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012d", i*2654435761%(1<<32), i) }
	for g := 0; g < groups; g++ {
		add(TableGroups, &Resource{ID: fmt.Sprintf("g%07d", g), Kind: KindGroup, Name: fmt.Sprintf("Group %d", g), Attrs: map[string]any{}, Created: now, Modified: now, Version: 1})
	}
	for m := 0; m < memberships; m++ {
		u, g := m%users, (m/users*7+m)%groups
		add(TableMemberships, &Membership{GroupID: fmt.Sprintf("g%07d", g), MemberID: userID(u), MemberKind: KindUser})
	}
	for i := 0; i < users; i++ {
		add(TableRecords, &Record{Table: "teammates", Key: userID(i), Value: &heapRecord{Role: "viewer", Access: true}})
	}
	for i := 0; i < users; i++ {
		name := fmt.Sprintf("user%d@example.com", i)
		add(TableUsers, &Resource{ID: userID(i), Kind: KindUser, ExternalID: fmt.Sprint("ext-", i), Name: name, Created: now, Modified: now, Version: 1,
			Attrs: map[string]any{"active": true, "displayName": "Given Family", "name": map[string]any{"givenName": "Given", "familyName": fmt.Sprint("Family", i)},
				"emails": []any{map[string]any{"value": name, "type": "work", "primary": true}},
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"department": "Support", "employeeNumber": fmt.Sprint(i)}}})
	}
	slices.SortFunc(rows, func(x, y Row) int {
		if c := strings.Compare(x.Table, y.Table); c != 0 {
			return c
		}
		return strings.Compare(x.Key, y.Key)
	})
	opts := Options{Backend: rowsBackend{rows: rows}, Records: map[string]RecordDecoder{
		"teammates": func(b []byte) (any, error) { var r heapRecord; err := json.Unmarshal(b, &r); return &r, err },
	}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s, err := Open(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		if n := len(s.Read().GroupsOf(userID(7))); n != 3 {
			b.Fatalf("user 7 is in %d groups, want 3", n)
		}
		b.StopTimer()
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
