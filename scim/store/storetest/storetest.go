// Package storetest is the conformance suite every store.Backend must pass,
// in the manner of Dex's storage/conformance: a backend package calls
// RunTests from its own tests with a function that opens its storage.
package storetest

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
)

// Opener opens the same durable storage each time it is called; the suite
// closes each store it opens before opening the next.
type Opener func() store.Backend

// NewOpener returns an Opener over fresh, empty storage for one test.
type NewOpener func(t *testing.T) Opener

type note struct {
	Text string `json:"text"`
}

func decodeNote(b []byte) (any, error) {
	var n note
	err := json.Unmarshal(b, &n)
	return &n, err
}

func openStore(t *testing.T, open Opener) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Options{
		Backend: open(),
		Records: map[string]store.RecordDecoder{"notes": decodeNote, "notesx": decodeNote},
	})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

func user(id, name string) *store.Resource {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return &store.Resource{ID: id, Kind: store.KindUser, Name: name, Attrs: map[string]any{"active": true,
		"name": map[string]any{"givenName": "G " + name}}, Created: now, Modified: now, Version: 1}
}

func group(id, name string) *store.Resource {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return &store.Resource{ID: id, Kind: store.KindGroup, Name: name, Attrs: map[string]any{}, Created: now, Modified: now, Version: 1}
}

// RunTests runs the conformance suite against the backend newOpener makes.
func RunTests(t *testing.T, newOpener NewOpener) {
	tests := []struct {
		name string
		run  func(t *testing.T, open Opener)
	}{
		{"ResourceCRUD", testResourceCRUD},
		{"NameUniqueCaseInsensitive", testNameUnique},
		{"FailedWriteChangesNothing", testFailedWrite},
		{"Memberships", testMemberships},
		{"DurableAcrossReopen", testDurable},
		{"ConcurrentMemberAdds", testConcurrentMembers},
		{"Records", testRecords},
		{"Tokens", testTokens},
		{"AuditQuery", testAuditQuery},
		{"CommitHooksInOrder", testHooks},
		{"FeedOrderedDurableAndGapless", testFeed},
		{"PrefixLookupsDoNotLeak", testPrefixes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newOpener(t)) })
	}
}

func mustWrite(t *testing.T, s *store.Store, fn func(*store.WriteTxn) error) {
	t.Helper()
	if err := s.Write(context.Background(), fn); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func testResourceCRUD(t *testing.T, open Opener) {
	s := openStore(t, open)
	defer s.Close()
	mustWrite(t, s, func(w *store.WriteTxn) error { return w.PutResource(user("u1", "Alice@Example.com")) })
	snap := s.Read()
	got, ok := snap.Resource(store.KindUser, "u1")
	if !ok || got.Name != "Alice@Example.com" {
		t.Fatalf("get u1 = %+v, %v", got, ok)
	}
	if r, ok := snap.ResourceByName(store.KindUser, "alice@example.COM"); !ok || r.ID != "u1" {
		t.Fatalf("case-insensitive name lookup failed: %+v %v", r, ok)
	}
	if _, ok := snap.Resource(store.KindGroup, "u1"); ok {
		t.Fatal("user visible as group")
	}
	c := got.Clone()
	c.Attrs["active"] = false
	c.Version++
	mustWrite(t, s, func(w *store.WriteTxn) error { return w.PutResource(c) })
	if got.Attrs["active"] != true {
		t.Fatal("old snapshot object changed")
	}
	if r, _ := s.Read().Resource(store.KindUser, "u1"); r.Attrs["active"] != false || r.Version != 2 {
		t.Fatalf("update not visible: %+v", r)
	}
	mustWrite(t, s, func(w *store.WriteTxn) error { _, err := w.DeleteResource(store.KindUser, "u1"); return err })
	if _, ok := s.Read().Resource(store.KindUser, "u1"); ok {
		t.Fatal("deleted user still present")
	}
	err := s.Write(context.Background(), func(w *store.WriteTxn) error { _, err := w.DeleteResource(store.KindUser, "u1"); return err })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete missing = %v, want ErrNotFound", err)
	}
}

func testNameUnique(t *testing.T, open Opener) {
	s := openStore(t, open)
	defer s.Close()
	mustWrite(t, s, func(w *store.WriteTxn) error { return w.PutResource(user("u1", "bob")) })
	err := s.Write(context.Background(), func(w *store.WriteTxn) error { return w.PutResource(user("u2", "BOB")) })
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate userName = %v, want ErrConflict", err)
	}
	if _, ok := s.Read().Resource(store.KindUser, "u2"); ok {
		t.Fatal("conflicting user stored")
	}
	// Same name in another kind is fine; renaming frees the old name.
	mustWrite(t, s, func(w *store.WriteTxn) error { return w.PutResource(group("g1", "bob")) })
	r := user("u1", "robert")
	mustWrite(t, s, func(w *store.WriteTxn) error { return w.PutResource(r) })
	mustWrite(t, s, func(w *store.WriteTxn) error { return w.PutResource(user("u3", "Bob")) })
}

