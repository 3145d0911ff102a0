package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/store"
	"github.com/scimd/scimd/scim/store/postgres"
	"github.com/scimd/scimd/scim/store/postgres/pgtest"
)

type note struct {
	Text string `json:"text"`
}

func openPG(t *testing.T, url string) (*postgres.Backend, *store.Store) {
	t.Helper()
	b, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	st, err := store.Open(context.Background(), store.Options{Backend: b, Records: map[string]store.RecordDecoder{
		"notes": func(data []byte) (any, error) { var n note; err := json.Unmarshal(data, &n); return &n, err },
	}})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return b, st
}

// dump renders everything a snapshot holds, in a fixed order.
func dump(s *store.Snapshot) string {
	var out []any
	for _, k := range []store.Kind{store.KindUser, store.KindGroup} {
		s.Resources(k, func(r *store.Resource) bool {
			out = append(out, r)
			if k == store.KindGroup {
				out = append(out, s.Members(r.ID))
			} else {
				out = append(out, s.GroupsOf(r.ID))
			}
			if n, ok := s.ResourceByName(k, r.Name); !ok || n.ID != r.ID {
				out = append(out, "name index broken for "+r.ID)
			}
			return true
		})
	}
	out = append(out, s.Tokens())
	s.Records("notes", func(key string, v any) bool { out = append(out, key, v); return true })
	b, _ := json.Marshal(out)
	return string(b)
}

func user(id, name string) *store.Resource {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return &store.Resource{ID: id, Kind: store.KindUser, Name: name, Attrs: map[string]any{"active": true}, Created: now, Modified: now, Version: 1}
}

func write(t *testing.T, s *store.Store, fn func(*store.WriteTxn) error) {
	t.Helper()
	if err := s.Write(context.Background(), func(w *store.WriteTxn) error {
		w.Audit(audit.Event{Type: audit.TypeUserCreated, Actor: audit.Actor{Kind: "token", Name: "t"}, Target: audit.Target{Type: "User", ID: "x"}})
		return fn(w)
	}); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// TestStandbyReplayEqualsReload: a standby that replays the journal holds
// exactly what a fresh load of the database holds, including through
// renames that free a name for another resource in the same commit, and
// continues the audit chain when it becomes the writer.
func TestStandbyReplayEqualsReload(t *testing.T) {
	c := pgtest.Start(t)
	url := c.CreateDatabase(t)
	ctx := context.Background()
	_, leader := openPG(t, url)
	standbyBackend, standby := openPG(t, url)
	defer standby.Close()

	write(t, leader, func(w *store.WriteTxn) error {
		g := &store.Resource{ID: "g1", Kind: store.KindGroup, Name: "Admins", Attrs: map[string]any{}, Version: 1}
		if err := w.PutResource(g); err != nil {
			return err
		}
		for i := range 5 {
			if err := w.PutResource(user(fmt.Sprint("u", i), fmt.Sprint("user", i))); err != nil {
				return err
			}
			if _, err := w.AddMember(&store.Membership{GroupID: "g1", MemberID: fmt.Sprint("u", i), MemberKind: store.KindUser}); err != nil {
				return err
			}
		}
		if err := w.PutToken(&store.Token{Name: "okta", Digest: "d1", Role: store.TokenRoleSCIM}); err != nil {
			return err
		}
		return w.PutRecord("notes", "u1", &note{Text: "hello"})
	})
	// Concurrent writers share commits: swap two names through a third.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			write(t, leader, func(w *store.WriteTxn) error {
				return w.PutResource(user(fmt.Sprint("c", i), fmt.Sprint("concurrent", i)))
			})
		})
	}
	write(t, leader, func(w *store.WriteTxn) error {
		a, _ := w.Resource(store.KindUser, "u0")
		b, _ := w.Resource(store.KindUser, "u1")
		a2, b2 := a.Clone(), b.Clone()
		a2.Name = "tmp"
		if err := w.PutResource(a2); err != nil {
			return err
		}
		b2.Name = "user0"
		if err := w.PutResource(b2); err != nil {
			return err
		}
		a3 := a2.Clone()
		a3.Name = "user1"
		return w.PutResource(a3)
	})
	wg.Wait()
	write(t, leader, func(w *store.WriteTxn) error {
		if _, err := w.DeleteResource(store.KindUser, "u2"); err != nil {
			return err
		}
		if _, err := w.RemoveMember("g1", "u3"); err != nil {
			return err
		}
		if err := w.DeleteToken("okta"); err != nil {
			return err
		}
		return w.DeleteRecord("notes", "u1")
	})
	write(t, leader, func(w *store.WriteTxn) error { return w.PutRecord("notes", "u4", &note{Text: "again"}) })

	n, err := standbyBackend.CatchUp(ctx, standby, nil)
	if err != nil {
		t.Fatalf("catch up: %v", err)
	}
	// Twelve transactions; concurrent ones may share a commit (one entry).
	if n < 4 || n > 12 || uint64(n) != standbyBackend.JournalSeq() {
		t.Fatalf("applied %d journal entries up to %d, want 4..12 for 12 transactions", n, standbyBackend.JournalSeq())
	}
	if got, want := dump(standby.Read()), dump(leader.Read()); got != want {
		t.Fatalf("standby after replay:\n%s\nleader:\n%s", got, want)
	}
	leaderHeads := leader.Heads()
	if err := leader.Close(); err != nil {
		t.Fatal(err)
	}
	_, reloaded := openPG(t, url)
	if got, want := dump(standby.Read()), dump(reloaded.Read()); got != want {
		t.Fatalf("standby after replay:\n%s\nfresh load:\n%s", got, want)
	}
	reloaded.Close()
	if h := standby.Heads(); h != leaderHeads {
		t.Fatalf("standby heads %+v, leader's %+v", h, leaderHeads)
	}
	// The standby takes over: its writes continue the chain.
	write(t, standby, func(w *store.WriteTxn) error { return w.PutResource(user("after", "after-failover")) })
	if err := standby.Replay(ctx, nil, store.LoadState{}); err == nil {
		t.Fatal("a store that has written accepted a replay")
	}
	events, err := standby.AuditEvents(ctx, store.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	v := audit.NewVerifier()
	for _, e := range events {
		if err := v.Next(e); err != nil {
			t.Fatalf("audit chain across the takeover: %v", err)
		}
	}
	if int(v.Count()) != 13 {
		t.Fatalf("audit has %d events, want 13", v.Count())
	}
}

