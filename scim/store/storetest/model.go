package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/scimd/scimd/scim/store"
)

// model is the store's state as plain maps: what a sequence of writes
// must leave behind, whatever the store's trees and backend do.
type model struct {
	names   map[store.Kind]map[string]string // kind → id → name
	members map[string]map[string]bool       // group id → member ids
	tokens  map[string]string                // name → digest
	notes   map[string]string                // record key → text
}

func newModel() *model {
	return &model{
		names:   map[store.Kind]map[string]string{store.KindUser: {}, store.KindGroup: {}},
		members: map[string]map[string]bool{},
		tokens:  map[string]string{},
		notes:   map[string]string{},
	}
}

func (m *model) clone() *model {
	c := newModel()
	for k, ids := range m.names {
		for id, n := range ids {
			c.names[k][id] = n
		}
	}
	for g, ms := range m.members {
		c.members[g] = map[string]bool{}
		for id := range ms {
			c.members[g][id] = true
		}
	}
	for k, v := range m.tokens {
		c.tokens[k] = v
	}
	for k, v := range m.notes {
		c.notes[k] = v
	}
	return c
}

// nameTaken reports whether another resource of kind k has name, compared
// case-insensitively.
func (m *model) nameTaken(k store.Kind, id, name string) bool {
	for other, n := range m.names[k] {
		if other != id && strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// The pools the operations draw from: few enough that operations collide
// (names taken, members added twice, deletes of what is gone).
var (
	modelUsers  = []string{"u0", "u1", "u2", "u3", "u4", "u5"}
	modelGroups = []string{"g0", "g1", "g2", "g3"}
	modelNames  = []string{"alice", "Alice", "bob", "BOB", "carol", "dave", "Eve", "eve"}
)

// modelOp is one operation: applied to the transaction and to the model,
// it returns whether the store must refuse it (ErrConflict, ErrNotFound).
type modelOp struct {
	text  string
	apply func(w *store.WriteTxn, m *model) (wantErr bool, err error)
}

func kindOf(id string) store.Kind {
	if strings.HasPrefix(id, "g") {
		return store.KindGroup
	}
	return store.KindUser
}

// decodeOp turns two bytes into one operation on the store and the model.
func decodeOp(a, b byte) modelOp {
	pick := func(pool []string, x byte) string { return pool[int(x)%len(pool)] }
	ids := append(append([]string{}, modelUsers...), modelGroups...)
	switch a % 9 {
	case 0, 1: // create or rename a user or group
		id := pick(ids, b)
		name := pick(modelNames, b/16+a/9)
		return modelOp{fmt.Sprintf("put %s %q", id, name), func(w *store.WriteTxn, m *model) (bool, error) {
			k := kindOf(id)
			wantErr := m.nameTaken(k, id, name)
			err := w.PutResource(&store.Resource{ID: id, Kind: k, Name: name, Attrs: map[string]any{"n": name},
				Created: w.Now(), Modified: w.Now(), Version: 1})
			if err == nil {
				m.names[k][id] = name
			}
			return wantErr, err
		}}
	case 2: // delete a user or group, with its memberships
		id := pick(ids, b)
		return modelOp{"delete " + id, func(w *store.WriteTxn, m *model) (bool, error) {
			k := kindOf(id)
			_, exists := m.names[k][id]
			_, err := w.DeleteResource(k, id)
			if err == nil {
				delete(m.names[k], id)
				delete(m.members, id)
				for _, ms := range m.members {
					delete(ms, id)
				}
			}
			return !exists, err
		}}
	case 3, 4: // add a member
		g, member := pick(modelGroups, b), pick(ids, b/8)
		return modelOp{fmt.Sprintf("add %s to %s", member, g), func(w *store.WriteTxn, m *model) (bool, error) {
			_, err := w.AddMember(&store.Membership{GroupID: g, MemberID: member, MemberKind: kindOf(member)})
			if err == nil {
				if m.members[g] == nil {
					m.members[g] = map[string]bool{}
				}
				m.members[g][member] = true
			}
			return false, err
		}}
	case 5: // remove a member
		g, member := pick(modelGroups, b), pick(ids, b/8)
		return modelOp{fmt.Sprintf("remove %s from %s", member, g), func(w *store.WriteTxn, m *model) (bool, error) {
			_, err := w.RemoveMember(g, member)
			if err == nil {
				delete(m.members[g], member)
			}
			return false, err
		}}
	case 6: // put or delete a token
		name := pick([]string{"okta", "entra", "admin"}, b)
		if b%2 == 0 {
			digest := fmt.Sprintf("digest-%d", b)
			return modelOp{fmt.Sprintf("token %s %s", name, digest), func(w *store.WriteTxn, m *model) (bool, error) {
				err := w.PutToken(&store.Token{Name: name, Digest: digest, Role: store.TokenRoleSCIM, Created: w.Now()})
				if err == nil {
					m.tokens[name] = digest
				}
				return false, err
			}}
		}
		return modelOp{"revoke " + name, func(w *store.WriteTxn, m *model) (bool, error) {
			_, exists := m.tokens[name]
			err := w.DeleteToken(name)
			if err == nil {
				delete(m.tokens, name)
			}
			return !exists, err
		}}
	default: // put or delete a record
		key := pick([]string{"a", "b", "c", "d/e"}, b)
		if a%2 == 0 {
			return modelOp{"delete note " + key, func(w *store.WriteTxn, m *model) (bool, error) {
				err := w.DeleteRecord("notes", key)
				if err == nil {
					delete(m.notes, key)
				}
				return false, err
			}}
		}
		text := fmt.Sprint("text ", b)
		return modelOp{fmt.Sprintf("note %s %q", key, text), func(w *store.WriteTxn, m *model) (bool, error) {
			err := w.PutRecord("notes", key, &note{Text: text})
			if err == nil {
				m.notes[key] = text
			}
			return false, err
		}}
	}
}

// RunModel applies the operations ops encodes (three bytes each: the
// operation, its argument, and whether to group it with the next ones,
// abort the write or reopen the store) to a store and to a plain-map
// model, and checks that they agree after every write and every reopen.
func RunModel(t *testing.T, open Opener, ops []byte) {
	ctx := context.Background()
	s := openStore(t, open)
	defer func() { s.Close() }()
	m := newModel()
	var log []string
	for i := 0; i+2 < len(ops); {
		// One write: operations until one whose third byte ends it.
		next := m.clone()
		var text []string
		var unexpected error
		abort := false
		err := s.Write(ctx, func(w *store.WriteTxn) error {
			for ; i+2 < len(ops); i += 3 {
				op := decodeOp(ops[i], ops[i+1])
				text = append(text, op.text)
				wantErr, err := op.apply(w, next)
				if wantErr != (err != nil) {
					unexpected = fmt.Errorf("%s: error %v, want an error: %v", op.text, err, wantErr)
					return unexpected
				}
				if err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
					unexpected = fmt.Errorf("%s: %w", op.text, err)
					return unexpected
				}
				if ctl := ops[i+2] % 8; ctl != 0 {
					abort = ctl == 1
					i += 3
					if abort {
						return errAbort
					}
					break
				}
			}
			return nil
		})
		log = append(log, strings.Join(text, "; "))
		if unexpected != nil {
			t.Fatalf("after %v: %v", log, unexpected)
		}
		switch {
		case abort && !errors.Is(err, errAbort):
			t.Fatalf("after %v: aborted write: %v", log, err)
		case !abort && err != nil:
			t.Fatalf("after %v: %v", log, err)
		case !abort:
			m = next
		}
		checkModel(t, s.Read(), m, log)
		if i >= 3 && ops[i-1]%8 == 2 {
			s.Close()
			s = openStore(t, open)
			log = append(log, "reopen")
			checkModel(t, s.Read(), m, log)
		}
	}
	s.Close()
	s = openStore(t, open)
	checkModel(t, s.Read(), m, append(log, "reopen"))
}

var errAbort = errors.New("aborted on purpose")

// checkModel compares every lookup of snap with the model.
func checkModel(t *testing.T, snap *store.Snapshot, m *model, log []string) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("after %d writes (%s): %s", len(log), strings.Join(log, " | "), fmt.Sprintf(format, args...))
	}
	for _, k := range []store.Kind{store.KindUser, store.KindGroup} {
		got := map[string]string{}
		snap.Resources(k, func(r *store.Resource) bool {
			got[r.ID] = r.Name
			return true
		})
		if fmt.Sprint(got) != fmt.Sprint(m.names[k]) {
			fail("%s resources %v, model %v", k, got, m.names[k])
		}
		for id, name := range m.names[k] {
			for _, asked := range []string{name, strings.ToUpper(name), strings.ToLower(name)} {
				if r, ok := snap.ResourceByName(k, asked); !ok || r.ID != id {
					fail("%s by name %q: %v, want %s", k, asked, r, id)
				}
			}
			if r, ok := snap.Resource(k, id); !ok || r.Name != name || r.Attrs["n"] != name {
				fail("%s %s: %+v, want name %q", k, id, r, name)
			}
		}
		for _, name := range modelNames {
			if r, ok := snap.ResourceByName(k, name); ok && !strings.EqualFold(m.names[k][r.ID], name) {
				fail("%s by name %q found %s, which the model names %q", k, name, r.ID, m.names[k][r.ID])
			}
		}
	}
	for _, g := range modelGroups {
		var got []string
		for _, ms := range snap.Members(g) {
			if ms.GroupID != g || ms.MemberKind != kindOf(ms.MemberID) {
				fail("membership %+v listed under %s", ms, g)
			}
			got = append(got, ms.MemberID)
		}
		want := keys(m.members[g])
		sort.Strings(got)
		if !slices.Equal(got, want) {
			fail("members of %s %v, model %v", g, got, want)
		}
		for _, id := range append(append([]string{}, modelUsers...), modelGroups...) {
			if snap.IsMember(g, id) != m.members[g][id] {
				fail("IsMember(%s, %s) = %v", g, id, !m.members[g][id])
			}
		}
	}
	for _, id := range append(append([]string{}, modelUsers...), modelGroups...) {
		var got, want []string
		for _, ms := range snap.GroupsOf(id) {
			got = append(got, ms.GroupID)
		}
		for g, ms := range m.members {
			if ms[id] {
				want = append(want, g)
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			fail("groups of %s %v, model %v", id, got, want)
		}
	}
	gotTokens := map[string]string{}
	for _, tok := range snap.Tokens() {
		gotTokens[tok.Name] = tok.Digest
		if byDigest, ok := snap.TokenByDigest(tok.Digest); !ok || byDigest.Digest != tok.Digest {
			fail("token %s not found by its digest", tok.Name)
		}
	}
	if fmt.Sprint(gotTokens) != fmt.Sprint(m.tokens) {
		fail("tokens %v, model %v", gotTokens, m.tokens)
	}
	gotNotes := map[string]string{}
	snap.Records("notes", func(key string, v any) bool {
		gotNotes[key] = v.(*note).Text
		return true
	})
	if fmt.Sprint(gotNotes) != fmt.Sprint(m.notes) {
		fail("notes %v, model %v", gotNotes, m.notes)
	}
}

func keys(set map[string]bool) []string {
	var out []string
	for k, ok := range set {
		if ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// RandomOps returns n operations for RunModel drawn from a generator with
// the given seed.
func RandomOps(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0))
	ops := make([]byte, 3*n)
	for i := range n {
		ops[3*i], ops[3*i+1] = byte(r.IntN(256)), byte(r.IntN(256))
		// Most writes are one or two operations; some abort; few reopen.
		switch x := r.IntN(100); {
		case x < 55:
			ops[3*i+2] = 3 // end the write
		case x < 60:
			ops[3*i+2] = 1 // abort it
		case x < 63:
			ops[3*i+2] = 2 // end it, then reopen
		default:
			ops[3*i+2] = 0 // group with the next operation
		}
	}
	return ops
}

func testModel(t *testing.T, open Opener) {
	RunModel(t, open, RandomOps(14, 600))
}
