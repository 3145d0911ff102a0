package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/scimd/scimd/audit"
)

// reader holds the read helpers shared by Snapshot and WriteTxn.
type reader struct {
	t *tables
}

// Resource returns the resource of kind k with the given id.
func (r reader) Resource(k Kind, id string) (*Resource, bool) {
	return r.t.resources(k).get(id)
}

// ResourceByName returns the resource of kind k whose userName or
// displayName equals name, compared case-insensitively (as
// strings.EqualFold does).
func (r reader) ResourceByName(k Kind, name string) (*Resource, bool) {
	return r.t.resources(k).byFoldedName(name)
}

// ResourcesByExternalID returns the resources of kind k with the given
// externalId (which is not unique), in id order.
func (r reader) ResourcesByExternalID(k Kind, externalID string) []*Resource {
	return r.t.resources(k).byExternalID(externalID)
}

// Resources calls fn for every resource of kind k in id order, until fn
// returns false.
func (r reader) Resources(k Kind, fn func(*Resource) bool) {
	r.t.resources(k).byID.Scan(fn)
}

// Members returns the memberships of a group, in member id order.
func (r reader) Members(groupID string) []*Membership {
	return r.t.members.members(groupID)
}

// GroupsOf returns the memberships whose member is memberID, in group id
// order.
func (r reader) GroupsOf(memberID string) []*Membership {
	return r.t.members.groupsOf(memberID)
}

// IsMember reports whether memberID is a direct member of groupID.
func (r reader) IsMember(groupID, memberID string) bool {
	_, ok := r.t.members.get(groupID, memberID)
	return ok
}

// Token returns the token with the given name.
func (r reader) Token(name string) (*Token, bool) {
	return r.t.tokens.byName.Get(&Token{Name: name})
}

// TokenByDigest returns the token whose secret has the given hex SHA-256
// digest.
func (r reader) TokenByDigest(digest string) (*Token, bool) {
	return r.t.tokens.byDigest.Get(&Token{Digest: digest})
}

// Tokens returns every token in name order.
func (r reader) Tokens() []*Token {
	var out []*Token
	r.t.tokens.byName.Scan(func(t *Token) bool { out = append(out, t); return true })
	return out
}

// Record returns the value stored under (table, key).
func (r reader) Record(table, key string) (any, bool) {
	rec, ok := r.t.records.tree.Get(&Record{Table: table, Key: key})
	if !ok {
		return nil, false
	}
	return rec.Value, true
}

// Records calls fn for every record of a table in key order, until fn
// returns false.
func (r reader) Records(table string, fn func(key string, value any) bool) {
	r.t.records.tree.Ascend(&Record{Table: table}, func(rec *Record) bool {
		return rec.Table == table && fn(rec.Key, rec.Value)
	})
}

// RecordsWithPrefix calls fn for every record of a table whose key starts
// with prefix, in key order, until fn returns false. Its cost is that of
// the records it visits, not of the table.
func (r reader) RecordsWithPrefix(table, prefix string, fn func(key string, value any) bool) {
	r.t.records.tree.Ascend(&Record{Table: table, Key: prefix}, func(rec *Record) bool {
		return rec.Table == table && strings.HasPrefix(rec.Key, prefix) && fn(rec.Key, rec.Value)
	})
}

// Snapshot is a consistent read-only view of durable state. It is cheap to
// take and never blocks writers.
type Snapshot struct {
	reader
	// Commit is the number of the last commit this snapshot contains.
	Commit uint64
	// FeedSeq is the sequence number of the last feed entry this snapshot
	// reflects: a client that starts from the snapshot follows the feed
	// after it.
	FeedSeq uint64
}

// WriteTxn is a write transaction. It sees its own changes. Everything it
// does, including its audit events, becomes durable together or not at all.
type WriteTxn struct {
	reader
	store  *Store
	events []audit.Event
	feed   []FeedEntry
	now    time.Time
	// own is the state the transaction reads and changes (reader.t points
	// to it): at first the writer's head tables, each replaced by a
	// private copy at the transaction's first change to it (owned).
	own     tables
	owned   ownedTables
	changes []trackedChange
}