// TestFollowAppliesCommitsAsTheyHappen: Follow wakes on each commit's
// notification.
func TestFollowAppliesCommitsAsTheyHappen(t *testing.T) {
	c := pgtest.Start(t)
	url := c.CreateDatabase(t)
	_, leader := openPG(t, url)
	defer leader.Close()
	fb, follower := openPG(t, url)
	defer follower.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	applied := make(chan postgres.Applied, 100)
	go func() { done <- fb.Follow(ctx, follower, time.Minute, func(a postgres.Applied) { applied <- a }) }()
	for i := range 20 {
		write(t, leader, func(w *store.WriteTxn) error { return w.PutResource(user(fmt.Sprint("u", i), fmt.Sprint("n", i))) })
		// A poll of a minute: only the notification can wake the follower.
		select {
		case a := <-applied:
			if a.Seq != uint64(i+1) {
				t.Fatalf("applied journal entry %d, want %d", a.Seq, i+1)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("write %d not applied by the follower", i)
		}
		if _, ok := follower.Read().Resource(store.KindUser, fmt.Sprint("u", i)); !ok {
			t.Fatalf("user u%d not visible on the follower", i)
		}
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Follow returned %v", err)
	}
}

// TestPruneJournal: pruning deletes entries written before the cut, never
// the newest (the next commit continues its sequence); a standby whose next
// entry is gone finds a gap; and a store opened afterwards loads the same
// state as the one that wrote it.
func TestPruneJournal(t *testing.T) {
	c := pgtest.Start(t)
	url := c.CreateDatabase(t)
	ctx := context.Background()
	lb, leader := openPG(t, url)
	sb, standby := openPG(t, url)
	defer standby.Close()
	for i := range 5 {
		write(t, leader, func(w *store.WriteTxn) error { return w.PutResource(user(fmt.Sprint("u", i), fmt.Sprint("n", i))) })
	}
	cases := []struct {
		name    string
		before  time.Time
		deleted int64
	}{
		{"nothing older than the cut", time.Now().Add(-time.Hour), 0},
		{"all but the newest", time.Now().Add(time.Hour), 4},
		{"the newest stays", time.Now().Add(time.Hour), 0},
	}
	for _, c := range cases {
		n, err := lb.PruneJournal(ctx, c.before)
		if err != nil || n != c.deleted {
			t.Fatalf("%s: pruned %d (%v), want %d", c.name, n, err, c.deleted)
		}
	}
	if _, err := sb.CatchUp(ctx, standby, nil); !errors.Is(err, postgres.ErrJournalGap) {
		t.Fatalf("standby behind the pruned entries: %v, want ErrJournalGap", err)
	}
	write(t, leader, func(w *store.WriteTxn) error { return w.PutResource(user("u5", "n5")) })
	if got := lb.JournalSeq(); got != 6 {
		t.Fatalf("journal at %d after pruning and one more commit, want 6", got)
	}
	want := dump(leader.Read())
	leader.Close()
	_, reloaded := openPG(t, url)
	defer reloaded.Close()
	if got := dump(reloaded.Read()); got != want {
		t.Fatalf("load after pruning:\n%s\nwant:\n%s", got, want)
	}
}
