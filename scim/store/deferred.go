package store

import (
	"context"
	"sync"
)

// Deferred collects the durability of the writes made with a context from
// DeferDurable: such a Write returns once its changes are applied in
// order (later writes see them) and queued for commit, without waiting for
// the fsync; Wait then waits for all of them. The queued commits share
// fsyncs (group commit), so a batch of writes, such as a SCIM bulk
// request, costs about one durable commit instead of one each. Nothing
// may be acknowledged to a client before Wait returns nil.
type Deferred struct {
	mu      sync.Mutex
	pending []chan error
}

type deferredKey struct{}

// DeferDurable returns a context whose writes are collected by the returned
// Deferred.
func DeferDurable(ctx context.Context) (context.Context, *Deferred) {
	d := &Deferred{}
	return context.WithValue(ctx, deferredKey{}, d), d
}

func deferredFrom(ctx context.Context) *Deferred {
	d, _ := ctx.Value(deferredKey{}).(*Deferred)
	return d
}

func (d *Deferred) add(ch chan error) {
	d.mu.Lock()
	d.pending = append(d.pending, ch)
	d.mu.Unlock()
}

// Wait waits until every collected write is durable and returns the first
// commit error, if any. Commits are made in order, so once Wait returns nil
// every collected write is on disk.
func (d *Deferred) Wait() error {
	d.mu.Lock()
	pending := d.pending
	d.pending = nil
	d.mu.Unlock()
	var first error
	for _, ch := range pending {
		if err := <-ch; err != nil && first == nil {
			first = err
		}
	}
	return first
}
