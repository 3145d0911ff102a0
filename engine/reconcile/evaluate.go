package reconcile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"runtime"
	"strings"
	"time"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/internal/workpool"
	"github.com/scimd/scimd/scim/store"
)

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

// sameContent reports whether two revisions name the same policy files:
// their digest parts (before "@commit") are equal. A new commit that does
// not touch the policy changes the revision but not the content.
func sameContent(a, b string) bool {
	da, _, _ := strings.Cut(a, "@")
	db, _, _ := strings.Cut(b, "@")
	return da == db
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
