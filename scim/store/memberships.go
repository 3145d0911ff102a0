package store

import (
	"slices"
	"strings"

	"github.com/tidwall/btree"
)

// memberTree is an ordered, copy-on-write set of memberships.
type memberTree = btree.BTreeG[*Membership]

// memberships holds every membership twice, in two copy-on-write B-trees
// sharing the same *Membership values: one ordered by (GroupID, MemberID),
// for a group's members, and one by (MemberID, GroupID), for a member's
// groups. An entry costs two pointers in tree nodes plus the value itself,
// instead of the radix nodes, leaves and watch channels of a memdb index.
//
// A memberships value is either private to one goroutine (the writer's head
// or a write transaction's copy, mutated in place) or published to readers,
// after which nothing mutates it or calls copy on it: the trees' Copy
// changes the tree it is called on.
type memberships struct {
	byGroup  *memberTree
	byMember *memberTree
}

func compareByGroup(a, b *Membership) int {
	if c := strings.Compare(a.GroupID, b.GroupID); c != 0 {
		return c
	}
	return strings.Compare(a.MemberID, b.MemberID)
}

func compareByMember(a, b *Membership) int {
	if c := strings.Compare(a.MemberID, b.MemberID); c != 0 {
		return c
	}
	return strings.Compare(a.GroupID, b.GroupID)
}

func newMemberships() *memberships {
	return &memberships{byGroup: newTree(compareByGroup), byMember: newTree(compareByMember)}
}

// loadMemberships builds the trees from all memberships at once: it sorts
// them in each order and appends them (B-tree bulk load). Memberships come
// from the backend in no useful order (SQLite's insertion order,
// PostgreSQL's heap order), and comparing ids through the *Membership
// pointers misses the cache on nearly every comparison: so each distinct
// group and member id is ranked once, the memberships are sorted by their
// pairs of ranks held inline, and equal ids end up sharing one string. ms
// is reordered; of memberships with the same group and member, one is kept.
func loadMemberships(ms []*Membership) *memberships {
	t := newMemberships()
	groups, members := rankIDs(ms, func(m *Membership) *string { return &m.GroupID }), rankIDs(ms, func(m *Membership) *string { return &m.MemberID })
	type ranked struct {
		group, member int32
		m             *Membership
	}
	keys := make([]ranked, len(ms))
	for i, m := range ms {
		keys[i] = ranked{groups[i], members[i], m}
	}
	slices.SortFunc(keys, func(a, b ranked) int {
		if a.group != b.group {
			return int(a.group - b.group)
		}
		return int(a.member - b.member)
	})
	keys = slices.CompactFunc(keys, func(a, b ranked) bool { return a.group == b.group && a.member == b.member })
	fill(t.byGroup, len(keys), func(i int) *Membership { return keys[i].m })
	slices.SortFunc(keys, func(a, b ranked) int {
		if a.member != b.member {
			return int(a.member - b.member)
		}
		return int(a.group - b.group)
	})
	fill(t.byMember, len(keys), func(i int) *Membership { return keys[i].m })
	return t
}

// rankIDs returns, for each membership, the rank of the id field picks out
// among the distinct ids of all of them, and makes equal ids share one
// string.
func rankIDs(ms []*Membership, field func(*Membership) *string) []int32 {
	index := make(map[string]int32)
	var distinct []string
	ranks := make([]int32, len(ms))
	for i, m := range ms {
		id := field(m)
		n, ok := index[*id]
		if !ok {
			n = int32(len(distinct))
			index[*id] = n
			distinct = append(distinct, *id)
		}
		*id = distinct[n]
		ranks[i] = n
	}
	order := make([]int32, len(distinct))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(distinct[a], distinct[b]) })
	rank := make([]int32, len(distinct))
	for r, n := range order {
		rank[n] = int32(r)
	}
	for i, n := range ranks {
		ranks[i] = rank[n]
	}
	return ranks
}

// copy returns a copy-on-write copy of t. t must not be published.
func (t *memberships) copy() *memberships {
	return &memberships{byGroup: t.byGroup.Copy(), byMember: t.byMember.Copy()}
}

// get returns the membership of memberID in groupID.
func (t *memberships) get(groupID, memberID string) (*Membership, bool) {
	return t.byGroup.Get(&Membership{GroupID: groupID, MemberID: memberID})
}

// members returns groupID's memberships in member id order.
func (t *memberships) members(groupID string) []*Membership {
	var out []*Membership
	t.byGroup.Ascend(&Membership{GroupID: groupID}, func(m *Membership) bool {
		if m.GroupID != groupID {
			return false
		}
		out = append(out, m)
		return true
	})
	return out
}

// groupsOf returns memberID's memberships in group id order.
func (t *memberships) groupsOf(memberID string) []*Membership {
	var out []*Membership
	t.byMember.Ascend(&Membership{MemberID: memberID}, func(m *Membership) bool {
		if m.MemberID != memberID {
			return false
		}
		out = append(out, m)
		return true
	})
	return out
}

// shared returns the id held by the first entry of tr at or after pivot
// when it equals id (key picks the id out of an entry), so that an equal
// string already in the tree can be reused.
func shared(tr *memberTree, pivot *Membership, key func(*Membership) string, id string) (string, bool) {
	var found string
	ok := false
	tr.Ascend(pivot, func(m *Membership) bool {
		if s := key(m); s == id {
			found, ok = s, true
		}
		return false
	})
	return found, ok
}

// insert adds a copy of m, which must not be present, and returns the copy.
// Its group and member ids are strings already held by other memberships
// when there are such, so a group's id is stored once however many members
// it has, and a member's id once however many groups it is in.
func (t *memberships) insert(m *Membership) *Membership {
	c := *m
	c.MemberKind = internKind(c.MemberKind)
	if s, ok := shared(t.byGroup, &Membership{GroupID: c.GroupID}, func(x *Membership) string { return x.GroupID }, c.GroupID); ok {
		c.GroupID = s
	}
	if s, ok := shared(t.byMember, &Membership{MemberID: c.MemberID}, func(x *Membership) string { return x.MemberID }, c.MemberID); ok {
		c.MemberID = s
	}
	t.byGroup.Set(&c)
	t.byMember.Set(&c)
	return &c
}

// delete removes m.
func (t *memberships) delete(m *Membership) {
	t.byGroup.Delete(m)
	t.byMember.Delete(m)
}
