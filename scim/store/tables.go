package store

import (
	"slices"
	"strings"

	"github.com/tidwall/btree"
)

// Table names. They are also the table names the Backend persists rows under.
const (
	TableUsers       = "users"
	TableGroups      = "groups"
	TableMemberships = "memberships"
	TableTokens      = "tokens"
	TableRecords     = "records"
)

func kindTable(k Kind) string {
	if k == KindGroup {
		return TableGroups
	}
	return TableUsers
}

// Every table is a set of copy-on-write B-trees (github.com/tidwall/btree),
// one per lookup order, holding pointers to the same values. A table value
// is either private to the writer (its head, or a write transaction's copy,
// mutated in place) or published to readers, after which nothing mutates it
// or copies it: a tree's Copy changes the tree it is called on. Readers and
// the single writer synchronise through the store, so the trees' own locks
// are off.
var treeOptions = btree.Options{NoLocks: true}

func newTree[T any](compare func(a, b T) int) *btree.BTreeG[T] {
	return btree.NewBTreeGOptions(func(a, b T) bool { return compare(a, b) < 0 }, treeOptions)
}

// loadTree builds a tree from items at once (B-tree bulk load), sorting
// them first unless they are sorted; of items that compare equal, one is
// kept. items is reordered.
func loadTree[T any](items []T, compare func(a, b T) int) *btree.BTreeG[T] {
	tr := newTree(compare)
	if !slices.IsSortedFunc(items, compare) {
		slices.SortFunc(items, compare)
	}
	fill(tr, len(items), func(i int) T { return items[i] })
	return tr
}

// fill puts n items, item(0) to item(n-1) in ascending order, into the
// empty tree tr. Appending sorted items (the tree's bulk Load) leaves
// nodes half full: a full node splits in two halves and the appends go on
// in the right one. So the items at even positions are appended first,
// and those at odd positions then fill the half-empty nodes, which ends
// with nodes nearly full.
func fill[T any](tr *btree.BTreeG[T], n int, item func(i int) T) {
	for i := 0; i < n; i += 2 {
		tr.Load(item(i))
	}
	var hint btree.PathHint
	for i := 1; i < n; i += 2 {
		tr.SetHint(item(i), &hint)
	}
}

// resourceTable holds the Users or the Groups, by id, by case-folded name
// (unique) and by externalId (not unique, in id order; resources without
// one are left out).
type resourceTable struct {
	byID   *btree.BTreeG[*Resource]
	byName *btree.BTreeG[*Resource]
	byExt  *btree.BTreeG[*Resource]
}

