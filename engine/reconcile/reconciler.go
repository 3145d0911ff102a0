package reconcile

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/scim/store"
)

// PolicySource gives the active policy set (nil while none is active).
type PolicySource interface {
	Active() *policy.Set
}

// Options configure a Reconciler.
type Options struct {
	Store  *store.Store
	Policy PolicySource
	Logger *slog.Logger
	// Registerer receives the reconciler's metrics when not nil.
	Registerer prometheus.Registerer
	// Threshold is the mass-change guard (default DefaultThreshold).
	Threshold *Threshold
	// Workers evaluate large batches in parallel (default GOMAXPROCS).
	Workers int
	// EvalTimeout bounds each teammate's evaluation (default
	// DefaultEvalTimeout). A teammate whose evaluation times out or fails
	// keeps its current decision, is marked (Teammate.DecisionError) and is
	// retried with backoff.
	EvalTimeout time.Duration
	// DecidedRetention is how long decided changes stay listed (default
	// DefaultDecidedRetention).
	DecidedRetention time.Duration
}

// Reconciler applies policy decisions to teammates. Create it with New,
// register it with the store (New does) and run it with Run.
type Reconciler struct {
	store     *store.Store
	policy    PolicySource
	log       *slog.Logger
	threshold Threshold
	workers   int
	metrics   *metrics
	// evalTimeout bounds one evaluation (see Options.EvalTimeout).
	evalTimeout time.Duration

	mu       sync.Mutex
	queue    []trigger
	wake     chan struct{}
	enqueued uint64
	done     uint64
	idle     *sync.Cond
	// inflight is when the oldest trigger of the batch being processed
	// was committed (zero while idle).
	inflight time.Time
	// failing maps each teammate whose latest evaluation failed to when
	// the first trigger it could not be decided for was committed.
	failing map[string]time.Time
	// retryAt is when the next retry of the failing teammates runs (zero
	// when none is scheduled); retryBackoff the delay after the next
	// failure.
	retryAt      time.Time
	retryBackoff time.Duration
	runCtx       context.Context

	decMu     sync.RWMutex
	decisions map[string]lastDecision // latest decision per user id

	retention time.Duration // of decided changes
	blocked   blockedIndex  // users held by open (or sticking rejected) changes
	// liveRoles is the role order of the last revision whose decisions
	// were applied to everyone (nil before the first): the guard judges
	// demotions by it, not by the order of the revision being applied.
	liveRoles []string

	shadow shadowState
}

// New returns a Reconciler and subscribes it to the store's commits.
func New(opts Options) *Reconciler {
	r := &Reconciler{
		store:     opts.Store,
		policy:    opts.Policy,
		log:       opts.Logger,
		threshold: DefaultThreshold.WithDefaults(),
		workers:   opts.Workers,
		metrics:   newMetrics(opts.Registerer),
		wake:      make(chan struct{}, 1),
		decisions: map[string]lastDecision{},
		failing:   map[string]time.Time{},
		runCtx:    context.Background(),

		evalTimeout: opts.EvalTimeout,
	}
	if r.evalTimeout <= 0 {
		r.evalTimeout = DefaultEvalTimeout
	}
	r.metrics.backlogFuncs(opts.Registerer, r.Backlog)
	if r.log == nil {
		r.log = slog.Default()
	}
	if opts.Threshold != nil {
		r.threshold = opts.Threshold.WithDefaults()
	}
	r.retention = DefaultDecidedRetention
	if opts.DecidedRetention > 0 {
		r.retention = opts.DecidedRetention
	}
	r.idle = sync.NewCond(&r.mu)
	opts.Store.OnCommit(r.onCommit)
	return r
}

// Run processes triggers until ctx ends. It starts with a full
// reconciliation, which also resumes any work a crash interrupted between
// a SCIM commit and its role update.
func (r *Reconciler) Run(ctx context.Context) {
	r.mu.Lock()
	r.runCtx = ctx
	r.mu.Unlock()
	if err := r.store.Write(ctx, func(tx *store.WriteTxn) error { return tidyChanges(tx, r.retention) }); err != nil {
		r.log.Error("archive decided changes", "err", err)
	}
	r.enqueue(trigger{cause: Cause{Kind: "startup"}, all: true, committedAt: time.Now()})
	for {
		select {
		case <-ctx.Done():
			r.mu.Lock()
			r.done = r.enqueued
			r.idle.Broadcast()
			r.mu.Unlock()
			return
		case <-r.wake:
		}
		r.mu.Lock()
		batch := r.queue
		r.queue = nil
		r.metrics.queueDepth.Set(0)
		if len(batch) > 0 {
			r.inflight = oldestCommit(batch)
		}
		r.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		if err := r.process(ctx, batch); err != nil {
			r.log.Error("reconcile", "err", err)
		}
		r.mu.Lock()
		r.inflight = time.Time{}
		r.done += uint64(len(batch))
		r.idle.Broadcast()
		r.mu.Unlock()
	}
}