// ownedTables records which of a transaction's tables are its own copies.
type ownedTables struct {
	users, groups, members, tokens, records bool
}

// changeKey identifies a changed object: its table and primary key.
type changeKey struct {
	table string
	a, b  string
}

type trackedChange struct {
	key changeKey
	Change
}

// track records one mutation, in the order they are made.
func (w *WriteTxn) track(key changeKey, before, after any) {
	w.changes = append(w.changes, trackedChange{key: key, Change: Change{Table: key.table, Before: before, After: after}})
}

// netChanges returns the transaction's changes with the mutations of one
// object collapsed into one change at the position of its last mutation,
// holding the object before the first and after the last (as go-memdb's
// change tracking does). An object inserted and then deleted is left out.
func (w *WriteTxn) netChanges() []Change {
	type info struct {
		firstBefore any
		last        int
	}
	seen := make(map[changeKey]info, len(w.changes))
	for i, c := range w.changes {
		in, ok := seen[c.key]
		if !ok {
			in.firstBefore = c.Before
		}
		in.last = i
		seen[c.key] = in
	}
	out := make([]Change, 0, len(seen))
	for i, c := range w.changes {
		in := seen[c.key]
		if in.last != i {
			continue
		}
		ch := c.Change
		ch.Before = in.firstBefore
		if ch.Before == nil && ch.After == nil {
			continue
		}
		out = append(out, ch)
	}
	return out
}

// ownResources returns the transaction's private copy of the table of
// kind k, making it on first use; likewise the other own* methods.
func (w *WriteTxn) ownResources(k Kind) *resourceTable {
	if k == KindGroup {
		if !w.owned.groups {
			w.own.groups, w.owned.groups = w.own.groups.copy(), true
		}
		return w.own.groups
	}
	if !w.owned.users {
		w.own.users, w.owned.users = w.own.users.copy(), true
	}
	return w.own.users
}

func (w *WriteTxn) ownMemberships() *memberships {
	if !w.owned.members {
		w.own.members, w.owned.members = w.own.members.copy(), true
	}
	return w.own.members
}

func (w *WriteTxn) ownTokens() *tokenTable {
	if !w.owned.tokens {
		w.own.tokens, w.owned.tokens = w.own.tokens.copy(), true
	}
	return w.own.tokens
}

func (w *WriteTxn) ownRecords() *recordTable {
	if !w.owned.records {
		w.own.records, w.owned.records = w.own.records.copy(), true
	}
	return w.own.records
}

// Now is the transaction's timestamp: every change and event of one write
// shares it.
func (w *WriteTxn) Now() time.Time { return w.now }

// PutResource inserts or replaces a resource. It fails with ErrConflict when
// another resource of the same kind has the same name (case-insensitive).
func (w *WriteTxn) PutResource(r *Resource) error {
	if r.ID == "" || r.Name == "" {
		return fmt.Errorf("store: resource needs an id and a name")
	}
	if other, ok := w.ResourceByName(r.Kind, r.Name); ok && other.ID != r.ID {
		return fmt.Errorf("store: %s name %q is taken by %s: %w", r.Kind, r.Name, other.ID, ErrConflict)
	}
	var before any
	if old, replaced := w.ownResources(r.Kind).put(r); replaced {
		before = old
	}
	table := kindTable(r.Kind)
	w.track(changeKey{table: table, a: r.ID}, before, r)
	return nil
}

// DeleteResource removes a resource and every membership it takes part in,
// as a group or as a member. It returns the memberships it removed.
func (w *WriteTxn) DeleteResource(k Kind, id string) ([]*Membership, error) {
	r, ok := w.Resource(k, id)
	if !ok {
		return nil, fmt.Errorf("store: delete %s %s: %w", k, id, ErrNotFound)
	}
	removed := w.GroupsOf(id)
	for _, m := range w.Members(id) {
		if m.MemberID != id { // a group in itself is in both lists
			removed = append(removed, m)
		}
	}
	if len(removed) > 0 {
		mem := w.ownMemberships()
		for _, m := range removed {
			mem.delete(m)
			w.track(changeKey{table: TableMemberships, a: m.GroupID, b: m.MemberID}, m, nil)
		}
	}
	table := kindTable(k)
	w.ownResources(k).delete(r)
	w.track(changeKey{table: table, a: id}, r, nil)
	return removed, nil
}

