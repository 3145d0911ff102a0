package reconcile

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/scim/store"
	"github.com/scimd/scimd/scim/store/sqlite"
)

func openTestStore(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	be, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Options{Backend: be, Records: Records(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// touchedByMap is how process found the touched users before
// touchedUsers: a map filled trigger by trigger, then sorted; a user is
// touched at most once by each trigger, even when the trigger names them
// twice or they have both a resource and a teammate record.
func touchedByMap(snap *store.Snapshot, batch []trigger) ([]touchedUser, bool) {
	touched := map[string][]int{}
	full := false
	for i, t := range batch {
		if t.all {
			full = true
			continue
		}
		for _, id := range t.users {
			if !slices.Contains(touched[id], i) {
				touched[id] = append(touched[id], i)
			}
		}
	}
	if full {
		all := []int{}
		for i, t := range batch {
			if t.all {
				all = append(all, i)
			}
		}
		snap.Resources(store.KindUser, func(u *store.Resource) bool {
			touched[u.ID] = append(touched[u.ID], all...)
			return true
		})
		snap.Records(TableTeammates, func(id string, _ any) bool {
			if _, isUser := snap.Resource(store.KindUser, id); !isUser {
				touched[id] = append(touched[id], all...)
			}
			return true
		})
	}
	ids := make([]string, 0, len(touched))
	for id := range touched {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]touchedUser, len(ids))
	for i, id := range ids {
		out[i] = touchedUser{id: id, triggers: touched[id]}
	}
	return out, full
}

func TestTouchedUsersMatchesMap(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t)
	// Users u00..u39; teammate records for u20..u59 (u40.. are deleted
	// users whose records remain).
	err := st.Write(ctx, func(tx *store.WriteTxn) error {
		for i := range 40 {
			id := fmt.Sprintf("u%02d", i)
			if err := tx.PutResource(&store.Resource{ID: id, Kind: store.KindUser, Name: id + "@example.com",
				Attrs: map[string]any{}, Created: tx.Now(), Modified: tx.Now(), Version: 1}); err != nil {
				return err
			}
		}
		for i := 20; i < 60; i++ {
			id := fmt.Sprintf("u%02d", i)
			if err := tx.PutRecord(TableTeammates, id, &Teammate{ID: id, UserName: id}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	snap := st.Read()
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 200 {
		var batch []trigger
		for range r.IntN(4) + 1 {
			if r.IntN(3) == 0 {
				batch = append(batch, trigger{all: true})
				continue
			}
			var users []string
			for range r.IntN(5) {
				users = append(users, fmt.Sprintf("u%02d", r.IntN(70))) // some in neither
			}
			batch = append(batch, trigger{users: users})
		}
		got, gotFull := touchedUsers(snap, batch)
		want, wantFull := touchedByMap(snap, batch)
		if gotFull != wantFull || len(got) != len(want) {
			t.Fatalf("batch %d: full %v, %d users; want %v, %d", n, gotFull, len(got), wantFull, len(want))
		}
		for i := range got {
			if got[i].id != want[i].id || !reflect.DeepEqual(got[i].triggers, want[i].triggers) {
				t.Fatalf("batch %d, user %d: %v %v, want %v %v", n, i, got[i].id, got[i].triggers, want[i].id, want[i].triggers)
			}
			if !got[i].resolved {
				if gotFull {
					t.Fatalf("batch %d: user %s not resolved in a full pass", n, got[i].id)
				}
				continue
			}
			u, _ := snap.Resource(store.KindUser, got[i].id)
			var rec *Teammate
			if v, ok := snap.Record(TableTeammates, got[i].id); ok {
				rec = v.(*Teammate)
			}
			if got[i].user != u || got[i].rec != rec {
				t.Fatalf("batch %d: user %s resolved to %p, %p; want %p, %p", n, got[i].id, got[i].user, got[i].rec, u, rec)
			}
		}
	}
}

// TestSkipsUnchangedInputs checks that a trigger for a user whose input
// is the same as at the last decision (same revision) is skipped, whether
// the user resource is the same one or a new version with equal content,
// and that any change of the input, or a forcing trigger, is evaluated.
func TestSkipsUnchangedInputs(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t)
	put := func(attrs map[string]any) {
		t.Helper()
		err := st.Write(ctx, func(tx *store.WriteTxn) error {
			return tx.PutResource(&store.Resource{ID: "u1", Kind: store.KindUser, Name: "alice@example.com",
				Attrs: attrs, Created: tx.Now(), Modified: tx.Now(), Version: 1})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := st.Write(ctx, func(tx *store.WriteTxn) error {
		if err := tx.PutResource(&store.Resource{ID: "g1", Kind: store.KindGroup, Name: "Intercom Admins",
			Attrs: map[string]any{}, Created: tx.Now(), Modified: tx.Now(), Version: 1}); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	put(map[string]any{"active": true, "emails": []any{map[string]any{"value": "alice@example.com"}}})
	err = st.Write(ctx, func(tx *store.WriteTxn) error {
		_, err := tx.AddMember(&store.Membership{GroupID: "g1", MemberID: "u1", MemberKind: store.KindUser})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	src := &staticPolicy{}
	set := loadPolicy(t, "")
	src.set.Store(set)
	r := New(Options{Store: st, Policy: src, Threshold: &noEscalationGuard, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := r.process(ctx, []trigger{{cause: Cause{Kind: "policy"}, all: true, committedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	skipped := func(kind string) bool {
		t.Helper()
		batch := []trigger{{cause: Cause{Kind: kind}, users: []string{"u1"}}}
		snap := st.Read()
		touched, _ := touchedUsers(snap, batch)
		evals := r.evaluate(ctx, set, snap, touched, batch, set.Roles())
		if evals[0].err != nil {
			t.Fatal(evals[0].err)
		}
		// Apply, so that the next check compares with this decision.
		if err := r.apply(ctx, set, batch, evals, nil, nil, -1, nil, false); err != nil {
			t.Fatal(err)
		}
		return evals[0].skipped
	}
	// The full pass created the teammate, so its current role is part of
	// the input now: the first trigger evaluates, the next is skipped.
	if skipped("scim") {
		t.Error("input with a new current role skipped")
	}
	if !skipped("scim") {
		t.Error("unchanged input evaluated")
	}
	if skipped("drift") {
		t.Error("drift trigger skipped")
	}
	put(map[string]any{"emails": []any{map[string]any{"value": "alice@example.com"}}, "active": true})
	if !skipped("scim") {
		t.Error("a new version of the user with the same content was evaluated")
	}
	if got := r.decisions["u1"].input.user; got != mustUser(t, st) {
		t.Error("the last decision still points to the old version of the user")
	}
	put(map[string]any{"emails": []any{map[string]any{"value": "alice@example.com"}}, "active": false})
	if skipped("scim") {
		t.Error("a changed user was skipped")
	}
	if skipped("scim") {
		t.Error("a user whose access was just removed was skipped")
	}
	if !skipped("scim") {
		t.Error("the changed user, unchanged since, was evaluated again")
	}
	err = st.Write(ctx, func(tx *store.WriteTxn) error {
		return tx.PutRecord(TableTeammates, "u1", &Teammate{ID: "u1", UserName: "alice@example.com", Role: "admin", Access: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	if skipped("scim") {
		t.Error("a changed current role was skipped")
	}
}

func mustUser(t *testing.T, st *store.Store) *store.Resource {
	t.Helper()
	u, ok := st.Read().Resource(store.KindUser, "u1")
	if !ok {
		t.Fatal("no user u1")
	}
	return u
}

// TestGroupsLookupModesAgree checks that both ways of listing a user's
// groups (store lookups, a group index) give the same lists.
func TestGroupsLookupModesAgree(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t)
	r := rand.New(rand.NewPCG(5, 6))
	err := st.Write(ctx, func(tx *store.WriteTxn) error {
		for i := range 30 {
			if err := tx.PutResource(&store.Resource{ID: fmt.Sprintf("g%02d", (i*7)%30), Kind: store.KindGroup, Name: fmt.Sprint("Group ", i),
				ExternalID: fmt.Sprint("ext", i%4), Attrs: map[string]any{}, Created: tx.Now(), Modified: tx.Now(), Version: 1}); err != nil {
				return err
			}
		}
		for i := range 50 {
			id := fmt.Sprintf("u%02d", i)
			if err := tx.PutResource(&store.Resource{ID: id, Kind: store.KindUser, Name: id,
				Attrs: map[string]any{}, Created: tx.Now(), Modified: tx.Now(), Version: 1}); err != nil {
				return err
			}
			for range r.IntN(6) {
				if _, err := tx.AddMember(&store.Membership{GroupID: fmt.Sprintf("g%02d", r.IntN(30)), MemberID: id, MemberKind: store.KindUser}); err != nil {
					return err
				}
			}
		}
		_, err := tx.AddMember(&store.Membership{GroupID: "g01", MemberID: "g02", MemberKind: store.KindGroup})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	snap := st.Read()
	small := groupsLookup(snap, 1)
	indexed := groupsLookup(snap, groupIndexMin)
	nonEmpty := 0
	for i := range 52 {
		id := fmt.Sprintf("u%02d", i)
		want := small(id)
		if len(want) > 0 {
			nonEmpty++
		}
		if got := indexed(id); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: indexed %v, want %v", id, got, want)
		}
	}
	if nonEmpty < 20 {
		t.Errorf("only %d users in a group", nonEmpty)
	}
}

// TestEquivalentPoliciesPassesAgree runs the same full passes over the
// same varied state twice: with the default policy and with an equivalent
// one (an extra `default excluded := false` leaves every decision as it
// is, but changes what OPA evaluates). Teammates must end up identical.
func TestEquivalentPoliciesPassesAgree(t *testing.T) {
	ctx := context.Background()
	shipped := loadPolicy(t, "")
	equivalent := loadPolicyEdited(t, "exclusions.rego", "\ndefault excluded := false\n")

	results := map[bool]map[string]Teammate{}
	for _, useShipped := range []bool{true, false} {
		st := openTestStore(t)
		seedVaried(t, ctx, st, 600)
		src := &staticPolicy{}
		set := equivalent
		if useShipped {
			set = shipped
		}
		src.set.Store(set)
		r := New(Options{Store: st, Policy: src, Threshold: &noEscalationGuard, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		// Twice: the second pass starts from the teammates the first made.
		for range 2 {
			if err := r.process(ctx, []trigger{{cause: Cause{Kind: "policy"}, all: true, committedAt: time.Now()}}); err != nil {
				t.Fatal(err)
			}
		}
		got := map[string]Teammate{}
		st.Read().Records(TableTeammates, func(id string, v any) bool {
			tm := *v.(*Teammate)
			tm.Revision, tm.DecisionID, tm.ChangedAt = "", "", time.Time{}
			got[id] = tm
			return true
		})
		results[useShipped] = got
	}
	if len(results[true]) != 600 {
		t.Fatalf("%d teammates, want 600", len(results[true]))
	}
	kinds := map[string]int{}
	for id, want := range results[false] {
		got := results[true][id]
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: default policy's pass %+v, equivalent policy's pass %+v", id, got, want)
		}
		kinds[fmt.Sprint(want.Excluded, want.Access, want.Role)]++
	}
	if len(kinds) < 5 {
		t.Errorf("the state exercises too few outcomes: %v", kinds)
	}
}

// loadPolicyEdited is loadPolicy with extra appended to another file.
func loadPolicyEdited(t *testing.T, file, extra string) *policy.Set {
	t.Helper()
	files := map[string][]byte{}
	entries, err := os.ReadDir(filepath.Join("..", "..", "policies"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !policy.IsPolicyFile(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join("..", "..", "policies", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	files[file] = append(files[file], extra...)
	s, err := policy.LoadFiles(context.Background(), files)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seedVaried writes users with varied attributes (excluded names in any
// case, deactivated users, departments) in mapped, unmapped and renamed
// groups.
func seedVaried(t *testing.T, ctx context.Context, st *store.Store, users int) {
	t.Helper()
	r := rand.New(rand.NewPCG(11, 12))
	groups := []struct{ id, name, ext string }{
		{"g1", "Intercom Admins", ""}, {"g2", "Intercom Support", ""}, {"g3", "Intercom Viewers", ""},
		{"g4", "renamed", "Intercom Admins"}, {"g5", "Sales", ""}, {"g6", "Viewers (by id)", "Intercom Viewers"},
	}
	err := st.Write(ctx, func(tx *store.WriteTxn) error {
		for _, g := range groups {
			if err := tx.PutResource(&store.Resource{ID: g.id, Kind: store.KindGroup, Name: g.name, ExternalID: g.ext,
				Attrs: map[string]any{}, Created: tx.Now(), Modified: tx.Now(), Version: 1}); err != nil {
				return err
			}
		}
		for i := range users {
			id := fmt.Sprintf("u%04d", i)
			name := fmt.Sprintf("user%04d@example.com", i)
			if i == 7 {
				name = "BreakGlass@Example.com"
			}
			email := name
			if i%50 == 9 || i%50 == 10 {
				email = "BREAKGLASS@example.com"
			}
			attrs := map[string]any{"active": r.IntN(8) > 0, "emails": []any{map[string]any{"value": email, "primary": true}}}
			if r.IntN(2) == 0 {
				attrs["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = map[string]any{
					"department": []string{"Support", "Sales", "support"}[r.IntN(3)]}
			}
			if err := tx.PutResource(&store.Resource{ID: id, Kind: store.KindUser, Name: name, Attrs: attrs,
				Created: tx.Now(), Modified: tx.Now(), Version: 1}); err != nil {
				return err
			}
			for _, k := range r.Perm(len(groups))[:r.IntN(4)] {
				if _, err := tx.AddMember(&store.Membership{GroupID: groups[k].id, MemberID: id, MemberKind: store.KindUser}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
