package reconcile

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/store"
	"github.com/scimd/scimd/scim/store/sqlite"
)

// heldChange builds n teammates, all admins through one mapped group,
// then removes every one of them from the group in one trigger, which the
// guard holds: it returns the reconciler, its store, the held change's id
// and the clock the store reads.
func heldChange(tb testing.TB, n int) (*Reconciler, *store.Store, string, *atomic.Int64) {
	tb.Helper()
	ctx := context.Background()
	be, err := sqlite.Open(ctx, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	clock := &atomic.Int64{}
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	st, err := store.Open(ctx, store.Options{Backend: be, Records: Records(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Clock: func() time.Time { return time.Unix(0, clock.Load()) }})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	write := func(fn func(tx *store.WriteTxn, i int) error) {
		tb.Helper()
		const chunk = 5000
		for start := 0; start < n; start += chunk {
			err := st.Write(ctx, func(tx *store.WriteTxn) error {
				for i := start; i < min(start+chunk, n); i++ {
					if err := fn(tx, i); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := st.Write(ctx, func(tx *store.WriteTxn) error {
		return tx.PutResource(&store.Resource{ID: "g1", Kind: store.KindGroup, Name: "Intercom Admins",
			Attrs: map[string]any{}, Created: tx.Now(), Modified: tx.Now(), Version: 1})
	}); err != nil {
		tb.Fatal(err)
	}
	write(func(tx *store.WriteTxn, i int) error {
		id := fmt.Sprintf("u%07d", i)
		if err := tx.PutResource(&store.Resource{ID: id, Kind: store.KindUser, Name: id + "@example.com",
			Attrs: map[string]any{"active": true}, Created: tx.Now(), Modified: tx.Now(), Version: 1}); err != nil {
			return err
		}
		_, err := tx.AddMember(&store.Membership{GroupID: "g1", MemberID: id, MemberKind: store.KindUser})
		return err
	})
	src := &staticPolicy{}
	src.set.Store(loadPolicy(tb, ""))
	r := New(Options{Store: st, Policy: src, Threshold: &Threshold{Count: 10, Percent: 10},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := r.process(ctx, []trigger{{cause: Cause{Kind: "policy"}, all: true, committedAt: time.Now()}}); err != nil {
		tb.Fatal(err)
	}
	write(func(tx *store.WriteTxn, i int) error {
		_, err := tx.RemoveMember("g1", fmt.Sprintf("u%07d", i))
		return err
	})
	if err := r.process(ctx, []trigger{{cause: Cause{Kind: "policy"}, all: true, committedAt: time.Now()}}); err != nil {
		tb.Fatal(err)
	}
	open := r.Changes(ChangePending)
	if len(open) != 1 || len(open[0].Changes) != n {
		tb.Fatalf("%d pending changes, want one of %d changes", len(open), n)
	}
	return r, st, open[0].ID, clock
}

// touch is a SCIM write's trigger for one user.
func touch(users ...string) []trigger {
	return []trigger{{cause: Cause{Kind: "scim", Actor: "okta"}, users: users, committedAt: time.Now()}}
}

// TestDeferringDoesNotRewriteTheChange checks that a write touching a
// teammate held by a pending change records the deferral on its own,
// leaving the (possibly huge) change record as it was, and that the change
// lists its deferred teammates until it is decided.
func TestDeferringDoesNotRewriteTheChange(t *testing.T) {
	ctx := context.Background()
	r, st, cid, _ := heldChange(t, 20)
	before, _ := st.Read().Record(TableChanges, cid)
	for _, users := range [][]string{{"u0000003"}, {"u0000003", "u0000007"}} {
		if err := r.process(ctx, touch(users...)); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := st.Read().Record(TableChanges, cid)
	if after != before {
		t.Error("deferring a teammate rewrote the pending change's record")
	}
	c, ok := r.Change(cid)
	if !ok || fmt.Sprint(c.Deferred) != "[u0000003 u0000007]" {
		t.Fatalf("change %v: deferred = %v, want [u0000003 u0000007]", ok, c.Deferred)
	}
	if err := r.Reject(ctx, cid, audit.Actor{Kind: "admin", Name: "root"}, ""); err != nil {
		t.Fatal(err)
	}
	snap := st.Read()
	if _, open := snap.Record(TableChanges, cid); open {
		t.Error("a rejected change is still among the open ones")
	}
	n := 0
	snap.Records(TableDeferred, func(string, any) bool { n++; return true })
	if n != 0 {
		t.Errorf("%d deferrals left after the decision", n)
	}
	c, ok = r.Change(cid)
	if !ok || c.State != ChangeRejected || fmt.Sprint(c.Deferred) != "[u0000003 u0000007]" {
		t.Fatalf("decided change %v: %s, deferred %v", ok, c.State, c.Deferred)
	}
	if l := r.Changes(""); len(l) != 1 || l[0].ID != cid {
		t.Errorf("changes list %+v, want the rejected change", l)
	}
}

// TestDecidedChangesAreRetainedThenDeleted checks that a decided change
// stays listed for the retention period, then is deleted, and that a
// decided change an older version left among the open ones is moved.
func TestDecidedChangesAreRetainedThenDeleted(t *testing.T) {
	ctx := context.Background()
	r, st, cid, clock := heldChange(t, 20)
	if err := r.Approve(ctx, cid, audit.Actor{Kind: "admin", Name: "root"}, ""); err != nil {
		t.Fatal(err)
	}
	// An older version kept decided changes in TableChanges.
	legacy := &PendingChange{ID: "legacy", State: ChangeRejected, Decided: time.Unix(0, clock.Load()), Deferred: []string{"u0000001"}}
	if err := st.Write(ctx, func(tx *store.WriteTxn) error { return tx.PutRecord(TableChanges, legacy.ID, legacy) }); err != nil {
		t.Fatal(err)
	}
	tidy := func() {
		t.Helper()
		if err := st.Write(ctx, func(tx *store.WriteTxn) error { return tidyChanges(tx, r.retention) }); err != nil {
			t.Fatal(err)
		}
	}
	tidy()
	if _, open := st.Read().Record(TableChanges, "legacy"); open {
		t.Error("a decided change stays among the open ones")
	}
	if l := r.Changes(""); len(l) != 2 {
		t.Fatalf("%d changes listed within the retention period, want 2", len(l))
	}
	clock.Add(int64(DefaultDecidedRetention - time.Minute))
	tidy()
	if l := r.Changes(""); len(l) != 2 {
		t.Fatalf("%d changes listed just before the end of the retention period, want 2", len(l))
	}
	clock.Add(int64(2 * time.Minute))
	tidy()
	if l := r.Changes(""); len(l) != 0 {
		t.Fatalf("%d changes listed after the retention period, want none", len(l))
	}
	n := 0
	st.Read().Records(TableDecidedChanges, func(string, any) bool { n++; return true })
	if n != 0 {
		t.Errorf("%d decided changes stored after the retention period", n)
	}
}

// BenchmarkDeferredWrite measures a SCIM write's reconciliation while a
// change holding every teammate is pending: each op touches one more held
// teammate, whose evaluation is deferred behind the change. Its bytes and
// allocations do not grow with the size of the change. cpu-ns/op is the process's CPU time
// (every goroutine, the committer's included) per op.
func BenchmarkDeferredWrite(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("held=%d", n), func(b *testing.B) {
			r, _, _, _ := heldChange(b, n)
			// The first batch indexes the held teammates, once.
			if err := r.process(ctx, touch("u0000000")); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu0 := cpuTime()
			i := 1
			for b.Loop() {
				if err := r.process(ctx, touch(fmt.Sprintf("u%07d", i%n))); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
