package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/scimd/scimd/audit"
)

// ErrTargetNotEmpty is returned by Copy when the target already holds
// state: Copy never merges two histories.
var ErrTargetNotEmpty = errors.New("store: the target already holds state")

// CopyReport says what Copy copied and verified.
type CopyReport struct {
	Objects, Events, FeedEntries int
	// AuditHead and AuditHash are the last audit event's sequence number
	// and hash, the same in both backends.
	AuditHead uint64
	AuditHash string
}

// copyChunk is how many objects, events or feed entries one target
// commit holds.
const copyChunk = 1000

// Copy copies every object, the whole audit chain and the whole change
// feed from one backend to an empty other, then verifies the target: the
// same objects byte for byte, an audit chain that verifies and ends at the
// source's head, and the same feed without a gap. Neither backend may be
// in use by a running scimd meanwhile.
func Copy(ctx context.Context, from, to Backend) (CopyReport, error) {
	var rep CopyReport
	var target int
	if _, err := to.Load(ctx, func(Row) error { target++; return nil }); err != nil {
		return rep, fmt.Errorf("read the target: %w", err)
	}
	if ev, err := to.AuditEvents(ctx, AuditQuery{Limit: 1}); err != nil {
		return rep, fmt.Errorf("read the target's audit log: %w", err)
	} else if target > 0 || len(ev) > 0 {
		return rep, fmt.Errorf("%w (%d objects, %d+ audit events): copy into an empty one", ErrTargetNotEmpty, target, len(ev))
	}
	var rows []Row
	src, err := from.Load(ctx, func(r Row) error { rows = append(rows, r); return nil })
	if err != nil {
		return rep, fmt.Errorf("read the source: %w", err)
	}
	for i := 0; i < len(rows); i += copyChunk {
		chunk := rows[i:min(i+copyChunk, len(rows))]
		if err := to.Commit(ctx, []*Batch{{Rows: chunk}}); err != nil {
			return rep, fmt.Errorf("write objects: %w", err)
		}
	}
	rep.Objects = len(rows)
	for after := uint64(0); ; {
		events, err := from.AuditEvents(ctx, AuditQuery{AfterSeq: after, Limit: copyChunk})
		if err != nil {
			return rep, fmt.Errorf("read the audit log after %d: %w", after, err)
		}
		if len(events) == 0 {
			break
		}
		if err := to.Commit(ctx, []*Batch{{Events: events}}); err != nil {
			return rep, fmt.Errorf("write audit events after %d: %w", after, err)
		}
		rep.Events += len(events)
		after = events[len(events)-1].Seq
	}
	for after := uint64(0); ; {
		feed, err := from.FeedEntries(ctx, after, copyChunk)
		if err != nil {
			return rep, fmt.Errorf("read the feed after %d: %w", after, err)
		}
		if len(feed) == 0 {
			break
		}
		if err := to.Commit(ctx, []*Batch{{Feed: feed}}); err != nil {
			return rep, fmt.Errorf("write feed entries after %d: %w", after, err)
		}
		rep.FeedEntries += len(feed)
		after = feed[len(feed)-1].Seq
	}
	if err := verifyCopy(ctx, rows, src, to, rep); err != nil {
		return rep, fmt.Errorf("verify the copy: %w", err)
	}
	rep.AuditHead, rep.AuditHash = src.LastSeq, src.LastHash
	return rep, nil
}

func sortRows(rows []Row) {
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Table != rows[j].Table {
			return rows[i].Table < rows[j].Table
		}
		return rows[i].Key < rows[j].Key
	})
}

// verifyCopy reads the target back and compares it with the source.
func verifyCopy(ctx context.Context, want []Row, src LoadState, to Backend, rep CopyReport) error {
	var got []Row
	dst, err := to.Load(ctx, func(r Row) error { got = append(got, r); return nil })
	if err != nil {
		return err
	}
	if len(got) != len(want) {
		return fmt.Errorf("the target holds %d objects, the source %d", len(got), len(want))
	}
	sortRows(want)
	sortRows(got)
	for i := range got {
		if got[i].Table != want[i].Table || got[i].Key != want[i].Key || !bytes.Equal(got[i].Data, want[i].Data) {
			return fmt.Errorf("object %s/%s differs", want[i].Table, want[i].Key)
		}
	}
	if dst.LastSeq != src.LastSeq || dst.LastHash != src.LastHash || dst.LastFeedSeq != src.LastFeedSeq {
		return fmt.Errorf("the target's heads (audit %d %s, feed %d) differ from the source's (audit %d %s, feed %d)",
			dst.LastSeq, dst.LastHash, dst.LastFeedSeq, src.LastSeq, src.LastHash, src.LastFeedSeq)
	}
	v := audit.NewVerifier()
	n := 0
	for after := uint64(0); ; {
		events, err := to.AuditEvents(ctx, AuditQuery{AfterSeq: after, Limit: copyChunk})
		if err != nil {
			return err
		}
		if len(events) == 0 {
			break
		}
		for _, e := range events {
			if err := v.Next(e); err != nil {
				return fmt.Errorf("the copied audit chain: %w", err)
			}
		}
		n += len(events)
		after = events[len(events)-1].Seq
	}
	if n != rep.Events {
		return fmt.Errorf("the target holds %d audit events, %d were copied", n, rep.Events)
	}
	n = 0
	for after := uint64(0); ; {
		feed, err := to.FeedEntries(ctx, after, copyChunk)
		if err != nil {
			return err
		}
		if len(feed) == 0 {
			break
		}
		for _, f := range feed {
			n++
			if f.Seq != after+1 {
				return fmt.Errorf("the copied feed has a gap before %d", f.Seq)
			}
			after = f.Seq
		}
	}
	if n != rep.FeedEntries {
		return fmt.Errorf("the target holds %d feed entries, %d were copied", n, rep.FeedEntries)
	}
	return nil
}
