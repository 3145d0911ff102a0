package console

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/review"
	"github.com/scimd/scimd/scim/store"
)

// chartDays is how many days the changes-per-hour chart covers.
const chartDays = 7

// maxBackfill bounds the audit events read to fill the chart at start.
const maxBackfill = 2_000_000

// hourlyChanges counts teammate changes per hour over the last chartDays
// days, and follows the audit log's head and its hash chain: a hook on the
// store's commits counts new events, and one background pass reads what
// was written before (the chart's backfill, and the chain's verification
// from the genesis hash).
type hourlyChanges struct {
	st  *store.Store
	now func() time.Time
	log *slog.Logger

	mu       sync.Mutex
	counts   map[int64]int // unix hour → changes
	hookMin  uint64        // first seq the hook saw (0: none yet)
	head     uint64        // newest seq seen
	plans    []uint64      // the newest policy.planned events, oldest first
	filled   bool          // the backfill finished
	truncate bool          // the backfill stopped at maxBackfill

	chain chainState
	wake  chan struct{}
}

// chainState is the audit chain's verification status.
type chainState struct {
	Verified uint64    // events verified from the genesis hash
	Head     uint64    // seq of the last verified event
	At       time.Time // when the last event was verified
	BrokenAt uint64
	Reason   string
	Err      string
}

func newHourlyChanges(st *store.Store, now func() time.Time, log *slog.Logger) *hourlyChanges {
	h := &hourlyChanges{st: st, now: now, log: log, counts: map[int64]int{}, wake: make(chan struct{}, 1)}
	st.OnCommit(h.onCommit)
	return h
}

func (h *hourlyChanges) onCommit(info store.CommitInfo) {
	if len(info.Events) == 0 {
		return
	}
	h.mu.Lock()
	if h.hookMin == 0 {
		h.hookMin = info.Events[0].Seq
	}
	for _, e := range info.Events {
		if review.IsChangeEvent(e.Type) {
			h.counts[e.Time.Unix()/3600]++
		}
		if e.Type == audit.TypePolicyPlanned {
			h.addPlan(e.Seq)
		}
		h.head = max(h.head, e.Seq)
	}
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// run backfills the chart, then verifies the chain and keeps verifying new
// events until ctx ends.
func (h *hourlyChanges) run(ctx context.Context) {
	h.backfill(ctx)
	v := audit.NewVerifier()
	after := uint64(0)
	for {
		var err error
		after, err = h.verify(ctx, v, after)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			h.mu.Lock()
			h.chain.Err = err.Error()
			h.mu.Unlock()
		}
		h.mu.Lock()
		broken := h.chain.BrokenAt != 0
		h.mu.Unlock()
		if broken {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-time.After(time.Minute):
		}
	}
}

// verify checks the events after seq after, and returns the last verified.
func (h *hourlyChanges) verify(ctx context.Context, v *audit.Verifier, after uint64) (uint64, error) {
	for {
		events, err := h.st.AuditEvents(ctx, store.AuditQuery{AfterSeq: after, Limit: 1000})
		if err != nil {
			return after, err
		}
		for _, e := range events {
			if err := v.Next(e); err != nil {
				var bl *audit.BrokenLinkError
				h.mu.Lock()
				if errors.As(err, &bl) {
					h.chain.BrokenAt, h.chain.Reason = bl.Seq, bl.Reason
				} else {
					h.chain.Err = err.Error()
				}
				h.mu.Unlock()
				return after, nil
			}
			after = e.Seq
		}
		h.mu.Lock()
		h.chain.Verified, h.chain.Head, h.chain.At, h.chain.Err = v.Count(), after, h.now(), ""
		h.head = max(h.head, after)
		h.mu.Unlock()
		if len(events) < 1000 {
			return after, nil
		}
	}
}

// backfill counts the changes of the last days written before the hook saw
// its first event.
func (h *hourlyChanges) backfill(ctx context.Context) {
	since := h.now().Add(-chartDays * 24 * time.Hour)
	type hit struct {
		seq  uint64
		hour int64
		plan bool
	}
	var hits []hit
	after, read := uint64(0), 0
	truncated := false
	for {
		events, err := h.st.AuditEvents(ctx, store.AuditQuery{AfterSeq: after, Since: since, Types: []string{"teammate", audit.TypePolicyPlanned}, Limit: 5000})
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("console: read the audit log for the changes chart", "err", err)
			}
			break
		}
		for _, e := range events {
			hits = append(hits, hit{e.Seq, e.Time.Unix() / 3600, e.Type == audit.TypePolicyPlanned})
			after = e.Seq
		}
		read += len(events)
		if len(events) < 5000 {
			break
		}
		if read >= maxBackfill {
			truncated = true
			break
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, x := range hits {
		switch {
		case h.hookMin != 0 && x.seq >= h.hookMin:
		case x.plan:
			h.addPlan(x.seq)
		default:
			h.counts[x.hour]++
		}
	}
	h.filled, h.truncate = true, truncated
}

// maxPlans is how many recent plans the policy page shows.
const maxPlans = 10

// addPlan remembers a policy.planned event; h.mu is held.
func (h *hourlyChanges) addPlan(seq uint64) {
	i, found := slices.BinarySearch(h.plans, seq)
	if found {
		return
	}
	h.plans = slices.Insert(h.plans, i, seq)
	if len(h.plans) > maxPlans {
		h.plans = slices.Delete(h.plans, 0, len(h.plans)-maxPlans)
	}
}

// recentPlans returns the sequence numbers of the newest plans (of the
// last chartDays days at start, and every one since), newest first.
func (h *hourlyChanges) recentPlans() []uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Clone(h.plans)
	slices.Reverse(out)
	return out
}

// series returns the changes per hour of the last chartDays days, oldest
// first, and the first hour's start.
func (h *hourlyChanges) series() ([]int, time.Time, bool) {
	now := h.now().Unix() / 3600
	first := now - chartDays*24 + 1
	out := make([]int, chartDays*24)
	h.mu.Lock()
	defer h.mu.Unlock()
	for hour, n := range h.counts {
		if hour < first {
			delete(h.counts, hour)
			continue
		}
		if i := hour - first; i < int64(len(out)) {
			out[i] = n
		}
	}
	return out, time.Unix(first*3600, 0).UTC(), h.filled
}

func (h *hourlyChanges) state() (chainState, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.chain, h.head
}
