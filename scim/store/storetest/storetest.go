// Package storetest is the conformance suite every store.Backend must pass,
// in the manner of Dex's storage/conformance: a backend package calls
// RunTests from its own tests with a function that opens its storage.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
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
		{"UnencodableWriteFailsAlone", testUnencodableWrite},
		{"Memberships", testMemberships},
		{"DurableAcrossReopen", testDurable},
		{"ConcurrentMemberAdds", testConcurrentMembers},
		{"Records", testRecords},
		{"Tokens", testTokens},
		{"AuditQuery", testAuditQuery},
		{"AuditTypePrefix", testAuditTypePrefix},
		{"AuditTimeBoundaries", testAuditTimeBoundaries},
		{"ModelRandomOperations", testModel},
		{"AuditNumbersKeptAsWritten", testAuditNumbers},
		{"CommitHooksInOrder", testHooks},
		{"FeedOrderedDurableAndGapless", testFeed},
		{"PrefixLookupsDoNotLeak", testPrefixes},
		{"ManyMembershipsOrdered", testManyMemberships},
		{"AbortedMembershipChangesLeaveNothing", testAbortMemberships},
		{"SnapshotIsolation", testSnapshotIsolation},
		{"CommitChangesCollapsed", testCommitChanges},
		{"ConcurrentReadersAndWriters", testConcurrentReaders},
		{"IndexesFollowUpdates", testIndexesFollowUpdates},
		{"ReopenKeepsEveryField", testReopenKeepsEveryField},
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

	// A write whose second event cannot be encoded (NaN) fails after the
	// first was sealed; the chain's head must not move, so the next
	// write's event still links to the last durable one.
	ctx := context.Background()
	event := func(id string, details map[string]any) audit.Event {
		return audit.Event{Type: audit.TypeUserCreated, Target: audit.Target{Type: "User", ID: id}, Details: details}
	}
	if err := s.Write(ctx, func(w *store.WriteTxn) error { w.Audit(event("a", nil)); return nil }); err != nil {
		t.Fatal(err)
	}
	err = s.Write(ctx, func(w *store.WriteTxn) error {
		w.Audit(event("b", nil))
		w.Audit(event("c", map[string]any{"x": math.NaN()}))
		return nil
	})
	if err == nil {
		t.Fatal("an event that cannot be encoded was accepted")
	}
	if err := s.Write(ctx, func(w *store.WriteTxn) error { w.Audit(event("d", nil)); return nil }); err != nil {
		t.Fatal(err)
	}
	if evs, err = s.AuditEvents(ctx, store.AuditQuery{}); err != nil || len(evs) != 2 {
		t.Fatalf("audit events %v, %v; want a and d", evs, err)
	}
	v := audit.NewVerifier()
	for _, e := range evs {
		if err := v.Next(e); err != nil {
			t.Fatalf("chain after a failed seal: %v", err)
		}
	}
}

