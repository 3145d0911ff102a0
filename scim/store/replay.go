package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrReplayWhileWriting is returned by Replay when the store has written
// transactions of its own: a store either writes (a leader) or replays
// another process's commits (a standby), never both.
var ErrReplayWhileWriting = errors.New("store: cannot replay commits into a store that has written")

// Replay applies a transaction that another process committed to the same
// backend: the rows it wrote, in order, and the audit and feed heads after
// it. It is how a standby keeps its memory equal to the leader's without
// reloading. The changes become visible to readers at once (the backend
// already made them durable); commit hooks are not called. A later Write
// continues the audit chain and the feed from heads.
func (s *Store) Replay(ctx context.Context, rows []Row, heads LoadState) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.wrote {
		return ErrReplayWhileWriting
	}
	w := &WriteTxn{store: s, own: s.head}
	w.reader.t = &w.own
	dec := newRowDecoder()
	for _, row := range rows {
		if err := s.replayRow(w, dec, row); err != nil {
			return fmt.Errorf("store: replay %s/%s: %w", row.Table, row.Key, err)
		}
	}
	s.adopt(w)
	if heads.LastHash == "" {
		heads.LastHash = s.lastHash
	}
	if heads.LastSeq >= s.lastSeq {
		s.lastSeq, s.lastHash = heads.LastSeq, heads.LastHash
	}
	if heads.LastFeedSeq > s.lastFeed {
		s.lastFeed = heads.LastFeedSeq
	}
	s.commitNo++
	snap := s.pub
	s.durable.Store(&Snapshot{reader: reader{t: &snap}, Commit: s.commitNo, FeedSeq: s.lastFeed})
	return nil
}

// Heads returns the audit and feed heads of the store's memory.
func (s *Store) Heads() LoadState {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return LoadState{LastSeq: s.lastSeq, LastHash: s.lastHash, LastFeedSeq: s.lastFeed}
}

// replayRow applies one stored row to w's tables, without the checks a
// write makes (the writer made them).
func (s *Store) replayRow(w *WriteTxn, dec *rowDecoder, row Row) error {
	if row.Data != nil {
		obj, err := s.decodeRow(dec, row)
		if err != nil {
			return err
		}
		switch o := obj.(type) {
		case nil: // a record of a table nobody here reads
		case *Resource:
			w.ownResources(o.Kind).put(o)
		case *Membership:
			if old, ok := w.own.members.get(o.GroupID, o.MemberID); ok {
				w.ownMemberships().delete(old)
			}
			w.ownMemberships().insert(o)
		case *Token:
			w.ownTokens().put(o)
		case *Record:
			w.ownRecords().tree.Set(o)
		default:
			return fmt.Errorf("unexpected %T", obj)
		}
		return nil
	}
	switch row.Table {
	case TableUsers, TableGroups:
		kind := KindUser
		if row.Table == TableGroups {
			kind = KindGroup
		}
		if r, ok := w.own.resources(kind).get(row.Key); ok {
			w.ownResources(kind).delete(r)
		}
	case TableMemberships:
		// The key is group id + "/" + member id; ids may hold a "/".
		for i := strings.IndexByte(row.Key, '/'); i >= 0; {
			if m, ok := w.own.members.get(row.Key[:i], row.Key[i+1:]); ok {
				w.ownMemberships().delete(m)
				break
			}
			j := strings.IndexByte(row.Key[i+1:], '/')
			if j < 0 {
				break
			}
			i += j + 1
		}
	case TableTokens:
		if t, ok := w.own.tokens.byName.Get(&Token{Name: row.Key}); ok {
			w.ownTokens().delete(t)
		}
	case TableRecords:
		table, key, ok := strings.Cut(row.Key, "/")
		if ok {
			w.ownRecords().tree.Delete(&Record{Table: table, Key: key})
		}
	default:
		return fmt.Errorf("unknown table %q", row.Table)
	}
	return nil
}
