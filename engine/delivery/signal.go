package delivery

import (
	"sync"

	"github.com/scimd/scimd/scim/store"
)

// signal wakes waiters when a commit appends to the feed or changes a
// webhook endpoint. Unlike store.Changed, it ignores the many commits that
// concern neither (SCIM writes, audit-only transactions), so a burst of
// SCIM writes does not wake every delivery goroutine.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }

// wait returns a channel closed at the next relevant commit. Take it before
// reading the store, then wait on it: a commit in between closes it.
func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

func (s *signal) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.ch)
	s.ch = make(chan struct{})
}

// onCommit is the store hook: it runs on the committer goroutine after the
// commit's snapshot is published, so it only looks and signals.
func (s *signal) onCommit(info store.CommitInfo) {
	if len(info.Feed) > 0 {
		s.fire()
		return
	}
	for _, c := range info.Changes {
		if c.Table != store.TableRecords {
			continue
		}
		for _, obj := range []any{c.After, c.Before} {
			if r, ok := obj.(*store.Record); ok && r.Table == TableWebhooks {
				s.fire()
				return
			}
		}
	}
}