// WaitIdle blocks until every trigger enqueued before the call has been
// processed, or ctx ends.
func (r *Reconciler) WaitIdle(ctx context.Context) error {
	r.mu.Lock()
	target := r.enqueued
	r.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.idle.Broadcast()
		r.mu.Unlock()
	})
	defer stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.done < target {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.idle.Wait()
	}
	return nil
}

// PolicyActivated re-evaluates every teammate against a newly activated
// policy set. Wire it to the policy manager's activation callback.
func (r *Reconciler) PolicyActivated(_ context.Context, set *policy.Set) {
	r.enqueue(trigger{cause: Cause{Kind: "policy", Revision: set.Revision(), Actor: "policy"}, all: true, committedAt: time.Now()})
}

func (r *Reconciler) process(ctx context.Context, batch []trigger) error {
	set := r.policy.Active()
	if set == nil {
		// The startup pass usually runs before the first policy is
		// loaded, which then re-evaluates everyone: nothing to warn about.
		// Writes arriving while no policy is active (the first one was
		// refused) are.
		level := slog.LevelWarn
		if onlyKind(batch, "startup") {
			level = slog.LevelInfo
		}
		r.log.Log(ctx, level, "no active policy: teammates left unchanged until one is activated", "triggers", len(batch))
		return nil
	}
	for _, t := range batch {
		if t.shadowPass {
			r.shadowPass(ctx, set, t.cause)
		}
	}
	snap := r.store.Read()

	// Which users, and which triggers touched each.
	touched, full := touchedUsers(snap, batch)
	if full {
		r.log.Info("evaluating every teammate", "revision", set.Revision(), "teammates", len(touched))
	}

	// Users held by an open pending change, or by a rejected change of
	// this revision, wait behind it.
	blocked := r.blockedUsers(snap, set.Revision())
	deferred := map[string][]string{} // change id → users
	users := touched[:0:0]
	if len(blocked) == 0 {
		users = touched
	} else {
		for _, t := range touched {
			if cid, ok := blocked[t.id]; ok && !anyApproval(batch, t.triggers, cid) {
				deferred[cid] = append(deferred[cid], t.id)
				continue
			}
			users = append(users, t)
		}
	}

	live := r.liveOrder(set)
	evals := r.evaluate(ctx, set, snap, users, batch, live)

	// The guard, per trigger. Counting teammates is a scan, so it is done
	// only when some trigger demotes more than the absolute threshold.
	tallies := map[int]*guardTally{}
	deciding := set.Roles()
	for _, ev := range evals {
		if ev.diff == nil {
			continue
		}
		esc, excl := r.threshold.isEscalation(*ev.diff, live, deciding), isNewExclusion(*ev.diff)
		if esc && onlyFullPasses(batch, ev.triggers) && (ev.cur == nil || sameContent(ev.cur.Revision, set.Revision())) {
			// A full pass under the revision that already decided this
			// teammate (a restart) resumes work SCIM writes left
			// unfinished, each judged as its own trigger: only a grant
			// that a new revision makes escalates here.
			esc = false
		}
		for _, ti := range ev.triggers {
			tl := tallies[ti]
			if tl == nil {
				tl = &guardTally{}
				tallies[ti] = tl
			}
			if ev.diff.Demotion {
				tl.demotions++
			}
			if esc {
				tl.escalations++
			}
			if excl {
				tl.exclusions++
			}
		}
	}
	total := -1
	countTeammates := func() int {
		if total < 0 {
			total = 0
			snap.Records(TableTeammates, func(string, any) bool { total++; return true })
		}
		return total
	}
	held := map[int][]string{}
	for ti, tl := range tallies {
		if batch[ti].bypassGuard {
			continue
		}
		if why := r.threshold.holdReasons(*tl, countTeammates); len(why) > 0 {
			held[ti] = why
		}
	}
	if len(held) > 0 {
		countTeammates()
	}
	if err := r.apply(ctx, set, batch, evals, held, tallies, total, deferred, full); err != nil {
		return err
	}
	r.noteLiveOrder(set, batch, held)
	return nil
}
