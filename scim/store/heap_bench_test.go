package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

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
