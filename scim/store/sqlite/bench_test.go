package sqlite

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/store"
)

// nullBackend keeps nothing: the floor of a write without any journal.
type nullBackend struct{}

func (nullBackend) Load(context.Context, func(store.Row) error) (store.LoadState, error) {
	return store.LoadState{LastHash: audit.GenesisHash}, nil
}
func (nullBackend) Commit(context.Context, []*store.Batch) error { return nil }
func (nullBackend) AuditEvents(context.Context, store.AuditQuery) ([]audit.Event, error) {
	return nil, nil
}
func (nullBackend) FeedEntries(context.Context, uint64, int) ([]store.FeedEntry, error) {
	return nil, nil
}
func (nullBackend) Close() error { return nil }

// benchBackends are the journals a write is measured against: the real
// one (fsync on every commit), the same without fsync, and none.
var benchBackends = []struct {
	name string
	open func(b *testing.B) store.Backend
}{
	{"sqlite-fsync", func(b *testing.B) store.Backend { return mustOpen(b, "FULL") }},
	{"sqlite-nofsync", func(b *testing.B) store.Backend { return mustOpen(b, "OFF") }},
	{"memory-only", func(*testing.B) store.Backend { return nullBackend{} }},
}

func mustOpen(b *testing.B, synchronous string) store.Backend {
	be, err := open(context.Background(), b.TempDir(), synchronous)
	if err != nil {
		b.Fatal(err)
	}
	return be
}

// benchUser is a SCIM user as IdPs push it.
func benchUser(i int64, now time.Time) *store.Resource {
	name := fmt.Sprintf("user%07d@example.com", i)
	return &store.Resource{ID: fmt.Sprintf("id-%07d", i), Kind: store.KindUser, Name: name, ExternalID: fmt.Sprint("ext-", i),
		Attrs: map[string]any{
			"active":      true,
			"displayName": "Given Family",
			"name":        map[string]any{"givenName": "Given", "familyName": fmt.Sprint("Family", i)},
			"emails":      []any{map[string]any{"value": name, "type": "work", "primary": true}},
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"department": "Sales"},
		},
		Created: now, Modified: now, Version: 1}
}

// write is one SCIM user creation: the resource and its audit event.
func write(ctx context.Context, s *store.Store, i int64) error {
	return s.Write(ctx, func(tx *store.WriteTxn) error {
		u := benchUser(i, tx.Now())
		if err := tx.PutResource(u); err != nil {
			return err
		}
		tx.Audit(audit.Event{Type: audit.TypeUserCreated, Actor: audit.Actor{Kind: "token", Name: "okta"},
			Target: audit.Target{Type: "User", ID: u.ID, Name: u.Name},
			Change: &audit.Change{To: map[string]any{"name": u.Name, "active": true}}})
		return nil
	})
}

// reportCommits reports write transactions per backend commit (fsync).
func reportCommits(b *testing.B, reg *prometheus.Registry) {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var commits, txns float64
	for _, mf := range mfs {
		switch mf.GetName() {
		case "scimd_store_commits_total":
			commits = mf.GetMetric()[0].GetCounter().GetValue()
		case "scimd_store_transactions_total":
			txns = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if commits > 0 {
		b.ReportMetric(txns/commits, "txn/commit")
	}
}

// BenchmarkStoreWrite measures one durable write (a user and its audit
// event) made sequentially (one commit, so one fsync, per write) and from
// many goroutines at once (group commit: several writes per fsync), against
// SQLite with fsync, SQLite without fsync and no journal at all.
func BenchmarkStoreWrite(b *testing.B) {
	ctx := context.Background()
	for _, be := range benchBackends {
		for _, mode := range []struct {
			name     string
			parallel int // goroutines per GOMAXPROCS; 0: sequential
		}{{"sequential", 0}, {"parallel-16", 8}, {"parallel-64", 32}} {
			b.Run(be.name+"/"+mode.name, func(b *testing.B) {
				reg := prometheus.NewRegistry()
				s, err := store.Open(ctx, store.Options{Backend: be.open(b), Registerer: reg})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				var next atomic.Int64
				b.ReportAllocs()
				if mode.parallel == 0 {
					for b.Loop() {
						if err := write(ctx, s, next.Add(1)); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.SetParallelism(mode.parallel)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := write(ctx, s, next.Add(1)); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				reportCommits(b, reg)
			})
		}
	}
}