// testUnencodableWrite writes values that cannot be encoded (a record
// holding a channel, a user attribute that is NaN): each write fails on its
// own, before anything is visible, and the writes after it succeed.
func testUnencodableWrite(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	bad := []struct {
		name string
		fn   func(w *store.WriteTxn) error
	}{
		{"record", func(w *store.WriteTxn) error { return w.PutRecord("notes", "bad", make(chan int)) }},
		{"resource", func(w *store.WriteTxn) error {
			u := user("bad", "bad")
			u.Attrs["x"] = math.NaN()
			return w.PutResource(u)
		}},
	}
	for i, b := range bad {
		before := s.Read().Commit
		err := s.Write(ctx, func(w *store.WriteTxn) error {
			if err := w.PutRecord("notes", fmt.Sprint("with-bad-", i), &note{Text: "x"}); err != nil {
				return err
			}
			w.Audit(audit.Event{Type: audit.TypeUserCreated, Target: audit.Target{Type: "User", ID: "bad"}})
			return b.fn(w)
		})
		if err == nil {
			t.Fatalf("%s: a value that cannot be encoded was accepted", b.name)
		}
		if errors.Is(err, store.ErrUnavailable) || s.Failed() != nil {
			t.Fatalf("%s: one unencodable write disabled the store: %v", b.name, err)
		}
		r := s.Read()
		if r.Commit != before {
			t.Errorf("%s: failed write published commit %d", b.name, r.Commit)
		}
		if _, ok := r.Record("notes", fmt.Sprint("with-bad-", i)); ok {
			t.Errorf("%s: part of the failed write is visible", b.name)
		}
		mustWrite(t, s, func(w *store.WriteTxn) error {
			w.Audit(audit.Event{Type: audit.TypeUserCreated, Target: audit.Target{Type: "User", ID: "good"}})
			return w.PutRecord("notes", fmt.Sprint("good-", i), &note{Text: "fine"})
		})
	}
	s.Close()
	s = openStore(t, open)
	defer s.Close()
	for i := range bad {
		if _, ok := s.Read().Record("notes", fmt.Sprint("good-", i)); !ok {
			t.Errorf("write %d after an unencodable one lost on reopen", i)
		}
	}
	evs, err := s.AuditEvents(ctx, store.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(bad) {
		t.Errorf("%d audit events, want %d (only the good writes')", len(evs), len(bad))
	}
	v := audit.NewVerifier()
	for _, e := range evs {
		if err := v.Next(e); err != nil {
			t.Fatalf("chain: %v", err)
		}
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

// testAuditTypePrefix checks that a type filter keeps the type itself and
// its dot-separated subtypes, and nothing that merely starts with the same
// letters, whatever characters sort next to the dot.
func testAuditTypePrefix(t *testing.T, open Opener) {
	s := openStore(t, open)
	defer s.Close()
	types := []string{"a.b", "a.b.c", "a.b-c", "a.b/c", "a.bc", "a.b_c", "a.b%", "a.a", "a.c", "a", "b"}
	for _, typ := range types {
		mustWrite(t, s, func(w *store.WriteTxn) error {
			w.Audit(audit.Event{Type: typ, Actor: audit.Actor{Kind: "token", Name: "x"}, Target: audit.Target{Type: "User", ID: "t"}})
			return nil
		})
	}
	for _, c := range []struct {
		types []string
		want  []string
	}{
		{[]string{"a.b"}, []string{"a.b", "a.b.c"}},
		{[]string{"a"}, []string{"a.b", "a.b.c", "a.b-c", "a.b/c", "a.bc", "a.b_c", "a.b%", "a.a", "a.c", "a"}},
		{[]string{"a.b%"}, []string{"a.b%"}},
		{[]string{"a.b_c"}, []string{"a.b_c"}},
		{[]string{"a.b", "b"}, []string{"a.b", "a.b.c", "b"}},
		{[]string{"a.b.c.d"}, nil},
	} {
		evs, err := s.AuditEvents(context.Background(), store.AuditQuery{Types: c.types})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range evs {
			got = append(got, e.Type)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("types %q = %q, want %q", c.types, got, c.want)
		}
	}
}

// testAuditTimeBoundaries checks Since (inclusive) and Until (exclusive)
// at sub-second boundaries: an event at a whole second, one half a second
// later, and so on, and a query bound that falls on each of them.
func testAuditTimeBoundaries(t *testing.T, open Opener) {
	s := openStore(t, open)
	defer s.Close()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	times := []time.Time{ // in seq order 1..6, deliberately not sorted
		t0.Add(500 * time.Millisecond),
		t0,
		t0.Add(time.Second),
		t0.Add(time.Second + time.Microsecond),
		t0.Add(-time.Microsecond),
		t0.Add(10 * time.Second),
	}
	for _, at := range times {
		mustWrite(t, s, func(w *store.WriteTxn) error {
			w.Audit(audit.Event{Time: at, Type: audit.TypeUserCreated, Actor: audit.Actor{Kind: "token", Name: "a"},
				Target: audit.Target{Type: "User", ID: "u"}})
			return nil
		})
	}
	cases := []struct {
		since, until time.Time
		want         []uint64
	}{
		{since: t0, want: []uint64{1, 2, 3, 4, 6}},
		{until: t0, want: []uint64{5}},
		{since: t0, until: t0.Add(time.Second), want: []uint64{1, 2}},
		{since: t0.Add(500 * time.Millisecond), until: t0.Add(time.Second + time.Microsecond), want: []uint64{1, 3}},
		{since: t0.Add(time.Second), want: []uint64{3, 4, 6}},
		{since: t0.Add(time.Nanosecond), until: t0.Add(500 * time.Millisecond), want: nil},
		{since: t0.Add(-time.Microsecond), until: t0.Add(time.Nanosecond), want: []uint64{2, 5}},
		{since: t0.In(time.FixedZone("CET", 3600)), until: t0.Add(time.Second).In(time.FixedZone("X", -7200)), want: []uint64{1, 2}},
	}
	for _, c := range cases {
		evs, err := s.AuditEvents(context.Background(), store.AuditQuery{Since: c.since, Until: c.until})
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, e := range evs {
			got = append(got, e.Seq)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("since %s until %s = %v, want %v", c.since.Format(time.RFC3339Nano), c.until.Format(time.RFC3339Nano), got, c.want)
		}
	}
}

// testAuditNumbers stores events whose details hold numbers a float64
// cannot carry and checks that they read back as written and verify.
func testAuditNumbers(t *testing.T, open Opener) {
	s := openStore(t, open)
	defer s.Close()
	details := map[string]any{"amount": json.Number("12.50"), "big": int64(1<<53 + 1), "list": []any{uint64(math.MaxUint64)}}
	mustWrite(t, s, func(w *store.WriteTxn) error {
		w.Audit(audit.Event{Type: audit.TypeUserPatched, Target: audit.Target{Type: "User", ID: "u"}, Details: details})
		return nil
	})
	evs, err := s.AuditEvents(context.Background(), store.AuditQuery{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("audit events %v, %v", evs, err)
	}
	if err := audit.NewVerifier().Next(evs[0]); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(evs[0].Details)
	if want := `{"amount":12.50,"big":9007199254740993,"list":[18446744073709551615]}`; string(got) != want {
		t.Errorf("details read back as %s, want %s", got, want)
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

// memberPattern says whether user u is in group g in testManyMemberships:
// an irregular pattern, so groups and users have different member counts
// and some have none.
func memberPattern(g, u int) bool { return (g*7+u*13)%5 == 0 || (u%9 == g%4 && g != 3) }

// checkMemberships compares every group's members and every user's groups
// with want (group index -> user indexes), including their order.
func checkMemberships(t *testing.T, r interface {
	Members(string) []*store.Membership
	GroupsOf(string) []*store.Membership
	IsMember(string, string) bool
}, groups, users []string, want map[int]map[int]bool) {
	t.Helper()
	total := 0
	for gi, g := range groups {
		var exp []string
		for ui, u := range users {
			if want[gi][ui] {
				exp = append(exp, u)
			}
			if got := r.IsMember(g, u); got != want[gi][ui] {
				t.Fatalf("IsMember(%s, %s) = %v, want %v", g, u, got, want[gi][ui])
			}
		}
		sort.Strings(exp)
		var got []string
		for _, m := range r.Members(g) {
			if m.GroupID != g {
				t.Fatalf("Members(%s) holds a membership of %s", g, m.GroupID)
			}
			got = append(got, m.MemberID)
		}
		if !slices.Equal(got, exp) {
			t.Fatalf("Members(%s) = %v, want (in member id order) %v", g, got, exp)
		}
		total += len(got)
	}
	n := 0
	for ui, u := range users {
		var exp []string
		for gi, g := range groups {
			if want[gi][ui] {
				exp = append(exp, g)
			}
		}
		sort.Strings(exp)
		var got []string
		for _, m := range r.GroupsOf(u) {
			if m.MemberID != u {
				t.Fatalf("GroupsOf(%s) holds a membership of %s", u, m.MemberID)
			}
			got = append(got, m.GroupID)
		}
		if !slices.Equal(got, exp) {
			t.Fatalf("GroupsOf(%s) = %v, want (in group id order) %v", u, got, exp)
		}
		n += len(got)
	}
	if n != total {
		t.Fatalf("%d memberships by group, %d by member", total, n)
	}
}

// testManyMemberships checks lookups and their order with many memberships
// across groups and members, whose ids sort differently as strings than as
// numbers and are prefixes of each other, before and after a reopen and
// after removals.
func testManyMemberships(t *testing.T, open Opener) {
	s := openStore(t, open)
	const ng, nu = 12, 60
	var groups, users []string
	for g := 0; g < ng; g++ {
		groups = append(groups, fmt.Sprint("g", (g*5)%ng)) // g0, g5, g10, g3, …
	}
	for u := 0; u < nu; u++ {
		users = append(users, fmt.Sprintf("u%d-%d", (u*7)%nu, u%3))
	}
	want := map[int]map[int]bool{}
	mustWrite(t, s, func(w *store.WriteTxn) error {
		for i, g := range groups {
			if err := w.PutResource(group(g, "Group "+g)); err != nil {
				return err
			}
			want[i] = map[int]bool{}
		}
		for _, u := range users {
			if err := w.PutResource(user(u, "name-"+u)); err != nil {
				return err
			}
		}
		return nil
	})
	// Added in several transactions, users in descending order.
	for gi := range groups {
		mustWrite(t, s, func(w *store.WriteTxn) error {
			for ui := len(users) - 1; ui >= 0; ui-- {
				if !memberPattern(gi, ui) {
					continue
				}
				added, err := w.AddMember(&store.Membership{GroupID: groups[gi], MemberID: users[ui], MemberKind: store.KindUser, Display: "d " + users[ui]})
				if err != nil || !added {
					return fmt.Errorf("add %s to %s: added=%v err=%v", users[ui], groups[gi], added, err)
				}
				want[gi][ui] = true
			}
			return nil
		})
	}
	checkMemberships(t, s.Read(), groups, users, want)
	s.Close()
	s = openStore(t, open)
	defer s.Close()
	checkMemberships(t, s.Read(), groups, users, want)
	if m := s.Read().Members(groups[0]); len(m) == 0 || m[0].Display != "d "+m[0].MemberID || m[0].MemberKind != store.KindUser {
		t.Fatalf("membership fields after reopen: %+v", m)
	}
	// Remove every third membership and delete a group and a user; the
	// write transaction sees its own changes.
	mustWrite(t, s, func(w *store.WriteTxn) error {
		k := 0
		for gi := range groups {
			for ui := range users {
				if !want[gi][ui] {
					continue
				}
				if k++; k%3 == 0 {
					if ok, err := w.RemoveMember(groups[gi], users[ui]); !ok || err != nil {
						return fmt.Errorf("remove %s from %s: %v %v", users[ui], groups[gi], ok, err)
					}
					delete(want[gi], ui)
				}
			}
		}
		removed, err := w.DeleteResource(store.KindGroup, groups[1])
		if err != nil {
			return err
		}
		if len(removed) != len(want[1]) {
			return fmt.Errorf("deleting %s removed %d memberships, want %d", groups[1], len(removed), len(want[1]))
		}
		want[1] = map[int]bool{}
		removed, err = w.DeleteResource(store.KindUser, users[0])
		if err != nil {
			return err
		}
		n := 0
		for gi := range groups {
			if want[gi][0] {
				n++
				delete(want[gi], 0)
			}
		}
		if len(removed) != n {
			return fmt.Errorf("deleting %s removed %d memberships, want %d", users[0], len(removed), n)
		}
		if got := len(w.Members(groups[1])) + len(w.GroupsOf(users[0])); got != 0 {
			return fmt.Errorf("write transaction still sees %d memberships of deleted resources", got)
		}
		return nil
	})
	checkMemberships(t, s.Read(), groups, users, want)
	s.Close()
	s = openStore(t, open)
	checkMemberships(t, s.Read(), groups, users, want)
}

// testAbortMemberships checks that a failed write leaves no trace of its
// membership changes: not in snapshots, not in the next write transaction,
// not after a reopen.
func testAbortMemberships(t *testing.T, open Opener) {
	s := openStore(t, open)
	mustWrite(t, s, func(w *store.WriteTxn) error {
		for _, r := range []*store.Resource{group("g1", "G1"), group("g2", "G2"), user("u1", "a"), user("u2", "b"), user("u3", "c")} {
			if err := w.PutResource(r); err != nil {
				return err
			}
		}
		for _, m := range [][2]string{{"g1", "u1"}, {"g1", "u2"}, {"g2", "u2"}} {
			if _, err := w.AddMember(&store.Membership{GroupID: m[0], MemberID: m[1], MemberKind: store.KindUser}); err != nil {
				return err
			}
		}
		return nil
	})
	var commits int
	var mu sync.Mutex
	s.OnCommit(func(store.CommitInfo) { mu.Lock(); commits++; mu.Unlock() })
	groups, users := []string{"g1", "g2"}, []string{"u1", "u2", "u3"}
	want := map[int]map[int]bool{0: {0: true, 1: true}, 1: {1: true}}
	boom := errors.New("boom")
	for _, fn := range []func(w *store.WriteTxn) error{
		func(w *store.WriteTxn) error {
			if _, err := w.AddMember(&store.Membership{GroupID: "g2", MemberID: "u3", MemberKind: store.KindUser}); err != nil {
				return err
			}
			if _, err := w.RemoveMember("g1", "u1"); err != nil {
				return err
			}
			if !w.IsMember("g2", "u3") || w.IsMember("g1", "u1") {
				return errors.New("write transaction does not see its own membership changes")
			}
			return boom
		},
		func(w *store.WriteTxn) error {
			if _, err := w.DeleteResource(store.KindGroup, "g1"); err != nil {
				return err
			}
			if _, err := w.DeleteResource(store.KindUser, "u2"); err != nil {
				return err
			}
			return boom
		},
		func(w *store.WriteTxn) error {
			// A conflict after membership changes aborts them too.
			if _, err := w.AddMember(&store.Membership{GroupID: "g1", MemberID: "u3", MemberKind: store.KindUser}); err != nil {
				return err
			}
			return w.PutResource(user("u9", "A"))
		},
	} {
		if err := s.Write(context.Background(), fn); err == nil {
			t.Fatal("failing write succeeded")
		}
		checkMemberships(t, s.Read(), groups, users, want)
		// The next write starts from the state before the failed one.
		mustWrite(t, s, func(w *store.WriteTxn) error {
			checkMemberships(t, w, groups, users, want)
			return nil
		})
	}
	mu.Lock()
	if commits != 0 {
		t.Fatalf("%d commits for failed or empty writes", commits)
	}
	mu.Unlock()
	s.Close()
	s = openStore(t, open)
	defer s.Close()
	checkMemberships(t, s.Read(), groups, users, want)
	if _, ok := s.Read().Resource(store.KindGroup, "g1"); !ok {
		t.Fatal("aborted delete of g1 persisted")
	}
}

// testSnapshotIsolation checks that a snapshot never changes: writes made
// after it was taken are not visible in it, only in later snapshots.
func testSnapshotIsolation(t *testing.T, open Opener) {
	s := openStore(t, open)
	defer s.Close()
	mustWrite(t, s, func(w *store.WriteTxn) error {
		for _, r := range []*store.Resource{group("g1", "G1"), user("u1", "a"), user("u2", "b")} {
			if err := w.PutResource(r); err != nil {
				return err
			}
		}
		if err := w.PutRecord("notes", "n1", &note{Text: "one"}); err != nil {
			return err
		}
		_, err := w.AddMember(&store.Membership{GroupID: "g1", MemberID: "u1", MemberKind: store.KindUser})
		return err
	})
	old := s.Read()
	groups, users := []string{"g1", "g2"}, []string{"u1", "u2", "u3"}
	before := map[int]map[int]bool{0: {0: true}}
	mustWrite(t, s, func(w *store.WriteTxn) error {
		if err := w.PutResource(group("g2", "G2")); err != nil {
			return err
		}
		if err := w.PutResource(user("u3", "c")); err != nil {
			return err
		}
		if err := w.PutRecord("notes", "n1", &note{Text: "changed"}); err != nil {
			return err
		}
		if err := w.PutRecord("notes", "n2", &note{Text: "two"}); err != nil {
			return err
		}
		for _, m := range [][2]string{{"g1", "u2"}, {"g2", "u1"}, {"g2", "u3"}} {
			if _, err := w.AddMember(&store.Membership{GroupID: m[0], MemberID: m[1], MemberKind: store.KindUser}); err != nil {
				return err
			}
		}
		_, err := w.RemoveMember("g1", "u1")
		return err
	})
	mid := s.Read()
	after := map[int]map[int]bool{0: {1: true}, 1: {0: true, 2: true}}
	mustWrite(t, s, func(w *store.WriteTxn) error {
		_, err := w.DeleteResource(store.KindUser, "u3")
		return err
	})
	last := map[int]map[int]bool{0: {1: true}, 1: {0: true}}
	checkMemberships(t, old, groups, users, before)
	checkMemberships(t, mid, groups, users, after)
	checkMemberships(t, s.Read(), groups, users, last)
	if _, ok := old.Resource(store.KindGroup, "g2"); ok {
		t.Fatal("old snapshot sees a later group")
	}
	if _, ok := old.ResourceByName(store.KindUser, "C"); ok {
		t.Fatal("old snapshot sees a later user by name")
	}
	if v, ok := old.Record("notes", "n1"); !ok || v.(*note).Text != "one" {
		t.Fatalf("old snapshot record = %#v %v", v, ok)
	}
	n := 0
	old.Records("notes", func(string, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("old snapshot has %d notes, want 1", n)
	}
	if _, ok := mid.Resource(store.KindUser, "u3"); !ok {
		t.Fatal("snapshot lost a user deleted after it was taken")
	}
	if old.Commit >= mid.Commit || mid.Commit >= s.Read().Commit {
		t.Fatalf("snapshot commits %d, %d, %d not increasing", old.Commit, mid.Commit, s.Read().Commit)
	}
}

// testCommitChanges checks the changes a commit reports: several changes
// to one object collapse into one (first before, last after), an object
// added and removed again is not reported, and a deleted resource reports
// its memberships before itself.
func testCommitChanges(t *testing.T, open Opener) {
	s := openStore(t, open)
	defer s.Close()
	var mu sync.Mutex
	var infos []store.CommitInfo
	s.OnCommit(func(ci store.CommitInfo) { mu.Lock(); infos = append(infos, ci); mu.Unlock() })
	u1 := user("u1", "a")
	mustWrite(t, s, func(w *store.WriteTxn) error {
		for _, r := range []*store.Resource{group("g1", "G1"), u1, user("u2", "b")} {
			if err := w.PutResource(r); err != nil {
				return err
			}
		}
		_, err := w.AddMember(&store.Membership{GroupID: "g1", MemberID: "u2", MemberKind: store.KindUser})
		return err
	})
	u1b, u1c := u1.Clone(), u1.Clone()
	u1b.Version, u1c.Version = 2, 3
	mustWrite(t, s, func(w *store.WriteTxn) error {
		if err := w.PutResource(u1b); err != nil {
			return err
		}
		if _, err := w.AddMember(&store.Membership{GroupID: "g1", MemberID: "u1", MemberKind: store.KindUser}); err != nil {
			return err
		}
		if _, err := w.RemoveMember("g1", "u1"); err != nil {
			return err
		}
		if err := w.PutRecord("notes", "x", &note{Text: "x"}); err != nil {
			return err
		}
		if err := w.DeleteRecord("notes", "x"); err != nil {
			return err
		}
		if _, err := w.RemoveMember("g1", "u2"); err != nil {
			return err
		}
		return w.PutResource(u1c)
	})
	mustWrite(t, s, func(w *store.WriteTxn) error {
		if _, err := w.AddMember(&store.Membership{GroupID: "g1", MemberID: "u1", MemberKind: store.KindUser}); err != nil {
			return err
		}
		_, err := w.DeleteResource(store.KindGroup, "g1")
		return err
	})
	mu.Lock()
	defer mu.Unlock()
	if len(infos) != 3 {
		t.Fatalf("commits = %d, want 3", len(infos))
	}
	describe := func(ci store.CommitInfo) []string {
		var out []string
		for _, c := range ci.Changes {
			obj := c.After
			op := "put"
			if obj == nil {
				obj, op = c.Before, "del"
			} else if c.Before != nil {
				op = "upd"
			}
			switch o := obj.(type) {
			case *store.Resource:
				out = append(out, fmt.Sprintf("%s %s %s", op, c.Table, o.ID))
			case *store.Membership:
				out = append(out, fmt.Sprintf("%s %s %s/%s", op, c.Table, o.GroupID, o.MemberID))
			default:
				out = append(out, fmt.Sprintf("%s %s %T", op, c.Table, obj))
			}
		}
		return out
	}
	wants := [][]string{
		{"put groups g1", "put users u1", "put users u2", "put memberships g1/u2"},
		{"del memberships g1/u2", "upd users u1"},
		{"del groups g1"},
	}
	for i, want := range wants {
		if got := describe(infos[i]); !slices.Equal(got, want) {
			t.Errorf("commit %d changes = %q, want %q", i+1, got, want)
		}
	}
	c := infos[1].Changes[1]
	if c.Before.(*store.Resource).Version != 1 || c.After.(*store.Resource).Version != 3 {
		t.Fatalf("collapsed update: before v%d, after v%d, want v1 and v3", c.Before.(*store.Resource).Version, c.After.(*store.Resource).Version)
	}
}

// testConcurrentReaders runs readers over snapshots while writers add and
// remove memberships; each snapshot must be internally consistent (every
// group has all or none of a batch's members). Run with -race.
func testConcurrentReaders(t *testing.T, open Opener) {
	s := openStore(t, open)
	defer s.Close()
	const ng, batch = 4, 8
	mustWrite(t, s, func(w *store.WriteTxn) error {
		for g := 0; g < ng; g++ {
			if err := w.PutResource(group(fmt.Sprint("g", g), fmt.Sprint("G", g))); err != nil {
				return err
			}
		}
		for u := 0; u < batch; u++ {
			if err := w.PutResource(user(fmt.Sprint("u", u), fmt.Sprint("n", u))); err != nil {
				return err
			}
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				snap := s.Read()
				for g := 0; g < ng; g++ {
					n := len(snap.Members(fmt.Sprint("g", g)))
					if n != 0 && n != batch {
						errs <- fmt.Errorf("snapshot %d: g%d has %d members, want 0 or %d", snap.Commit, g, n, batch)
						return
					}
					for u := 0; u < batch; u++ {
						if snap.IsMember(fmt.Sprint("g", g), fmt.Sprint("u", u)) != (n == batch) {
							errs <- fmt.Errorf("snapshot %d: IsMember disagrees with Members", snap.Commit)
							return
						}
					}
				}
			}
		}()
	}
	var writers sync.WaitGroup
	for g := 0; g < ng; g++ {
		writers.Add(1)
		go func(g int) {
			defer writers.Done()
			for i := 0; i < 20; i++ {
				if err := s.Write(context.Background(), func(w *store.WriteTxn) error {
					for u := 0; u < batch; u++ {
						gid, uid := fmt.Sprint("g", g), fmt.Sprint("u", u)
						var err error
						if i%2 == 0 {
							_, err = w.AddMember(&store.Membership{GroupID: gid, MemberID: uid, MemberKind: store.KindUser})
						} else {
							_, err = w.RemoveMember(gid, uid)
						}
						if err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	writers.Wait()
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// testIndexesFollowUpdates checks the lookups by name, externalId and token
// digest after resources and tokens are replaced and deleted, before and
// after a reopen, and the order of Resources and ResourcesByExternalID.
func testIndexesFollowUpdates(t *testing.T, open Opener) {
	s := openStore(t, open)
	withExt := func(r *store.Resource, ext string) *store.Resource { r.ExternalID = ext; return r }
	mustWrite(t, s, func(w *store.WriteTxn) error {
		for _, r := range []*store.Resource{withExt(user("u3", "Carol"), "e1"), withExt(user("u1", "Alice"), "e1"),
			withExt(user("u2", "Bob"), "e2"), user("u10", "Dave"), withExt(group("u1", "Alice"), "e1")} {
			if err := w.PutResource(r); err != nil {
				return err
			}
		}
		if err := w.PutToken(&store.Token{Name: "okta", Digest: "d1", Role: store.TokenRoleSCIM}); err != nil {
			return err
		}
		return w.PutToken(&store.Token{Name: "entra", Digest: "d2", Role: store.TokenRoleSCIM})
	})
	ids := func(rs []*store.Resource) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	check := func(when string) {
		t.Helper()
		snap := s.Read()
		if got := ids(snap.ResourcesByExternalID(store.KindUser, "e1")); !slices.Equal(got, []string{"u1", "u2"}) {
			t.Fatalf("%s: users with externalId e1 = %v, want [u1 u2]", when, got)
		}
		if got := ids(snap.ResourcesByExternalID(store.KindUser, "e2")); len(got) != 0 {
			t.Fatalf("%s: users with externalId e2 = %v, want none", when, got)
		}
		if got := ids(snap.ResourcesByExternalID(store.KindUser, "")); len(got) != 0 {
			t.Fatalf("%s: users with no externalId listed: %v", when, got)
		}
		if got := ids(snap.ResourcesByExternalID(store.KindGroup, "e1")); !slices.Equal(got, []string{"u1"}) {
			t.Fatalf("%s: groups with externalId e1 = %v", when, got)
		}
		if _, ok := snap.ResourceByName(store.KindUser, "bob"); ok {
			t.Fatalf("%s: old name of a renamed user still found", when)
		}
		if r, ok := snap.ResourceByName(store.KindUser, "ROBERT"); !ok || r.ID != "u2" {
			t.Fatalf("%s: renamed user by new name = %+v %v", when, r, ok)
		}
		if _, ok := snap.ResourceByName(store.KindUser, "carol"); ok {
			t.Fatalf("%s: deleted user found by name", when)
		}
		if r, ok := snap.ResourceByName(store.KindGroup, "alice"); !ok || r.Kind != store.KindGroup {
			t.Fatalf("%s: group by name = %+v %v", when, r, ok)
		}
		var all []string
		snap.Resources(store.KindUser, func(r *store.Resource) bool { all = append(all, r.ID); return true })
		if !slices.Equal(all, []string{"u1", "u10", "u2"}) {
			t.Fatalf("%s: users = %v, want in id order [u1 u10 u2]", when, all)
		}
		all = all[:0]
		snap.Resources(store.KindUser, func(r *store.Resource) bool { all = append(all, r.ID); return len(all) < 2 })
		if len(all) != 2 {
			t.Fatalf("%s: Resources went on after fn returned false: %v", when, all)
		}
		if _, ok := snap.TokenByDigest("d1"); ok {
			t.Fatalf("%s: replaced token found by its old digest", when)
		}
		if tok, ok := snap.TokenByDigest("d3"); !ok || tok.Name != "okta" {
			t.Fatalf("%s: token by new digest = %+v %v", when, tok, ok)
		}
		if _, ok := snap.TokenByDigest("d2"); ok {
			t.Fatalf("%s: deleted token found by digest", when)
		}
		var names []string
		for _, tok := range snap.Tokens() {
			names = append(names, tok.Name)
		}
		if !slices.Equal(names, []string{"okta"}) {
			t.Fatalf("%s: tokens = %v", when, names)
		}
	}
	mustWrite(t, s, func(w *store.WriteTxn) error {
		bob, _ := w.Resource(store.KindUser, "u2")
		b := bob.Clone()
		b.Name, b.ExternalID = "Robert", "e1"
		if err := w.PutResource(b); err != nil {
			return err
		}
		if _, err := w.DeleteResource(store.KindUser, "u3"); err != nil {
			return err
		}
		if err := w.PutToken(&store.Token{Name: "okta", Digest: "d3", Role: store.TokenRoleSCIM}); err != nil {
			return err
		}
		return w.DeleteToken("entra")
	})
	check("after the updates")
	s.Close()
	s = openStore(t, open)
	defer s.Close()
	check("after a reopen")
}

// testReopenKeepsEveryField checks that every field of every kind of object
// reads back the same after a reopen, for values of every JSON type and
// for strings that need escaping.
func testReopenKeepsEveryField(t *testing.T, open Opener) {
	s := openStore(t, open)
	now := time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)
	plain := &store.Resource{ID: "u1", Kind: store.KindUser, ExternalID: "ext-1", Name: "Zoë@example.com", Created: now, Modified: now.Add(time.Hour), Version: 7,
		Attrs: map[string]any{
			"active": true, "locked": false, "nickName": nil, "score": 12.5, "big": 1e300, "neg": -3.0, "empty": map[string]any{}, "none": []any{},
			"emails": []any{map[string]any{"value": "zoe@example.com", "type": "work", "primary": true}, map[string]any{"value": "z@example.org"}},
			"name":   map[string]any{"givenName": "Zoë", "familyName": "Ünïcødé 日本"},
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"department": "Support", "manager": map[string]any{"value": "u2"}},
		}}
	escaped := &store.Resource{ID: "u\"2", Kind: store.KindUser, Name: "<tab>\t\"quoted\"&", Created: now, Modified: now, Version: 1,
		Attrs: map[string]any{"title": "line1\nline2 \u2028 </script>", "k\"ey": []any{"\x01", 1.0}}}
	grp := &store.Resource{ID: "g1", Kind: store.KindGroup, Name: "Group", Attrs: map[string]any{}, Created: now, Modified: now, Version: 3}
	nilAttrs := &store.Resource{ID: "g2", Kind: store.KindGroup, Name: "No attrs", Created: now, Modified: now, Version: 1}
	members := []*store.Membership{
		{GroupID: "g1", MemberID: "u1", MemberKind: store.KindUser, Display: "Zoë"},
		{GroupID: "g1", MemberID: "u\"2", MemberKind: store.KindUser},
		{GroupID: "g1", MemberID: "g2", MemberKind: store.KindGroup, Display: "a \"nested\" group"},
	}
	tok := &store.Token{Name: "okta", Digest: "abc", Role: store.TokenRoleSCIM, Created: now}
	mustWrite(t, s, func(w *store.WriteTxn) error {
		for _, r := range []*store.Resource{plain, escaped, grp, nilAttrs} {
			if err := w.PutResource(r); err != nil {
				return err
			}
		}
		for _, m := range members {
			if _, err := w.AddMember(m); err != nil {
				return err
			}
		}
		if err := w.PutToken(tok); err != nil {
			return err
		}
		if err := w.PutRecord("notes", "u1", &note{Text: "for u1"}); err != nil {
			return err
		}
		return w.PutRecord("notes", "k\"ey", &note{Text: "\"escaped\" \n"})
	})
	s.Close()
	s = openStore(t, open)
	defer s.Close()
	snap := s.Read()
	for _, want := range []*store.Resource{plain, escaped, grp, nilAttrs} {
		got, ok := snap.Resource(want.Kind, want.ID)
		if !ok {
			t.Fatalf("%s %q lost across reopen", want.Kind, want.ID)
		}
		if !got.Created.Equal(want.Created) || !got.Modified.Equal(want.Modified) {
			t.Fatalf("%q times after reopen: %v %v, want %v %v", want.ID, got.Created, got.Modified, want.Created, want.Modified)
		}
		g, w := *got, *want
		g.Created, g.Modified, w.Created, w.Modified = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("%q after reopen:\n got %#v\nwant %#v", want.ID, g, w)
		}
	}
	got := snap.Members("g1")
	if len(got) != len(members) {
		t.Fatalf("members after reopen = %d, want %d", len(got), len(members))
	}
	for _, want := range members {
		i := slices.IndexFunc(got, func(m *store.Membership) bool { return m.MemberID == want.MemberID })
		if i < 0 || *got[i] != *want {
			t.Fatalf("membership %+v after reopen: %+v", *want, got)
		}
	}
	if gt, ok := snap.Token("okta"); !ok || gt.Digest != tok.Digest || gt.Role != tok.Role || !gt.Created.Equal(tok.Created) {
		t.Fatalf("token after reopen: %+v %v", gt, ok)
	}
	if v, ok := snap.Record("notes", "k\"ey"); !ok || v.(*note).Text != "\"escaped\" \n" {
		t.Fatalf("record with escapes after reopen: %#v %v", v, ok)
	}
	if v, ok := snap.Record("notes", "u1"); !ok || v.(*note).Text != "for u1" {
		t.Fatalf("record after reopen: %#v %v", v, ok)
	}
}
