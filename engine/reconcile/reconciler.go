package reconcile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/scim/store"

	"github.com/scimd/scimd/internal/workpool"
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

// lastDecision is the in-memory record of a user's latest applied
// decision, used to skip re-evaluating unchanged inputs and to show why a
// teammate has its role.
type lastDecision struct {
	input      decidedInput
	Revision   string
	DecisionID string
	Reasons    []string
	At         time.Time
}

// trigger is one unit of work: a SCIM write, a policy activation, …
type trigger struct {
	cause       Cause
	users       []string
	all         bool
	bypassGuard bool
	// changeID is the pending change an approval applies.
	changeID    string
	committedAt time.Time
	// manualSeq links a drift revert to the manual change's audit event.
	manualSeq map[string]uint64
	// shadowPass compares a new shadow policy with the live one for
	// every teammate; it changes nothing.
	shadowPass bool
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

func (r *Reconciler) enqueue(t trigger) {
	r.mu.Lock()
	r.queue = append(r.queue, t)
	r.enqueued++
	r.metrics.queueDepth.Set(float64(len(r.queue)))
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// PolicyActivated re-evaluates every teammate against a newly activated
// policy set. Wire it to the policy manager's activation callback.
func (r *Reconciler) PolicyActivated(_ context.Context, set *policy.Set) {
	r.enqueue(trigger{cause: Cause{Kind: "policy", Revision: set.Revision(), Actor: "policy"}, all: true, committedAt: time.Now()})
}

// onCommit runs on the store's committer after each durable write: it
// works out which users the write affects and enqueues them.
func (r *Reconciler) onCommit(ci store.CommitInfo) {
	users := map[string]bool{}
	manual := map[string]uint64{}
	var renames []GroupRename
	var snap *store.Snapshot
	for _, c := range ci.Changes {
		switch c.Table {
		case store.TableUsers:
			users[resourceID(c)] = true
		case store.TableMemberships:
			m := c.After
			if m == nil {
				m = c.Before
			}
			if mm := m.(*store.Membership); mm.MemberKind != store.KindGroup {
				users[mm.MemberID] = true
			}
		case store.TableGroups:
			before, _ := c.Before.(*store.Resource)
			after, _ := c.After.(*store.Resource)
			if before != nil && after != nil && (before.Name != after.Name || before.ExternalID != after.ExternalID) {
				if before.Name != after.Name {
					renames = append(renames, GroupRename{ID: after.ID, From: before.Name, To: after.Name})
				}
				if snap == nil {
					snap = r.store.Read()
				}
				for _, m := range snap.Members(after.ID) {
					users[m.MemberID] = true
				}
			}
		case store.TableRecords:
			after, _ := c.After.(*store.Record)
			if after == nil || after.Table != TableTeammates {
				continue
			}
			if t := after.Value.(*Teammate); t.Manual != nil {
				users[t.ID] = true
				manual[t.ID] = 0
			}
		}
	}
	if len(users) == 0 {
		return
	}
	cause := Cause{Kind: "scim", GroupsRenamed: renames}
	if len(renames) > 0 {
		cause.Summary = renameSummary(renames)
	}
	for _, e := range ci.Events {
		cause.AuditSeqs = append(cause.AuditSeqs, e.Seq)
		if cause.Actor == "" {
			cause.Actor, cause.RequestID = e.Actor.Name, e.RequestID
		}
		if e.Type == audit.TypeRoleManual {
			cause.Kind = "drift"
			manual[e.Target.ID] = e.Seq
		}
	}
	list := make([]string, 0, len(users))
	for id := range users {
		list = append(list, id)
	}
	sort.Strings(list)
	r.enqueue(trigger{cause: cause, users: list, committedAt: time.Now(), manualSeq: manual})
}

func resourceID(c store.Change) string {
	if c.After != nil {
		return c.After.(*store.Resource).ID
	}
	return c.Before.(*store.Resource).ID
}

// evaluation is the outcome of evaluating one user.
type evaluation struct {
	id       string
	userName string
	cur      *Teammate
	next     *Teammate // nil: delete the teammate record
	decision policy.Decision
	skipped  bool
	// refresh: skipped because the input equals the last one decided,
	// but built from another version of the user resource.
	refresh  bool
	err      error
	diff     *Diff
	triggers []int

	// user and input are what the policy was (or would be) asked.
	user  *store.Resource
	input policy.TeammateInput
	// digest is inputDigest(input), once digested is set.
	digest   string
	digested bool
}

// inputDigest returns the digest of the evaluation's input, computing it
// on first use: a full pass after a policy change needs none.
func (ev *evaluation) inputDigest() string {
	if !ev.digested {
		ev.digest, ev.digested = inputDigest(ev.input), true
	}
	return ev.digest
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

// sameContent reports whether two revisions name the same policy files:
// their digest parts (before "@commit") are equal. A new commit that does
// not touch the policy changes the revision but not the content.
func sameContent(a, b string) bool {
	da, _, _ := strings.Cut(a, "@")
	db, _, _ := strings.Cut(b, "@")
	return da == db
}

// onlyFullPasses reports whether every trigger of trig is for the whole
// population (a policy activation or the startup pass).
func onlyFullPasses(batch []trigger, trig []int) bool {
	for _, ti := range trig {
		if !batch[ti].all {
			return false
		}
	}
	return len(trig) > 0
}

// onlyKind reports whether every trigger of batch has cause kind.
func onlyKind(batch []trigger, kind string) bool {
	for _, t := range batch {
		if t.cause.Kind != kind {
			return false
		}
	}
	return true
}

// anyActivation reports whether batch holds a policy activation's pass.
func anyActivation(batch []trigger) bool {
	for _, t := range batch {
		if t.all && t.cause.Kind == "policy" {
			return true
		}
	}
	return false
}

func anyApproval(batch []trigger, trig []int, changeID string) bool {
	for _, ti := range trig {
		if batch[ti].changeID == changeID {
			return true
		}
	}
	return false
}

// touchedUser is a user a batch touches and the triggers that touched it.
type touchedUser struct {
	id       string
	triggers []int
	// resolved: user and rec are the user's resource and teammate record
	// (nil when absent), found while listing everyone.
	resolved bool
	user     *store.Resource
	rec      *Teammate
}

// touchedUsers returns the users a batch touches, in id order, each with
// the indices of its triggers: the triggers naming it, in batch order, then
// every trigger of the whole population (all), once for the user's SCIM
// resource and once for its teammate record. full tells whether some
// trigger was for the whole population. Users touched only by such
// triggers share their triggers slice, which must not be modified.
func touchedUsers(snap *store.Snapshot, batch []trigger) ([]touchedUser, bool) {
	named := map[string][]int{}
	var all []int
	for i, t := range batch {
		if t.all {
			all = append(all, i)
			continue
		}
		for _, id := range t.users {
			if own := named[id]; len(own) == 0 || own[len(own)-1] != i { // each trigger once per user
				named[id] = append(own, i)
			}
		}
	}
	if all == nil {
		out := make([]touchedUser, 0, len(named))
		for id, trig := range named {
			out = append(out, touchedUser{id: id, triggers: trig})
		}
		slices.SortFunc(out, func(a, b touchedUser) int { return strings.Compare(a.id, b.id) })
		return out, false
	}

	type record struct {
		id string
		t  *Teammate
	}
	var users []*store.Resource
	var records []record
	snap.Resources(store.KindUser, func(u *store.Resource) bool {
		users = append(users, u)
		return true
	})
	snap.Records(TableTeammates, func(id string, v any) bool {
		records = append(records, record{id, v.(*Teammate)})
		return true
	})
	if !slices.IsSortedFunc(users, func(a, b *store.Resource) int { return strings.Compare(a.ID, b.ID) }) {
		slices.SortFunc(users, func(a, b *store.Resource) int { return strings.Compare(a.ID, b.ID) })
	}
	if !slices.IsSortedFunc(records, func(a, b record) int { return strings.Compare(a.id, b.id) }) {
		slices.SortFunc(records, func(a, b record) int { return strings.Compare(a.id, b.id) })
	}
	all = slices.Clip(all)
	out := make([]touchedUser, 0, max(len(users), len(records)))
	add := func(id string, u *store.Resource, rec *Teammate) {
		t := touchedUser{id: id, triggers: all, resolved: true, user: u, rec: rec}
		if own, ok := named[id]; ok {
			t.triggers = append(slices.Clip(own), t.triggers...)
			delete(named, id)
		}
		out = append(out, t)
	}
	i, j := 0, 0
	for i < len(users) || j < len(records) {
		switch {
		case j == len(records) || (i < len(users) && users[i].ID < records[j].id):
			add(users[i].ID, users[i], nil)
			i++
		case i == len(users) || records[j].id < users[i].ID:
			add(records[j].id, nil, records[j].t)
			j++
		default:
			add(users[i].ID, users[i], records[j].t)
			i++
			j++
		}
	}
	if len(named) > 0 { // named users with neither a resource nor a record
		for id, trig := range named {
			out = append(out, touchedUser{id: id, triggers: trig, resolved: true})
		}
		slices.SortFunc(out, func(a, b touchedUser) int { return strings.Compare(a.id, b.id) })
	}
	return out, true
}

// blockedUsers maps each user in an open pending change, or in a rejected
// policy-triggered change of revision (a rejection sticks until another
// revision is activated), to the change's id. The map is shared: do not
// modify it.
func (r *Reconciler) blockedUsers(snap *store.Snapshot, revision string) map[string]string {
	return r.blocked.get(snap, revision)
}

// evaluate decides every user in ids.
// evaluate decides every user in users.
// live is the role order demotions are judged by.
func (r *Reconciler) evaluate(ctx context.Context, set *policy.Set, snap *store.Snapshot, users []touchedUser, batch []trigger, live []string) []*evaluation {
	slab := make([]evaluation, len(users))
	evals := make([]*evaluation, len(users))
	eval := make([]bool, len(users)) // needs the policy
	groupsOf := groupsLookup(snap, len(users))
	schemas := newSchemaValues()
	// Build every input; after a policy change (every teammate) this is as
	// costly as evaluating, so spread it over the workers too. Snapshots
	// are safe for concurrent reads. Digests are computed only when needed
	// (see evaluation.inputDigest).
	r.decMu.RLock()
	r.parallel(len(users), func(i int) {
		t := &users[i]
		id := t.id
		ev := &slab[i]
		ev.id, ev.triggers = id, t.triggers
		evals[i] = ev
		u := t.user
		if t.resolved {
			ev.cur = t.rec
		} else {
			if v, ok := snap.Record(TableTeammates, id); ok {
				ev.cur = v.(*Teammate)
			}
			u, _ = snap.Resource(store.KindUser, id)
		}
		if u == nil {
			return // deleted user: decided in decide
		}
		ev.userName = u.Name
		ev.user = u
		ev.input = teammateInput(groupsOf, schemas, u, ev.cur)
		if last, ok := r.decisions[id]; ok && ev.cur != nil && ev.cur.DecisionError == "" && last.Revision == set.Revision() && !forced(batch, ev.triggers) {
			if same, refresh := last.input.same(ev); same {
				ev.skipped, ev.refresh = true, refresh
				return
			}
		}
		eval[i] = true
	})
	r.decMu.RUnlock()
	n := 0
	for _, e := range eval {
		if e {
			n++
		}
	}
	inputs := make([]policy.TeammateInput, 0, n)
	inputEvals := make([]*evaluation, 0, n)
	for i, ev := range evals {
		if eval[i] {
			inputs = append(inputs, ev.input)
			inputEvals = append(inputEvals, ev)
		}
	}
	decisions, errs := r.decideAll(ctx, set, inputs)
	for i, ev := range inputEvals {
		ev.decision, ev.err = decisions[i], errs[i]
	}
	r.shadowCompare(ctx, set, evals, inputEvals, batch)
	for _, ev := range evals {
		r.decide(ev, live)
	}
	r.metrics.decisions.Add(float64(len(inputs)))
	return evals
}

// parallelChunk is how many items one worker of parallel takes at a time.
const parallelChunk = 256

// parallel calls fn(i) for every i in [0, n): inline for small n, else on
// the reconciler's workers (GOMAXPROCS by default).
func (r *Reconciler) parallel(n int, fn func(i int)) {
	workpool.Chunks(n, parallelChunk, r.workerCount(), func(start, end int) {
		for i := start; i < end; i++ {
			fn(i)
		}
	})
}

// workerCount is how many goroutines evaluate at once.
func (r *Reconciler) workerCount() int {
	if r.workers > 0 {
		return r.workers
	}
	return runtime.GOMAXPROCS(0)
}

// forced reports whether a trigger demands evaluation even of unchanged
// inputs (drift reverts and approvals).
func forced(batch []trigger, trig []int) bool {
	for _, ti := range trig {
		if k := batch[ti].cause.Kind; k == "drift" || k == "approval" || k == "plan" {
			return true
		}
	}
	return false
}

// decide turns an evaluation into the teammate's next state and its diff.
func (r *Reconciler) decide(ev *evaluation, roles []string) {
	if ev.skipped || ev.err != nil {
		return
	}
	cur := ev.cur
	from := stateOf(cur)
	if ev.userName == "" { // the SCIM user is gone
		if cur == nil {
			return
		}
		if cur.Excluded {
			// An excluded teammate is never deprovisioned, not even when
			// its user is deleted: it keeps its role and access, and the
			// audit event and the feed say so (see applyOne).
			if !cur.UserDeleted {
				next := *cur
				next.UserDeleted = true
				ev.next = &next
			} else {
				ev.next = cur
			}
			return
		}
		ev.next = nil
		ev.diff = &Diff{ID: ev.id, UserName: cur.UserName, From: from, To: State{}, Demotion: cur.Access,
			Reasons: []string{"the user was deleted in the identity provider"}}
		return
	}
	d := ev.decision
	next := Teammate{ID: ev.id, UserName: ev.userName, Role: d.Role, Access: d.Access, Excluded: d.Excluded,
		Reasons: d.Reasons, Revision: d.Revision, DecisionID: d.DecisionID}
	if d.Excluded {
		// Provisioning never changes an excluded teammate's role or access.
		if cur != nil {
			next.Role, next.Access = cur.Role, cur.Access
			next.Manual = cur.Manual
		}
	}
	if cur != nil {
		next.ChangedAt = cur.ChangedAt
	}
	to := State{Role: next.Role, Access: next.Access, Excluded: next.Excluded, Exists: true}
	if from == to && cur != nil && (cur.Manual == nil || d.Excluded) && cur.UserName == next.UserName && cur.DecisionError == "" {
		ev.next = cur // nothing to apply
		return
	}
	changed := next // allocated only when there is something to apply
	ev.next = &changed
	if from != to || cur == nil {
		ev.diff = &Diff{ID: ev.id, UserName: ev.userName, From: from, To: to, Reasons: d.Reasons,
			Demotion: isDemotion(from, to, roles)}
	}
}

func newDecisionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// apply writes the changes that are not held, the held pending changes and
// the audit events, in one durable transaction.
func (r *Reconciler) apply(ctx context.Context, set *policy.Set, batch []trigger, evals []*evaluation,
	held map[int][]string, tallies map[int]*guardTally, total int, deferred map[string][]string, full bool) error {
	type heldChange struct {
		change  *PendingChange
		trigger int
	}
	var holds []heldChange
	heldChanges := map[int]*PendingChange{}
	for ti, why := range held {
		tl := tallies[ti]
		c := &PendingChange{ID: newDecisionID(), State: ChangePending, Created: time.Now().UTC(), Trigger: batch[ti].cause,
			Demotions: tl.demotions, Escalations: tl.escalations, Exclusions: tl.exclusions, Teammates: total, Reasons: why}
		heldChanges[ti] = c
		holds = append(holds, heldChange{c, ti})
	}
	sort.Slice(holds, func(i, j int) bool { return holds[i].trigger < holds[j].trigger })

	var applied []*evaluation
	unchanged := 0
	for _, ev := range evals {
		isHeld := false
		for _, ti := range ev.triggers {
			if c, ok := heldChanges[ti]; ok {
				isHeld = true
				if ev.diff != nil {
					c.Changes = append(c.Changes, *ev.diff)
				}
			}
		}
		if isHeld {
			continue
		}
		if ev.err != nil || ev.skipped || ev.next == ev.cur {
			unchanged++
		}
		applied = append(applied, ev)
	}
	// A held trigger whose users changed nothing is not worth holding.
	for _, h := range holds {
		sort.Slice(h.change.Changes, func(i, j int) bool { return h.change.Changes[i].ID < h.change.Changes[j].ID })
	}

	// A policy activation's pass says whether it changed what the
	// revision's plan said it would (held changes included).
	var planDetail map[string]any
	if full && anyActivation(batch) {
		if p, ok, err := LatestPlan(ctx, r.store, set.Revision()); err != nil {
			r.log.Warn("could not compare the activation with its plan", "revision", set.Revision(), "error", err)
		} else if ok {
			planDetail = p.compare(passCounts(evals))
		}
	}
	now := time.Now()
	err := r.store.Write(ctx, func(tx *store.WriteTxn) error {
		for cid, users := range deferred {
			if err := deferUsers(tx, cid, users); err != nil {
				return err
			}
		}
		for _, h := range holds {
			h.change.Created = tx.Now()
			if err := tx.PutRecord(TableChanges, h.change.ID, h.change); err != nil {
				return err
			}
			tx.Audit(audit.Event{Type: audit.TypeChangeHeld, Actor: audit.Actor{Kind: "system", Name: "reconciler"},
				Target: audit.Target{Type: "Change", ID: h.change.ID}, RequestID: h.change.Trigger.RequestID,
				PolicyRevision: set.Revision(), Reasons: h.change.Reasons,
				Details: map[string]any{"trigger": h.change.Trigger.detail(), "changes": len(h.change.Changes),
					"demotions": h.change.Demotions, "escalations": h.change.Escalations, "exclusions": h.change.Exclusions,
					"exclusionMatches": exclusionReasons(h.change.Changes)}})
		}
		for _, ev := range applied {
			if err := r.applyOne(tx, set, batch, ev, full); err != nil {
				return err
			}
		}
		if err := recordApprovalOutcomes(tx, batch, applied); err != nil {
			return err
		}
		if full {
			details := map[string]any{"evaluated": len(evals), "unchanged": unchanged, "changed": len(applied) - unchanged,
				"held": len(evals) - len(applied)}
			if planDetail != nil {
				details["plan"] = planDetail
			}
			tx.Audit(audit.Event{Type: audit.TypeDecisionSummary, Actor: audit.Actor{Kind: "policy", Name: triggerKinds(batch)},
				Target: audit.Target{Type: "Policy", ID: set.Revision()}, PolicyRevision: set.Revision(), Details: details})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply decisions: %w", err)
	}
	// Remember what was applied.
	r.decMu.Lock()
	for _, ev := range applied {
		if ev.skipped && ev.refresh {
			if last, ok := r.decisions[ev.id]; ok {
				last.input = decidedInputOf(ev)
				r.decisions[ev.id] = last
			}
		}
		if ev.err != nil || ev.skipped {
			continue
		}
		if ev.userName == "" {
			delete(r.decisions, ev.id)
			continue
		}
		r.decisions[ev.id] = lastDecision{input: decidedInputOf(ev), Revision: set.Revision(), DecisionID: ev.decision.DecisionID,
			Reasons: ev.decision.Reasons, At: now}
	}
	r.decMu.Unlock()
	r.trackFailures(batch, evals, held)
	for _, h := range holds {
		r.log.Warn("change held for approval", "change", h.change.ID, "trigger", h.change.Trigger.Kind,
			"actor", h.change.Trigger.Actor, "revision", set.Revision(), "changes", len(h.change.Changes),
			"why", strings.Join(h.change.Reasons, "; "), "approve", "scimd changes approve "+h.change.ID)
	}
	for _, t := range batch {
		r.metrics.latency.Observe(time.Since(t.committedAt).Seconds())
	}
	r.refreshPending()
	return nil
}

// refreshPending sets the pending-changes gauge from durable state.
func (r *Reconciler) refreshPending() {
	n := 0
	r.store.Read().Records(TableChanges, func(_ string, v any) bool {
		if v.(*PendingChange).State == ChangePending {
			n++
		}
		return true
	})
	r.metrics.pending.Set(float64(n))
}

func triggerKinds(batch []trigger) string {
	seen := map[string]bool{}
	var kinds []string
	for _, t := range batch {
		if !seen[t.cause.Kind] {
			seen[t.cause.Kind] = true
			kinds = append(kinds, t.cause.Kind)
		}
	}
	return strings.Join(kinds, ",")
}

func mergeIDs(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range append(append([]string{}, a...), b...) {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}

// causeOf is the first trigger of ev that explains it.
func causeOf(batch []trigger, ev *evaluation) (trigger, bool) {
	if len(ev.triggers) == 0 {
		return trigger{}, false
	}
	return batch[ev.triggers[0]], true
}

// applyOne writes one user's decision and change with their audit events.
func (r *Reconciler) applyOne(tx *store.WriteTxn, set *policy.Set, batch []trigger, ev *evaluation, full bool) error {
	t, _ := causeOf(batch, ev)
	actor := audit.Actor{Kind: "system", Name: "reconciler"}
	target := audit.Target{Type: "Teammate", ID: ev.id, Name: ev.userName}
	if ev.err != nil {
		details := map[string]any{"cause": t.cause.detail(), "inputDigest": ev.inputDigest(), "kept": stateOf(ev.cur).detail()}
		if errors.Is(ev.err, ErrEvalDeadline) {
			details["timeout"] = r.evalTimeout.String()
		}
		tx.Audit(audit.Event{Type: audit.TypePolicyError, Actor: actor, Target: target, PolicyRevision: set.Revision(),
			RequestID: t.cause.RequestID, Reasons: []string{ev.err.Error()}, Details: details})
		r.metrics.policyErrors.Inc()
		if ev.cur != nil && ev.cur.DecisionError != ev.err.Error() {
			// Mark the teammate: it keeps its decision, which may be stale.
			marked := *ev.cur
			marked.DecisionError = ev.err.Error()
			if marked.DecisionErrorSince.IsZero() {
				marked.DecisionErrorSince = tx.Now()
			}
			return tx.PutRecord(TableTeammates, ev.id, &marked)
		}
		return nil
	}
	if ev.skipped {
		return nil
	}
	if !full && ev.userName != "" {
		tx.Audit(audit.Event{Type: audit.TypeDecision, Actor: actor, Target: target, PolicyRevision: set.Revision(),
			DecisionID: ev.decision.DecisionID, RequestID: t.cause.RequestID, Reasons: ev.decision.Reasons,
			Details: map[string]any{"inputDigest": ev.inputDigest(), "cause": t.cause.detail(),
				"result": map[string]any{"role": ev.decision.Role, "access": ev.decision.Access, "excluded": ev.decision.Excluded}}})
	}
	if ev.next == ev.cur {
		return nil
	}
	if ev.next == nil {
		if err := tx.DeleteRecord(TableTeammates, ev.id); err != nil {
			return err
		}
	} else {
		next := *ev.next
		if ev.diff != nil {
			next.ChangedAt = tx.Now()
		}
		if err := tx.PutRecord(TableTeammates, ev.id, &next); err != nil {
			return err
		}
		if next.UserDeleted && ev.cur != nil && !ev.cur.UserDeleted {
			return excludedUserDeleted(tx, actor, target, t.cause, &next)
		}
	}
	if ev.diff == nil {
		return nil
	}
	r.metrics.changes.Inc()
	types := changeTypes(*ev.diff, ev.cur)
	if err := tx.AppendFeed(ev.id, types[0], feedPayload(ev, types, t.cause)); err != nil {
		return err
	}
	for _, typ := range types {
		e := audit.Event{Type: typ, Actor: actor, Target: target, PolicyRevision: set.Revision(),
			DecisionID: ev.decision.DecisionID, RequestID: t.cause.RequestID, Reasons: ev.diff.Reasons,
			Change:  &audit.Change{From: ev.diff.From.detail(), To: ev.diff.To.detail()},
			Details: map[string]any{"cause": t.cause.detail()}}
		if typ == audit.TypeRoleReverted {
			if seq, ok := t.manualSeq[ev.id]; ok {
				e.Details["reverts"] = seq
			}
		}
		tx.Audit(e)
	}
	return nil
}

// excludedUserDeleted records, loudly, that the SCIM user of an excluded
// teammate was deleted and that the teammate nevertheless keeps its role
// and access: exclusions protect break-glass accounts from any mistake in
// the identity provider, deletion included. The feed carries it too, so
// applications can alert on it.
func excludedUserDeleted(tx *store.WriteTxn, actor audit.Actor, target audit.Target, cause Cause, t *Teammate) error {
	st := stateOf(t)
	why := fmt.Sprintf("the user was DELETED in the identity provider, but the teammate is excluded from provisioning (exclusions.rego): "+
		"it KEEPS role %q and access %v; remove it from exclusions.rego to deprovision it, or change it by hand", t.Role, t.Access)
	tx.Audit(audit.Event{Type: audit.TypeExcludedUserDeleted, Actor: actor, Target: target, PolicyRevision: t.Revision,
		RequestID: cause.RequestID, Reasons: []string{why},
		Change:  &audit.Change{From: st.detail(), To: st.detail()},
		Details: map[string]any{"cause": cause.detail(), "keptAccess": t.Access, "keptRole": t.Role}})
	tm := feedTeammate(t)
	tm.Reasons = []string{why}
	return tx.AppendFeed(t.ID, audit.TypeExcludedUserDeleted, FeedChange{Changes: []string{audit.TypeExcludedUserDeleted},
		From: st, To: st, Teammate: tm, Cause: cause})
}

// changeTypes names the audit events of one change.
func changeTypes(d Diff, cur *Teammate) []string {
	var out []string
	switch {
	case !d.From.Exists:
		return []string{audit.TypeTeammateCreated}
	case !d.To.Exists:
		return []string{audit.TypeTeammateDeleted}
	}
	if d.From.Excluded != d.To.Excluded {
		if d.To.Excluded {
			out = append(out, audit.TypeTeammateExcluded)
		} else {
			out = append(out, audit.TypeTeammateIncluded)
		}
	}
	if d.From.Access != d.To.Access {
		if d.To.Access {
			out = append(out, audit.TypeAccessGranted)
		} else {
			out = append(out, audit.TypeAccessRemoved)
		}
	}
	if d.From.Role != d.To.Role {
		if cur != nil && cur.Manual != nil {
			out = append(out, audit.TypeRoleReverted)
		} else {
			out = append(out, audit.TypeTeammateRoleChanged)
		}
	}
	return out
}

// FeedTeammate is a teammate's full current state in a feed entry.
type FeedTeammate struct {
	ID       string  `json:"id"`
	UserName string  `json:"userName"`
	Role     *string `json:"role"`
	Access   bool    `json:"access"`
	Excluded bool    `json:"excluded"`
	Deleted  bool    `json:"deleted,omitempty"`
	// UserDeleted: the SCIM user is gone but the teammate, excluded from
	// provisioning, keeps its role and access.
	UserDeleted bool     `json:"userDeleted,omitempty"`
	Reasons     []string `json:"reasons"`
}

// FeedChange is the payload of a feed entry: what changed, and the
// teammate's state after it.
type FeedChange struct {
	Changes  []string     `json:"changes"`
	From     State        `json:"from"`
	To       State        `json:"to"`
	Teammate FeedTeammate `json:"teammate"`
	Cause    Cause        `json:"cause"`
}

func feedPayload(ev *evaluation, types []string, cause Cause) FeedChange {
	tm := FeedTeammate{ID: ev.id, UserName: ev.diff.UserName, Deleted: true, Reasons: ev.diff.Reasons}
	if ev.next != nil {
		tm = feedTeammate(ev.next)
		tm.Reasons = ev.diff.Reasons
	}
	if tm.Reasons == nil {
		tm.Reasons = []string{}
	}
	return FeedChange{Changes: types, From: ev.diff.From, To: ev.diff.To, Teammate: tm, Cause: cause}
}

// feedTeammate is a teammate's state as the feed carries it.
func feedTeammate(t *Teammate) FeedTeammate {
	tm := FeedTeammate{ID: t.ID, UserName: t.UserName, Access: t.Access, Excluded: t.Excluded, UserDeleted: t.UserDeleted, Reasons: t.Reasons}
	if t.Role != "" {
		role := t.Role
		tm.Role = &role
	}
	if tm.Reasons == nil {
		tm.Reasons = []string{}
	}
	return tm
}