// AddMember adds a membership. It reports false when it already existed.
// The store keeps a copy of m (whose ids may share memory with those of
// other memberships), so m may be reused afterwards.
func (w *WriteTxn) AddMember(m *Membership) (bool, error) {
	if m.GroupID == "" || m.MemberID == "" {
		return false, fmt.Errorf("store: membership needs a group id and a member id")
	}
	if w.IsMember(m.GroupID, m.MemberID) {
		return false, nil
	}
	stored := w.ownMemberships().insert(m)
	w.track(changeKey{table: TableMemberships, a: stored.GroupID, b: stored.MemberID}, nil, stored)
	return true, nil
}

// RemoveMember removes a membership. It reports false when there was none.
func (w *WriteTxn) RemoveMember(groupID, memberID string) (bool, error) {
	m, ok := w.own.members.get(groupID, memberID)
	if !ok {
		return false, nil
	}
	w.ownMemberships().delete(m)
	w.track(changeKey{table: TableMemberships, a: m.GroupID, b: m.MemberID}, m, nil)
	return true, nil
}

// PutToken stores a token; a token with the same name is replaced.
func (w *WriteTxn) PutToken(t *Token) error {
	if t.Name == "" || t.Digest == "" {
		return fmt.Errorf("store: token needs a name and a digest")
	}
	var before any
	if old, replaced := w.ownTokens().put(t); replaced {
		before = old
	}
	w.track(changeKey{table: TableTokens, a: t.Name}, before, t)
	return nil
}

// DeleteToken removes the token with the given name.
func (w *WriteTxn) DeleteToken(name string) error {
	t, ok := w.Token(name)
	if !ok {
		return fmt.Errorf("store: token %q: %w", name, ErrNotFound)
	}
	w.ownTokens().delete(t)
	w.track(changeKey{table: TableTokens, a: name}, t, nil)
	return nil
}

// PutRecord stores value under (table, key). The table must have a codec
// registered with the store.
func (w *WriteTxn) PutRecord(table, key string, value any) error {
	if _, ok := w.store.codecs[table]; !ok {
		return fmt.Errorf("store: no codec registered for record table %q", table)
	}
	if key == "" {
		return fmt.Errorf("store: record of table %q needs a key", table)
	}
	rec := &Record{Table: table, Key: key, Value: value}
	var before any
	if old, replaced := w.ownRecords().tree.Set(rec); replaced {
		before = old
	}
	w.track(changeKey{table: TableRecords, a: table, b: key}, before, rec)
	return nil
}

// DeleteRecord removes the record under (table, key), if any.
func (w *WriteTxn) DeleteRecord(table, key string) error {
	if _, ok := w.own.records.tree.Get(&Record{Table: table, Key: key}); !ok {
		return nil
	}
	old, _ := w.ownRecords().tree.Delete(&Record{Table: table, Key: key})
	w.track(changeKey{table: TableRecords, a: table, b: key}, old, nil)
	return nil
}

// Audit appends an audit event to this transaction. Its sequence number and
// hashes are assigned when the transaction commits. A zero Time becomes the
// transaction's timestamp.
func (w *WriteTxn) Audit(e audit.Event) {
	if e.Time.IsZero() {
		e.Time = w.now
	}
	w.events = append(w.events, e)
}

// AppendFeed appends an entry to the change feed in this transaction; its
// sequence number is assigned when the transaction commits.
func (w *WriteTxn) AppendFeed(key, typ string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("store: encode feed entry for %s: %w", key, err)
	}
	w.feed = append(w.feed, FeedEntry{Time: w.now, Key: key, Type: typ, Data: raw})
	return nil
}