func testFailedWrite(t *testing.T, open Opener) {
	s := openStore(t, open)
	defer s.Close()
	boom := errors.New("boom")
	err := s.Write(context.Background(), func(w *store.WriteTxn) error {
		if err := w.PutResource(user("u1", "carol")); err != nil {
			return err
		}
		w.Audit(audit.Event{Type: audit.TypeUserCreated, Target: audit.Target{Type: "User", ID: "u1"}})
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if _, ok := s.Read().Resource(store.KindUser, "u1"); ok {
		t.Fatal("aborted write visible")
	}
	evs, err := s.AuditEvents(context.Background(), store.AuditQuery{})
	if err != nil || len(evs) != 0 {
		t.Fatalf("aborted write audited: %v %v", evs, err)
	}
}

func testMemberships(t *testing.T, open Opener) {
	s := openStore(t, open)
	defer s.Close()
	mustWrite(t, s, func(w *store.WriteTxn) error {
		for _, r := range []*store.Resource{user("u1", "a"), user("u2", "b"), group("g1", "G1"), group("g2", "G2")} {
			if err := w.PutResource(r); err != nil {
				return err
			}
		}
		for _, m := range [][2]string{{"g1", "u1"}, {"g1", "u2"}, {"g2", "u1"}} {
			if _, err := w.AddMember(&store.Membership{GroupID: m[0], MemberID: m[1], MemberKind: store.KindUser}); err != nil {
				return err
			}
		}
		added, err := w.AddMember(&store.Membership{GroupID: "g1", MemberID: "u1", MemberKind: store.KindUser})
		if added || err != nil {
			return fmt.Errorf("re-adding a member: added=%v err=%v", added, err)
		}
		return nil
	})
	snap := s.Read()
	if n := len(snap.Members("g1")); n != 2 {
		t.Fatalf("g1 members = %d", n)
	}
	if n := len(snap.GroupsOf("u1")); n != 2 {
		t.Fatalf("u1 groups = %d", n)
	}
	mustWrite(t, s, func(w *store.WriteTxn) error {
		removed, err := w.RemoveMember("g1", "u2")
		if !removed || err != nil {
			return fmt.Errorf("remove: %v %v", removed, err)
		}
		_, err = w.DeleteResource(store.KindUser, "u1")
		return err
	})
	snap = s.Read()
	if n := len(snap.Members("g1")) + len(snap.Members("g2")); n != 0 {
		t.Fatalf("memberships left after delete: %d", n)
	}
}

func testDurable(t *testing.T, open Opener) {
	s := openStore(t, open)
	for i := 0; i < 20; i++ {
		i := i
		mustWrite(t, s, func(w *store.WriteTxn) error {
			w.Audit(audit.Event{Type: audit.TypeUserCreated, Actor: audit.Actor{Kind: "token", Name: "okta"},
				Target: audit.Target{Type: "User", ID: fmt.Sprint("u", i)}, Details: map[string]any{"n": i}})
			return w.PutResource(user(fmt.Sprint("u", i), fmt.Sprint("user", i)))
		})
	}
	mustWrite(t, s, func(w *store.WriteTxn) error { return w.PutResource(group("g", "G")) })
	mustWrite(t, s, func(w *store.WriteTxn) error {
		_, err := w.AddMember(&store.Membership{GroupID: "g", MemberID: "u3", MemberKind: store.KindUser})
		return err
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, open)
	snap := s.Read()
	for i := 0; i < 20; i++ {
		r, ok := snap.Resource(store.KindUser, fmt.Sprint("u", i))
		if !ok || r.Name != fmt.Sprint("user", i) || r.Attrs["active"] != true {
			t.Fatalf("user %d after reopen: %+v %v", i, r, ok)
		}
	}
	if !snap.IsMember("g", "u3") {
		t.Fatal("membership lost across reopen")
	}
	mustWrite(t, s, func(w *store.WriteTxn) error {
		w.Audit(audit.Event{Type: audit.TypeUserDeleted, Target: audit.Target{Type: "User", ID: "u0"}})
		_, err := w.DeleteResource(store.KindUser, "u0")
		return err
	})
	s.Close()
	s = openStore(t, open)
	defer s.Close()
	evs, err := s.AuditEvents(context.Background(), store.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 21 {
		t.Fatalf("audit events = %d, want 21", len(evs))
	}
	v := audit.NewVerifier()
	for _, e := range evs {
		if err := v.Next(e); err != nil {
			t.Fatalf("chain: %v", err)
		}
	}
	if _, ok := s.Read().Resource(store.KindUser, "u0"); ok {
		t.Fatal("deletion lost across reopen")
	}
}

func testConcurrentMembers(t *testing.T, open Opener) {
	s := openStore(t, open)
	mustWrite(t, s, func(w *store.WriteTxn) error { return w.PutResource(group("g", "G")) })
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- s.Write(context.Background(), func(w *store.WriteTxn) error {
				if err := w.PutResource(user(fmt.Sprint("u", i), fmt.Sprint("user", i))); err != nil {
					return err
				}
				_, err := w.AddMember(&store.Membership{GroupID: "g", MemberID: fmt.Sprint("u", i), MemberKind: store.KindUser})
				return err
			})
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := len(s.Read().Members("g")); got != n {
		t.Fatalf("members = %d, want %d", got, n)
	}
	s.Close()
	s = openStore(t, open)
	defer s.Close()
	if got := len(s.Read().Members("g")); got != n {
		t.Fatalf("members after reopen = %d, want %d", got, n)
	}
}

func testRecords(t *testing.T, open Opener) {
	s := openStore(t, open)
	mustWrite(t, s, func(w *store.WriteTxn) error {
		if err := w.PutRecord("notes", "a", &note{Text: "A"}); err != nil {
			return err
		}
		return w.PutRecord("notes", "b/c", &note{Text: "B"})
	})
	if err := s.Write(context.Background(), func(w *store.WriteTxn) error { return w.PutRecord("nocodec", "x", 1) }); err == nil {
		t.Fatal("record without codec accepted")
	}
	s.Close()
	s = openStore(t, open)
	defer s.Close()
	v, ok := s.Read().Record("notes", "b/c")
	if !ok || v.(*note).Text != "B" {
		t.Fatalf("record after reopen = %#v %v", v, ok)
	}
	var keys []string
	s.Read().Records("notes", func(k string, _ any) bool { keys = append(keys, k); return true })
	if len(keys) != 2 || keys[0] != "a" {
		t.Fatalf("keys = %v", keys)
	}
	mustWrite(t, s, func(w *store.WriteTxn) error { return w.DeleteRecord("notes", "a") })
	if _, ok := s.Read().Record("notes", "a"); ok {
		t.Fatal("record not deleted")
	}
}

func testTokens(t *testing.T, open Opener) {
	s := openStore(t, open)
	defer s.Close()
	mustWrite(t, s, func(w *store.WriteTxn) error {
		return w.PutToken(&store.Token{Name: "okta", Digest: "abc", Role: store.TokenRoleSCIM, Created: time.Now().UTC()})
	})
	if tok, ok := s.Read().TokenByDigest("abc"); !ok || tok.Name != "okta" {
		t.Fatalf("token by digest: %+v %v", tok, ok)
	}
	mustWrite(t, s, func(w *store.WriteTxn) error { return w.DeleteToken("okta") })
	if _, ok := s.Read().TokenByDigest("abc"); ok {
		t.Fatal("revoked token still found")
	}
}

func testAuditQuery(t *testing.T, open Opener) {
	s := openStore(t, open)
	defer s.Close()
	t0 := time.Now().UTC()
	for i, typ := range []string{audit.TypeUserCreated, audit.TypeGroupCreated, audit.TypeUserPatched, audit.TypeTokenCreated} {
		i, typ := i, typ
		mustWrite(t, s, func(w *store.WriteTxn) error {
			w.Audit(audit.Event{Type: typ, Actor: audit.Actor{Kind: "token", Name: fmt.Sprint("actor", i%2)},
				Target: audit.Target{Type: "User", ID: fmt.Sprint("t", i%2)}})
			return nil
		})
	}
	cases := []struct {
		q    store.AuditQuery
		want []uint64
	}{
		{store.AuditQuery{}, []uint64{1, 2, 3, 4}},
		{store.AuditQuery{AfterSeq: 2}, []uint64{3, 4}},
		{store.AuditQuery{Limit: 1, AfterSeq: 1}, []uint64{2}},
		{store.AuditQuery{Types: []string{"scim.user"}}, []uint64{1, 3}},
		{store.AuditQuery{Types: []string{audit.TypeGroupCreated}}, []uint64{2}},
		{store.AuditQuery{TargetID: "t1"}, []uint64{2, 4}},
		{store.AuditQuery{Actor: "actor0"}, []uint64{1, 3}},
		{store.AuditQuery{Since: t0.Add(-time.Minute), Until: t0.Add(time.Hour)}, []uint64{1, 2, 3, 4}},
		{store.AuditQuery{Until: t0.Add(-time.Minute)}, nil},
	}
	for _, c := range cases {
		evs, err := s.AuditEvents(context.Background(), c.q)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, e := range evs {
			got = append(got, e.Seq)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("query %+v = %v, want %v", c.q, got, c.want)
		}
	}
}

func testHooks(t *testing.T, open Opener) {
	s := openStore(t, open)
	defer s.Close()
	var mu sync.Mutex
	var commits []uint64
	s.OnCommit(func(ci store.CommitInfo) {
		mu.Lock()
		commits = append(commits, ci.Commit)
		mu.Unlock()
	})
	changed := s.Changed()
	var wg sync.WaitGroup
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := s.Write(context.Background(), func(w *store.WriteTxn) error {
				return w.PutResource(user(fmt.Sprint("u", i), fmt.Sprint("n", i)))
			}); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	select {
	case <-changed:
	default:
		t.Fatal("Changed channel not closed after commits")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(commits) != 30 {
		t.Fatalf("hook calls = %d", len(commits))
	}
	for i, c := range commits {
		if c != uint64(i+1) {
			t.Fatalf("hook order %v", commits)
		}
	}
}

func testFeed(t *testing.T, open Opener) {
	s := openStore(t, open)
	if s.Read().FeedSeq != 0 {
		t.Fatalf("empty store feed head = %d", s.Read().FeedSeq)
	}
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := s.Write(context.Background(), func(w *store.WriteTxn) error {
				if err := w.AppendFeed(fmt.Sprint("k", i), "test.a", map[string]int{"n": i}); err != nil {
					return err
				}
				return w.AppendFeed(fmt.Sprint("k", i), "test.b", map[string]int{"n": i})
			}); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	// A failed write appends nothing.
	_ = s.Write(context.Background(), func(w *store.WriteTxn) error {
		_ = w.AppendFeed("x", "test.a", 1)
		return errors.New("abort")
	})
	if got := s.Read().FeedSeq; got != 80 {
		t.Fatalf("feed head = %d, want 80", got)
	}
	s.Close()
	s = openStore(t, open)
	defer s.Close()
	if got := s.Read().FeedSeq; got != 80 {
		t.Fatalf("feed head after reopen = %d, want 80", got)
	}
	mustWrite(t, s, func(w *store.WriteTxn) error { return w.AppendFeed("z", "test.c", "after reopen") })
	all, err := s.Feed(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 81 {
		t.Fatalf("feed entries = %d, want 81", len(all))
	}
	pairs := map[string][]string{}
	for i, f := range all {
		if f.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d: not gapless", i, f.Seq)
		}
		pairs[f.Key] = append(pairs[f.Key], f.Type)
	}
	for k, types := range pairs {
		if k != "z" && (len(types) != 2 || types[0] != "test.a" || types[1] != "test.b") {
			t.Fatalf("entries of one transaction out of order for %s: %v", k, types)
		}
	}
	page, err := s.Feed(context.Background(), 78, 2)
	if err != nil || len(page) != 2 || page[0].Seq != 79 || page[1].Seq != 80 {
		t.Fatalf("page after 78 = %+v %v", page, err)
	}
}

// testPrefixes checks that ids that are prefixes of each other do not leak
// into each other's member lists or record tables.
func testPrefixes(t *testing.T, open Opener) {
	s := openStore(t, open)
	defer s.Close()
	mustWrite(t, s, func(w *store.WriteTxn) error {
		for _, r := range []*store.Resource{group("g1", "G1"), group("g10", "G10"), user("u1", "a"), user("u2", "b")} {
			if err := w.PutResource(r); err != nil {
				return err
			}
		}
		if _, err := w.AddMember(&store.Membership{GroupID: "g1", MemberID: "u1", MemberKind: store.KindUser}); err != nil {
			return err
		}
		if _, err := w.AddMember(&store.Membership{GroupID: "g10", MemberID: "u2", MemberKind: store.KindUser}); err != nil {
			return err
		}
		if err := w.PutRecord("notes", "k", &note{Text: "short table"}); err != nil {
			return err
		}
		return w.PutRecord("notesx", "k", &note{Text: "long table"})
	})
	snap := s.Read()
	if m := snap.Members("g1"); len(m) != 1 || m[0].MemberID != "u1" {
		t.Fatalf("members of g1 = %+v", m)
	}
	n := 0
	snap.Records("notes", func(string, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("records of table notes = %d, want 1", n)
	}
}
