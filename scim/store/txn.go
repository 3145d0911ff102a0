package store

import (
	"encoding/json"
	"fmt"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/scimd/scimd/audit"
)

// reader holds the read helpers shared by Snapshot and WriteTxn.
type reader struct {
	txn *memdb.Txn
	mem *memberships
}

// Resource returns the resource of kind k with the given id.
func (r reader) Resource(k Kind, id string) (*Resource, bool) {
	raw, err := r.txn.First(kindTable(k), "id", id)
	if err != nil || raw == nil {
		return nil, false
	}
	return raw.(*Resource), true
}

// ResourceByName returns the resource of kind k whose userName or
// displayName equals name, compared case-insensitively (as
// strings.EqualFold does).
func (r reader) ResourceByName(k Kind, name string) (*Resource, bool) {
	raw, err := r.txn.First(kindTable(k), "name", name)
	if err != nil || raw == nil {
		return nil, false
	}
	return raw.(*Resource), true
}

// ResourcesByExternalID returns the resources of kind k with the given
// externalId (which is not unique), in id order.
func (r reader) ResourcesByExternalID(k Kind, externalID string) []*Resource {
	it, err := r.txn.Get(kindTable(k), "externalId", externalID)
	if err != nil {
		return nil
	}
	var out []*Resource
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*Resource))
	}
	return out
}

// Resources calls fn for every resource of kind k in id order, until fn
// returns false.
func (r reader) Resources(k Kind, fn func(*Resource) bool) {
	it, err := r.txn.Get(kindTable(k), "id")
	if err != nil {
		return
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if !fn(raw.(*Resource)) {
			return
		}
	}
}

// Members returns the memberships of a group, in member id order.
func (r reader) Members(groupID string) []*Membership {
	return r.mem.members(groupID)
}

// GroupsOf returns the memberships whose member is memberID, in group id
// order.
func (r reader) GroupsOf(memberID string) []*Membership {
	return r.mem.groupsOf(memberID)
}

// IsMember reports whether memberID is a direct member of groupID.
func (r reader) IsMember(groupID, memberID string) bool {
	_, ok := r.mem.get(groupID, memberID)
	return ok
}

// Token returns the token with the given name.
func (r reader) Token(name string) (*Token, bool) {
	raw, err := r.txn.First(TableTokens, "id", name)
	if err != nil || raw == nil {
		return nil, false
	}
	return raw.(*Token), true
}

// TokenByDigest returns the token whose secret has the given hex SHA-256
// digest.
func (r reader) TokenByDigest(digest string) (*Token, bool) {
	raw, err := r.txn.First(TableTokens, "digest", digest)
	if err != nil || raw == nil {
		return nil, false
	}
	return raw.(*Token), true
}

// Tokens returns every token in name order.
func (r reader) Tokens() []*Token {
	it, err := r.txn.Get(TableTokens, "id")
	if err != nil {
		return nil
	}
	var out []*Token
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*Token))
	}
	return out
}

// Record returns the value stored under (table, key).
func (r reader) Record(table, key string) (any, bool) {
	raw, err := r.txn.First(TableRecords, "id", table, key)
	if err != nil || raw == nil {
		return nil, false
	}
	return raw.(*Record).Value, true
}

// Records calls fn for every record of a table in key order, until fn
// returns false.
func (r reader) Records(table string, fn func(key string, value any) bool) {
	it, err := r.txn.Get(TableRecords, "id_prefix", table, "")
	if err != nil {
		return
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		rec := raw.(*Record)
		if !fn(rec.Key, rec.Value) {
			return
		}
	}
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
	// memOwned is set once reader.mem is this transaction's private copy
	// of the store's memberships (made at the first membership change).
	memOwned bool
	changes  []trackedChange
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

// ownMemberships returns the transaction's private copy of the
// memberships, making it on first use.
func (w *WriteTxn) ownMemberships() *memberships {
	if !w.memOwned {
		w.mem = w.mem.copy()
		w.memOwned = true
	}
	return w.mem
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
	table := kindTable(r.Kind)
	var before any
	if old, ok := w.Resource(r.Kind, r.ID); ok {
		before = old
	}
	if err := w.txn.Insert(table, r); err != nil {
		return fmt.Errorf("store: put %s %s: %w", r.Kind, r.ID, err)
	}
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
	if err := w.txn.Delete(table, r); err != nil {
		return nil, fmt.Errorf("store: delete %s %s: %w", k, id, err)
	}
	w.track(changeKey{table: table, a: id}, r, nil)
	return removed, nil
}

// AddMember adds a membership. It reports false when it already existed.
func (w *WriteTxn) AddMember(m *Membership) (bool, error) {
	if w.IsMember(m.GroupID, m.MemberID) {
		return false, nil
	}
	stored := w.ownMemberships().insert(m)
	w.track(changeKey{table: TableMemberships, a: stored.GroupID, b: stored.MemberID}, nil, stored)
	return true, nil
}

// RemoveMember removes a membership. It reports false when there was none.
func (w *WriteTxn) RemoveMember(groupID, memberID string) (bool, error) {
	m, ok := w.mem.get(groupID, memberID)
	if !ok {
		return false, nil
	}
	w.ownMemberships().delete(m)
	w.track(changeKey{table: TableMemberships, a: m.GroupID, b: m.MemberID}, m, nil)
	return true, nil
}

// PutToken stores a token; a token with the same name is replaced.
func (w *WriteTxn) PutToken(t *Token) error {
	var before any
	if old, ok := w.Token(t.Name); ok {
		before = old
	}
	if err := w.txn.Insert(TableTokens, t); err != nil {
		return fmt.Errorf("store: put token %q: %w", t.Name, err)
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
	if err := w.txn.Delete(TableTokens, t); err != nil {
		return fmt.Errorf("store: delete token %q: %w", name, err)
	}
	w.track(changeKey{table: TableTokens, a: name}, t, nil)
	return nil
}

// PutRecord stores value under (table, key). The table must have a codec
// registered with the store.
func (w *WriteTxn) PutRecord(table, key string, value any) error {
	if _, ok := w.store.codecs[table]; !ok {
		return fmt.Errorf("store: no codec registered for record table %q", table)
	}
	var before any
	if old, err := w.txn.First(TableRecords, "id", table, key); err == nil && old != nil {
		before = old
	}
	rec := &Record{Table: table, Key: key, Value: value}
	if err := w.txn.Insert(TableRecords, rec); err != nil {
		return fmt.Errorf("store: put record %s/%s: %w", table, key, err)
	}
	w.track(changeKey{table: TableRecords, a: table, b: key}, before, rec)
	return nil
}

// DeleteRecord removes the record under (table, key), if any.
func (w *WriteTxn) DeleteRecord(table, key string) error {
	raw, err := w.txn.First(TableRecords, "id", table, key)
	if err != nil || raw == nil {
		return nil
	}
	if err := w.txn.Delete(TableRecords, raw); err != nil {
		return fmt.Errorf("store: delete record %s/%s: %w", table, key, err)
	}
	w.track(changeKey{table: TableRecords, a: table, b: key}, raw, nil)
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
