package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/scimd/scimd/audit"
)

type pendingCommit struct {
	info  CommitInfo
	snap  *tables // what readers see once the commit is durable
	batch *Batch  // encoded by the writer before it published anything
	errCh chan error
}

// Write runs fn in a write transaction. When fn returns nil, the
// transaction's changes and audit events are committed durably before Write
// returns; when fn returns an error nothing changes. Transactions that
// change nothing return at once.
func (s *Store) Write(ctx context.Context, fn func(*WriteTxn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if errp := s.failed.Load(); errp != nil {
		return *errp
	}
	s.writers.Add(1)
	defer s.writers.Add(-1)
	s.writeMu.Lock()
	if s.closed {
		s.writeMu.Unlock()
		return ErrClosed
	}
	w := &WriteTxn{store: s, now: s.clock().UTC().Truncate(time.Microsecond), own: s.head}
	w.reader.t = &w.own
	// On every early return the transaction's private copies of the tables
	// it changed are dropped: the store keeps its head.
	if err := fn(w); err != nil {
		s.writeMu.Unlock()
		return err
	}
	changes := w.netChanges()
	if len(changes) == 0 && len(w.events) == 0 && len(w.feed) == 0 {
		s.writeMu.Unlock()
		return nil
	}
	events := make([]audit.Event, len(w.events))
	hash := s.lastHash
	for i, e := range w.events {
		sealed, err := audit.Seal(e, s.lastSeq+uint64(i)+1, hash)
		if err != nil { // the chain's head stays where it was
			s.writeMu.Unlock()
			return err
		}
		events[i] = sealed
		hash = sealed.Hash
	}
	feed := w.feed
	for i := range feed {
		feed[i].Seq = s.lastFeed + uint64(i) + 1
	}
	info := CommitInfo{Commit: s.commitNo + 1, Events: events, Feed: feed, FeedSeq: s.lastFeed + uint64(len(feed)), Changes: changes}
	// Everything is encoded before anything is published: a value that
	// cannot be encoded fails its own write and leaves the store as it was.
	batch, err := encodeBatch(info)
	if err != nil {
		s.writeMu.Unlock()
		return err
	}
	s.lastHash = hash
	s.lastSeq += uint64(len(events))
	s.lastFeed = info.FeedSeq
	s.commitNo = info.Commit
	s.wrote = true
	s.adopt(w)
	snap := s.pub
	p := &pendingCommit{info: info, snap: &snap, batch: batch, errCh: make(chan error, 1)}
	s.pending <- p
	s.writeMu.Unlock()
	if d := deferredFrom(ctx); d != nil {
		d.add(p.errCh)
		return nil
	}
	return <-p.errCh
}

// adopt makes the tables w changed the writer's head and publishes a copy
// of each for snapshots. The caller holds writeMu.
func (s *Store) adopt(w *WriteTxn) {
	if w.owned.users {
		s.head.users = w.own.users
		s.pub.users = s.head.users.copy()
	}
	if w.owned.groups {
		s.head.groups = w.own.groups
		s.pub.groups = s.head.groups.copy()
	}
	if w.owned.members {
		s.head.members = w.own.members
		s.pub.members = s.head.members.copy()
	}
	if w.owned.tokens {
		s.head.tokens = w.own.tokens
		s.pub.tokens = s.head.tokens.copy()
	}
	if w.owned.records {
		s.head.records = w.own.records
		s.pub.records = s.head.records.copy()
	}
}

func (s *Store) commitLoop() {
	defer close(s.done)
	var timer *time.Timer
	for first := range s.pending {
		group := []*pendingCommit{first}
	drain:
		for len(group) < s.maxBatch {
			select {
			case p, ok := <-s.pending:
				if !ok {
					break drain
				}
				group = append(group, p)
			default:
				break drain
			}
		}
		// Other writers are building transactions: give them a moment to
		// join this commit (group commit under load), but never longer
		// than commitDelay, and not at all for a lone writer.
		if s.commitDelay > 0 && len(group) < s.maxBatch && s.writers.Load() > int64(len(group)) {
			if timer == nil {
				timer = time.NewTimer(s.commitDelay)
			} else {
				timer.Reset(s.commitDelay)
			}
		wait:
			for len(group) < s.maxBatch && s.writers.Load() > int64(len(group)) {
				select {
				case p, ok := <-s.pending:
					if !ok {
						break wait
					}
					group = append(group, p)
				case <-timer.C:
					break wait
				}
			}
			timer.Stop()
		}
		s.commitGroup(group)
	}
}

func (s *Store) commitGroup(group []*pendingCommit) {
	if errp := s.failed.Load(); errp != nil {
		for _, p := range group {
			p.errCh <- *errp
		}
		return
	}
	batches := make([]*Batch, len(group))
	for i, p := range group {
		batches[i] = p.batch
	}
	start := time.Now()
	err := s.backend.Commit(context.Background(), batches)
	s.metrics.commitTime.Observe(time.Since(start).Seconds())
	if err != nil {
		// Memory is now ahead of disk: refuse all further writes rather than
		// acknowledge anything that might not be durable. Readers keep the
		// last durable snapshot.
		err = fmt.Errorf("%w: commit: %w", ErrUnavailable, err)
		s.failed.Store(&err)
		s.log.Error("store commit failed; writes disabled until restart", "err", err)
		for _, p := range group {
			p.errCh <- err
		}
		return
	}
	s.metrics.commits.Inc()
	s.metrics.transactions.Add(float64(len(group)))
	s.metrics.batchSize.Observe(float64(len(group)))
	last := group[len(group)-1]
	s.durable.Store(&Snapshot{reader: reader{t: last.snap}, Commit: last.info.Commit, FeedSeq: last.info.FeedSeq})
	s.hooksMu.RLock()
	hooks := s.hooks
	s.hooksMu.RUnlock()
	for _, p := range group {
		for _, h := range hooks {
			h(p.info)
		}
		p.errCh <- nil
	}
}

func encodeBatch(info CommitInfo) (*Batch, error) {
	b := &Batch{Events: info.Events, Feed: info.Feed, Rows: make([]Row, 0, len(info.Changes)),
		EventData: make([][]byte, len(info.Events)), FeedData: make([][]byte, len(info.Feed))}
	for i, e := range info.Events {
		data, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("store: encode audit event %d: %w", e.Seq, err)
		}
		b.EventData[i] = data
	}
	for i, f := range info.Feed {
		data, err := json.Marshal(f)
		if err != nil {
			return nil, fmt.Errorf("store: encode feed entry %d: %w", f.Seq, err)
		}
		b.FeedData[i] = data
	}
	for _, c := range info.Changes {
		obj := c.After
		if obj == nil {
			obj = c.Before
		}
		key, data, err := encodeObject(c.Table, obj)
		if err != nil {
			return nil, err
		}
		if c.After == nil {
			data = nil
		}
		b.Rows = append(b.Rows, Row{Table: c.Table, Key: key, Data: data})
	}
	return b, nil
}

func encodeObject(table string, obj any) (string, []byte, error) {
	var key string
	var v any = obj
	switch o := obj.(type) {
	case *Resource:
		key = o.ID
	case *Membership:
		key = o.GroupID + "/" + o.MemberID
	case *Token:
		key = o.Name
	case *Record:
		key = o.Table + "/" + o.Key
		raw, err := json.Marshal(o.Value)
		if err != nil {
			return "", nil, fmt.Errorf("store: encode record %s: %w", key, err)
		}
		v = recordEnvelope{Table: o.Table, Key: o.Key, Value: raw}
	default:
		return "", nil, fmt.Errorf("store: cannot persist %T in %s", obj, table)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return "", nil, fmt.Errorf("store: encode %s/%s: %w", table, key, err)
	}
	return key, data, nil
}
