package reconcile

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Retry backoff of teammates whose evaluation failed.
const (
	minRetryBackoff = time.Second
	maxRetryBackoff = time.Minute
)

// Backlog is the reconciler's outstanding work: teammates whose latest
// evaluation failed or timed out (they keep their previous decision), and
// the oldest trigger not yet decided, queued, in flight or failing.
type Backlog struct {
	// Failing counts teammates whose latest evaluation failed.
	Failing int `json:"failing"`
	// Queued counts triggers waiting for the reconciler.
	Queued int `json:"queued"`
	// Oldest is when the oldest outstanding trigger was committed (zero
	// when there is none).
	Oldest time.Time `json:"oldest,omitzero"`
}

// Age is how long the oldest outstanding trigger has waited.
func (b Backlog) Age(now time.Time) time.Duration {
	if b.Oldest.IsZero() {
		return 0
	}
	return now.Sub(b.Oldest)
}

// Backlog reports the reconciler's outstanding work.
func (r *Reconciler) Backlog() Backlog {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := Backlog{Failing: len(r.failing), Queued: len(r.queue), Oldest: r.inflight}
	older := func(t time.Time) {
		if !t.IsZero() && (b.Oldest.IsZero() || t.Before(b.Oldest)) {
			b.Oldest = t
		}
	}
	for _, t := range r.queue {
		older(t.committedAt)
	}
	for _, since := range r.failing {
		older(since)
	}
	return b
}

// backlogFuncs registers the gauges read from the backlog at scrape time.
func (m *metrics) backlogFuncs(reg prometheus.Registerer, backlog func() Backlog) {
	if reg == nil {
		return
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "scimd_reconcile_backlog",
			Help: "Teammates whose latest policy evaluation failed or timed out; they keep their previous decision until it succeeds."},
			func() float64 { return float64(backlog().Failing) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "scimd_reconcile_oldest_pending_seconds",
			Help: "Age of the oldest trigger (SCIM write, policy activation) whose decisions are not yet applied: queued, being evaluated, or failing."},
			func() float64 { return backlog().Age(time.Now()).Seconds() }),
	)
}

// trackFailures updates the failing teammates after a batch was applied
// and schedules their retry. Held teammates are left as they are.
func (r *Reconciler) trackFailures(batch []trigger, evals []*evaluation, held map[int][]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range evals {
		if isHeld(ev, held) {
			continue
		}
		if ev.err == nil {
			delete(r.failing, ev.id)
			continue
		}
		if _, ok := r.failing[ev.id]; !ok {
			since := time.Now()
			for _, ti := range ev.triggers {
				if c := batch[ti].committedAt; !c.IsZero() && c.Before(since) {
					since = c
				}
			}
			r.failing[ev.id] = since
		}
	}
	if len(r.failing) == 0 {
		r.retryBackoff = 0
		return
	}
	if !r.retryAt.IsZero() {
		return // a retry is already scheduled
	}
	r.retryBackoff = min(max(2*r.retryBackoff, minRetryBackoff), maxRetryBackoff)
	r.retryAt = time.Now().Add(r.retryBackoff)
	ctx := r.runCtx
	time.AfterFunc(r.retryBackoff, func() {
		r.mu.Lock()
		r.retryAt = time.Time{}
		ids := make([]string, 0, len(r.failing))
		for id := range r.failing {
			ids = append(ids, id)
		}
		r.mu.Unlock()
		if ctx.Err() != nil || len(ids) == 0 {
			return
		}
		sort.Strings(ids)
		r.enqueue(trigger{cause: Cause{Kind: "retry", Actor: "reconciler"}, users: ids, committedAt: time.Now()})
	})
}

func isHeld(ev *evaluation, held map[int][]string) bool {
	for _, ti := range ev.triggers {
		if _, ok := held[ti]; ok {
			return true
		}
	}
	return false
}

// oldestCommit is the earliest commit time of a batch's triggers.
func oldestCommit(batch []trigger) time.Time {
	var oldest time.Time
	for _, t := range batch {
		if !t.committedAt.IsZero() && (oldest.IsZero() || t.committedAt.Before(oldest)) {
			oldest = t.committedAt
		}
	}
	return oldest
}
