package reconcile

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/scimd/scimd/scim/store"
)

// Where held changes live. TableChanges holds only the open (pending)
// ones, which the reconciler reads on every batch; a decided change moves
// to TableDecidedChanges, and is deleted from there after the retention
// period. A teammate deferred behind an open change is one small record
// in TableDeferred (key "changeID/userID"), so deferring a teammate costs
// the same whatever the size of the change it waits behind.
const (
	TableDecidedChanges = "changes.decided"
	TableDeferred       = "changes.deferred"
)

// DefaultDecidedRetention is how long a decided change stays listed
// (scimd changes list) after its decision. Its approval or rejection stays
// in the audit log.
const DefaultDecidedRetention = 30 * 24 * time.Hour

// Deferral records that a teammate touched while a change was pending
// waits behind it, to be evaluated again when it is decided.
type Deferral struct {
	Change string `json:"change"`
	User   string `json:"user"`
}

func deferralKey(changeID, userID string) string { return changeID + "/" + userID }

// deferUsers records users as waiting behind the open change cid, each at
// most once. It writes one small record per newly deferred user and never
// rewrites the change itself.
func deferUsers(tx *store.WriteTxn, cid string, users []string) error {
	if _, open := tx.Record(TableChanges, cid); !open {
		return nil
	}
	for _, u := range users {
		key := deferralKey(cid, u)
		if _, ok := tx.Record(TableDeferred, key); ok {
			continue
		}
		if err := tx.PutRecord(TableDeferred, key, &Deferral{Change: cid, User: u}); err != nil {
			return err
		}
	}
	return nil
}

// recordReader is what both a snapshot and a write transaction read
// records with.
type recordReader interface {
	Record(table, key string) (any, bool)
	RecordsWithPrefix(table, prefix string, fn func(key string, value any) bool)
}

// deferredOf returns c with the users deferred behind it (older versions
// kept them in the change itself) merged into Deferred.
func deferredOf(r recordReader, c PendingChange) PendingChange {
	var users []string
	r.RecordsWithPrefix(TableDeferred, c.ID+"/", func(_ string, v any) bool {
		users = append(users, v.(*Deferral).User)
		return true
	})
	if len(users) > 0 {
		c.Deferred = mergeIDs(c.Deferred, users)
	}
	return c
}

// lookupChange returns the change id, open or decided, with its deferred
// users.
func lookupChange(r recordReader, id string) (PendingChange, bool) {
	for _, table := range []string{TableChanges, TableDecidedChanges} {
		if v, ok := r.Record(table, id); ok {
			return deferredOf(r, *v.(*PendingChange)), true
		}
	}
	return PendingChange{}, false
}

// archiveChange moves the decided change c out of the open changes, with
// the users deferred behind it, and deletes decided changes older than
// retention.
func archiveChange(tx *store.WriteTxn, c *PendingChange, retention time.Duration) error {
	var keys []string
	tx.RecordsWithPrefix(TableDeferred, c.ID+"/", func(key string, _ any) bool {
		keys = append(keys, key)
		return true
	})
	for _, k := range keys {
		if err := tx.DeleteRecord(TableDeferred, k); err != nil {
			return err
		}
	}
	if err := tx.DeleteRecord(TableChanges, c.ID); err != nil {
		return err
	}
	if err := tx.PutRecord(TableDecidedChanges, c.ID, c); err != nil {
		return err
	}
	return pruneDecided(tx, tx.Now().Add(-retention))
}

// pruneDecided deletes the decided changes decided before cutoff.
func pruneDecided(tx *store.WriteTxn, cutoff time.Time) error {
	var old []string
	tx.Records(TableDecidedChanges, func(id string, v any) bool {
		if v.(*PendingChange).Decided.Before(cutoff) {
			old = append(old, id)
		}
		return true
	})
	for _, id := range old {
		if err := tx.DeleteRecord(TableDecidedChanges, id); err != nil {
			return err
		}
	}
	return nil
}

// tidyChanges moves decided changes that an older version left among the
// open ones to the decided table, and prunes decided changes past
// retention. It runs once at start.
func tidyChanges(tx *store.WriteTxn, retention time.Duration) error {
	var decided []*PendingChange
	tx.Records(TableChanges, func(_ string, v any) bool {
		if c := v.(*PendingChange); c.State != ChangePending {
			decided = append(decided, c)
		}
		return true
	})
	for _, c := range decided {
		if err := archiveChange(tx, c, retention); err != nil {
			return err
		}
	}
	return pruneDecided(tx, tx.Now().Add(-retention))
}

// blockedIndex caches which user each open change holds. Changes are
// immutable records replaced on every update, so the index is rebuilt
// only when the set of open change records differs from the last call:
// a batch pays for the number of open changes, not for their size.
type blockedIndex struct {
	mu      sync.Mutex
	changes []*PendingChange
	users   map[string]string // user id → change id
}

// get returns user id → open change id for snap, including the rejected
// changes that still stick under the active revision (see
// PendingChange.sticks). The map is shared: do not modify it.
func (b *blockedIndex) get(snap *store.Snapshot, revision string) map[string]string {
	var open []*PendingChange
	snap.Records(TableChanges, func(_ string, v any) bool {
		if c := v.(*PendingChange); c.State == ChangePending {
			open = append(open, c)
		}
		return true
	})
	snap.Records(TableDecidedChanges, func(_ string, v any) bool {
		if c := v.(*PendingChange); c.sticks(revision) {
			open = append(open, c)
		}
		return true
	})
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.users != nil && slices.Equal(open, b.changes) {
		return b.users
	}
	users := map[string]string{}
	for _, c := range open {
		for _, d := range c.Changes {
			users[d.ID] = c.ID
		}
	}
	b.changes, b.users = open, users
	return users
}

// recordApprovalOutcomes stores, on each approved change a trigger of batch
// applies, how many of the evaluations it caused changed a teammate, left
// one as it was, or failed.
func recordApprovalOutcomes(tx *store.WriteTxn, batch []trigger, applied []*evaluation) error {
	for ti, t := range batch {
		if t.changeID == "" {
			continue
		}
		v, ok := tx.Record(TableDecidedChanges, t.changeID)
		if !ok {
			continue
		}
		c := *v.(*PendingChange)
		o := ApprovalOutcome{At: tx.Now()}
		for _, ev := range applied {
			if !slices.Contains(ev.triggers, ti) {
				continue
			}
			switch {
			case ev.err != nil:
				o.Errors++
			case ev.skipped || ev.next == ev.cur || ev.diff == nil:
				o.Unchanged++
			default:
				o.Applied++
			}
		}
		c.Outcome = &o
		if err := tx.PutRecord(TableDecidedChanges, c.ID, &c); err != nil {
			return err
		}
	}
	return nil
}

// WaitApplied waits until the approved change id has been applied, or ctx
// ends, and returns it as it then is.
func (r *Reconciler) WaitApplied(ctx context.Context, id string) (PendingChange, bool) {
	for {
		c, ok := r.Change(id)
		if !ok || c.Outcome != nil || c.State != ChangeApproved {
			return c, ok
		}
		select {
		case <-ctx.Done():
			return c, ok
		case <-time.After(10 * time.Millisecond):
		}
	}
}
