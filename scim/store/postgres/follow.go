package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scimd/scimd/scim/store"
)

// ErrJournalGap is returned when the journal lacks an entry a follower
// needs: it must reload the state instead.
var ErrJournalGap = errors.New("postgres: journal entry missing")

// Applied describes one journal entry a follower applied.
type Applied struct {
	Seq uint64
	// Committed is when the leader wrote the entry (its clock).
	Committed time.Time
}

// CatchUp replays into st every journal entry after the last one this
// backend wrote or applied, in order, and returns how many it applied.
// onApplied, when not nil, is called after each.
func (b *Backend) CatchUp(ctx context.Context, st *store.Store, onApplied func(Applied)) (int, error) {
	total := 0
	for {
		after := b.journalSeq.Load()
		rows, err := b.pool.Query(ctx, `SELECT seq, at, rows FROM journal WHERE seq > $1 ORDER BY seq LIMIT 500`, int64(after))
		if err != nil {
			return total, fmt.Errorf("postgres: read journal: %w", err)
		}
		type entry struct {
			seq  int64
			at   time.Time
			data []byte
		}
		var entries []entry
		var e entry
		_, err = pgx.ForEachRow(rows, []any{&e.seq, &e.at, &e.data}, func() error {
			entries = append(entries, e)
			e.data = nil
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("postgres: read journal: %w", err)
		}
		for _, e := range entries {
			if uint64(e.seq) != b.journalSeq.Load()+1 {
				return total, fmt.Errorf("%w: next is %d after %d", ErrJournalGap, e.seq, b.journalSeq.Load())
			}
			heads, changed, err := DecodeEntry(e.data)
			if err != nil {
				return total, fmt.Errorf("journal entry %d: %w", e.seq, err)
			}
			if err := st.Replay(ctx, changed, heads); err != nil {
				return total, fmt.Errorf("journal entry %d: %w", e.seq, err)
			}
			b.journalSeq.Store(uint64(e.seq))
			b.heads = heads
			total++
			if onApplied != nil {
				onApplied(Applied{Seq: uint64(e.seq), Committed: e.at})
			}
		}
		if len(entries) < 500 {
			return total, nil
		}
	}
}

// Follow keeps st equal to the database until ctx ends: it listens for
// commit notifications on a connection of its own and catches up on each,
// and at least every poll in case a notification was missed (or the
// connection was lost and is being re-established). It returns ctx's
// error, or the first error that replaying cannot recover from.
func (b *Backend) Follow(ctx context.Context, st *store.Store, poll time.Duration, onApplied func(Applied)) error {
	for ctx.Err() == nil {
		err := b.follow(ctx, st, poll, onApplied)
		if errors.Is(err, ErrJournalGap) || errors.Is(err, store.ErrReplayWhileWriting) {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(poll):
		}
	}
	return ctx.Err()
}

func (b *Backend) follow(ctx context.Context, st *store.Store, poll time.Duration, onApplied func(Applied)) error {
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("postgres: listen: %w", err)
	}
	defer func() {
		// A connection that still listens must not go back to the pool.
		if !conn.Conn().IsClosed() {
			_ = conn.Conn().Close(context.Background())
		}
	}()
	for {
		if _, err := b.CatchUp(ctx, st, onApplied); err != nil {
			return err
		}
		wait, cancel := context.WithTimeout(ctx, poll)
		_, err := conn.Conn().WaitForNotification(wait)
		cancel()
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("postgres: wait for notification: %w", err)
		}
	}
}

// PruneJournal deletes the journal entries written before before, always
// keeping the newest (the next commit continues its sequence), and returns
// how many it deleted. A standby that still needed a deleted entry finds a
// gap (ErrJournalGap) and is restarted with a full load.
func (b *Backend) PruneJournal(ctx context.Context, before time.Time) (int64, error) {
	tag, err := b.pool.Exec(ctx, `DELETE FROM journal WHERE at < $1 AND seq < (SELECT max(seq) FROM journal)`, before)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune journal: %w", err)
	}
	return tag.RowsAffected(), nil
}