func compareResourceID(a, b *Resource) int   { return strings.Compare(a.ID, b.ID) }
func compareResourceName(a, b *Resource) int { return compareFold(a.Name, b.Name) }
func compareResourceExt(a, b *Resource) int {
	if c := strings.Compare(a.ExternalID, b.ExternalID); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// loadResourceTable builds a table from all its resources at once. rs is
// reordered.
func loadResourceTable(rs []*Resource) *resourceTable {
	t := &resourceTable{byID: loadTree(rs, compareResourceID)}
	rs = t.byID.Items() // without duplicate ids
	var ext []*Resource
	for _, r := range rs {
		if r.ExternalID != "" {
			ext = append(ext, r)
		}
	}
	t.byExt = loadTree(ext, compareResourceExt)
	// Sort by the folded names computed once, rather than folding both
	// names in every comparison.
	type named struct {
		folded string
		r      *Resource
	}
	byName := make([]named, len(rs))
	for i, r := range rs {
		byName[i] = named{FoldKey(r.Name), r}
	}
	slices.SortFunc(byName, func(a, b named) int { return strings.Compare(a.folded, b.folded) })
	t.byName = newTree(compareResourceName)
	fill(t.byName, len(byName), func(i int) *Resource { return byName[i].r })
	return t
}

// shareIDs replaces the id that key picks out of each item of items with
// the equal id of a resource in rs, if any, so that the string is stored
// once. items must be ordered by key within each run of items for which
// run returns the same value; both are private to the loading goroutine.
func shareIDs[T any](items *btree.BTreeG[T], run, key func(T) string, set func(T, string), rs *btree.BTreeG[*Resource]) {
	it := rs.Iter()
	defer it.Release()
	more := it.First()
	curRun := ""
	items.Scan(func(item T) bool {
		if r := run(item); r != curRun {
			curRun, more = r, it.First()
		}
		k := key(item)
		for more && it.Item().ID < k {
			more = it.Next()
		}
		if more && it.Item().ID == k {
			set(item, it.Item().ID)
		}
		return true
	})
}

func (t *resourceTable) copy() *resourceTable {
	return &resourceTable{byID: t.byID.Copy(), byName: t.byName.Copy(), byExt: t.byExt.Copy()}
}

func (t *resourceTable) get(id string) (*Resource, bool) {
	return t.byID.Get(&Resource{ID: id})
}

func (t *resourceTable) byFoldedName(name string) (*Resource, bool) {
	return t.byName.Get(&Resource{Name: name})
}

func (t *resourceTable) byExternalID(externalID string) []*Resource {
	if externalID == "" {
		return nil
	}
	var out []*Resource
	t.byExt.Ascend(&Resource{ExternalID: externalID}, func(r *Resource) bool {
		if r.ExternalID != externalID {
			return false
		}
		out = append(out, r)
		return true
	})
	return out
}

// unindex removes old from the name and externalId trees, where it may
// have been replaced by another resource with the same key.
func (t *resourceTable) unindex(old *Resource) {
	if cur, ok := t.byName.Get(old); ok && cur == old {
		t.byName.Delete(old)
	}
	if old.ExternalID != "" {
		t.byExt.Delete(old)
	}
}

// put inserts or replaces r and returns the resource it replaced.
func (t *resourceTable) put(r *Resource) (*Resource, bool) {
	old, ok := t.byID.Set(r)
	if ok {
		t.unindex(old)
	}
	t.byName.Set(r)
	if r.ExternalID != "" {
		t.byExt.Set(r)
	}
	return old, ok
}

func (t *resourceTable) delete(r *Resource) {
	if old, ok := t.byID.Delete(r); ok {
		t.unindex(old)
	}
}

// tokenTable holds the tokens by name and by digest.
type tokenTable struct {
	byName   *btree.BTreeG[*Token]
	byDigest *btree.BTreeG[*Token]
}

func compareTokenName(a, b *Token) int   { return strings.Compare(a.Name, b.Name) }
func compareTokenDigest(a, b *Token) int { return strings.Compare(a.Digest, b.Digest) }

func loadTokenTable(ts []*Token) *tokenTable {
	t := &tokenTable{byName: loadTree(ts, compareTokenName)}
	t.byDigest = loadTree(t.byName.Items(), compareTokenDigest)
	return t
}

func (t *tokenTable) copy() *tokenTable {
	return &tokenTable{byName: t.byName.Copy(), byDigest: t.byDigest.Copy()}
}

func (t *tokenTable) put(tok *Token) (*Token, bool) {
	old, ok := t.byName.Set(tok)
	if ok {
		if cur, found := t.byDigest.Get(old); found && cur == old {
			t.byDigest.Delete(old)
		}
	}
	t.byDigest.Set(tok)
	return old, ok
}

func (t *tokenTable) delete(tok *Token) {
	t.byName.Delete(tok)
	if cur, ok := t.byDigest.Get(tok); ok && cur == tok {
		t.byDigest.Delete(tok)
	}
}

// recordTable holds the records in (table, key) order.
type recordTable struct {
	tree *btree.BTreeG[*Record]
}

func compareRecord(a, b *Record) int {
	if c := strings.Compare(a.Table, b.Table); c != 0 {
		return c
	}
	return strings.Compare(a.Key, b.Key)
}

func (t *recordTable) copy() *recordTable { return &recordTable{tree: t.tree.Copy()} }

// tables is the whole in-memory state.
type tables struct {
	users, groups *resourceTable
	members       *memberships
	tokens        *tokenTable
	records       *recordTable
}

func (t *tables) resources(k Kind) *resourceTable {
	if k == KindGroup {
		return t.groups
	}
	return t.users
}
