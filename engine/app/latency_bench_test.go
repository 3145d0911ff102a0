package app_test

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/scimd/scimd/engine/reconcile"
	"github.com/scimd/scimd/scim/store"
)

// BenchmarkCommitToRoleApplied streams membership PATCHes (add a user to a
// mapped group, then remove them) through the real HTTP server and store,
// and measures the time from the SCIM write's acknowledgement (its commit
// is durable by then) to the durable commit that applies the teammate's
// new role. It reports p50 and p99 in microseconds.
func BenchmarkCommitToRoleApplied(b *testing.B) {
	e := newBenchEnv(b)
	group := e.createGroup("Intercom Support")
	const users = 200
	ids := make([]string, users)
	for i := range ids {
		ids[i] = e.createUser(fmt.Sprintf("lat%03d@example.com", i), nil)
	}

	var mu sync.Mutex
	applied := map[string]chan time.Time{}
	e.app.Store.OnCommit(func(ci store.CommitInfo) {
		for _, c := range ci.Changes {
			rec, ok := c.After.(*store.Record)
			if !ok || rec.Table != reconcile.TableTeammates {
				continue
			}
			mu.Lock()
			ch := applied[rec.Key]
			mu.Unlock()
			if ch != nil {
				select {
				case ch <- time.Now():
				default:
				}
			}
		}
	})
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := ids[i%users]
		ch := make(chan time.Time, 1)
		mu.Lock()
		applied[id] = ch
		mu.Unlock()
		op := "add"
		if (i/users)%2 == 1 {
			op = "remove"
		}
		e.mustDo(http.MethodPatch, e.scim+"/Groups/"+group, e.token,
			patchOp(map[string]any{"op": op, "path": "members", "value": memberValues(id)}), 204)
		acked := time.Now()
		select {
		case at := <-ch:
			if d := at.Sub(acked); d > 0 {
				lat = append(lat, d)
			} else {
				lat = append(lat, 0) // applied before the response reached the client
			}
		case <-time.After(30 * time.Second):
			b.Fatalf("role of %s never applied", id)
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
