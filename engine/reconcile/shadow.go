package reconcile

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/scim/store"
)

// A shadow policy set is evaluated beside the live one on every change
// and full pass; nothing it decides is applied. The reconciler keeps the
// teammates whose shadow decision differs from the live one.

// Divergence is a teammate the shadow policy decides differently.
type Divergence struct {
	UserID   string `json:"userId"`
	UserName string `json:"userName"`
	// Live and Shadow summarise the decisions ("role admin", "no access",
	// "excluded", "error"); LiveDecision and ShadowDecision are whole.
	Live           string          `json:"live"`
	Shadow         string          `json:"shadow"`
	LiveDecision   policy.Decision `json:"liveDecision"`
	ShadowDecision policy.Decision `json:"shadowDecision"`
	// Since is when the teammate was first seen diverging this way.
	Since time.Time `json:"since"`
	// Cause is what was being evaluated then: a SCIM write, a policy
	// activation, the shadow set itself ("shadow").
	Cause Cause `json:"cause"`
}

// ShadowReport is the state of the shadow policy.
type ShadowReport struct {
	// Revision is the shadow set's ("" when there is none); LiveRevision
	// the live set's at the last comparison.
	Revision     string `json:"revision"`
	LiveRevision string `json:"liveRevision"`
	// EvaluatedAt is when the last full shadow pass ended (zero until one
	// has); Teammates how many teammates it compared.
	EvaluatedAt time.Time    `json:"evaluatedAt,omitzero"`
	Teammates   int          `json:"teammates"`
	Divergent   []Divergence `json:"divergent"`
}

type shadowState struct {
	mu           sync.Mutex
	set          *policy.Set
	liveRevision string
	evaluatedAt  time.Time
	teammates    int
	divergent    map[string]*Divergence
}

// SetShadow makes set the shadow policy (nil: none) and has the
// reconciler compare it with the live policy for every teammate, then on
// every change. Nothing the shadow decides is applied.
func (r *Reconciler) SetShadow(set *policy.Set) {
	r.shadow.mu.Lock()
	r.shadow.set = set
	r.shadow.divergent = map[string]*Divergence{}
	r.shadow.evaluatedAt, r.shadow.teammates = time.Time{}, 0
	r.shadow.mu.Unlock()
	r.metrics.shadowDivergent.Set(0)
	if set != nil {
		r.enqueue(trigger{cause: Cause{Kind: "shadow", Revision: set.Revision(), Actor: "policy"}, shadowPass: true, committedAt: time.Now()})
	}
}

// Shadow returns the shadow policy set, or nil.
func (r *Reconciler) Shadow() *policy.Set {
	r.shadow.mu.Lock()
	defer r.shadow.mu.Unlock()
	return r.shadow.set
}

// ShadowReport lists the teammates the shadow policy decides differently,
// by userName.
func (r *Reconciler) ShadowReport() ShadowReport {
	r.shadow.mu.Lock()
	defer r.shadow.mu.Unlock()
	rep := ShadowReport{LiveRevision: r.shadow.liveRevision, EvaluatedAt: r.shadow.evaluatedAt,
		Teammates: r.shadow.teammates, Divergent: []Divergence{}}
	if r.shadow.set != nil {
		rep.Revision = r.shadow.set.Revision()
	}
	for _, d := range r.shadow.divergent {
		rep.Divergent = append(rep.Divergent, *d)
	}
	slices.SortFunc(rep.Divergent, func(a, b Divergence) int {
		if c := strings.Compare(a.UserName, b.UserName); c != 0 {
			return c
		}
		return strings.Compare(a.UserID, b.UserID)
	})
	return rep
}

// shadowCompare decides the evaluated users with the shadow policy too
// and updates the divergences. evals are all users of the pass (deleted
// ones drop out); inputEvals those the live policy decided.
func (r *Reconciler) shadowCompare(ctx context.Context, live *policy.Set, evals, inputEvals []*evaluation, batch []trigger) {
	shadow := r.Shadow()
	if shadow == nil {
		return
	}
	inputs := make([]policy.TeammateInput, len(inputEvals))
	for i, ev := range inputEvals {
		inputs[i] = ev.input
	}
	decisions, errs := r.decideAll(ctx, shadow, inputs)
	r.shadow.mu.Lock()
	defer r.shadow.mu.Unlock()
	if r.shadow.set != shadow {
		return // replaced meanwhile: its own pass compares
	}
	r.shadow.liveRevision = live.Revision()
	for _, ev := range evals {
		if ev.user == nil {
			delete(r.shadow.divergent, ev.id)
		}
	}
	now := time.Now()
	for i, ev := range inputEvals {
		var cause Cause
		if len(ev.triggers) > 0 {
			cause = batch[ev.triggers[0]].cause
		}
		r.noteShadow(ev.id, ev.userName, ev.decision, ev.err, decisions[i], errs[i], cause, now)
	}
	r.metrics.shadowDivergent.Set(float64(len(r.shadow.divergent)))
}

// noteShadow records one comparison. Called with shadow.mu held.
func (r *Reconciler) noteShadow(id, userName string, live policy.Decision, liveErr error, sh policy.Decision, shErr error, cause Cause, now time.Time) {
	ls, ss := summary(live, liveErr), summary(sh, shErr)
	if ls == ss {
		delete(r.shadow.divergent, id)
		return
	}
	if d, ok := r.shadow.divergent[id]; ok && d.Live == ls && d.Shadow == ss {
		d.UserName, d.LiveDecision, d.ShadowDecision = userName, live, sh
		return
	}
	r.shadow.divergent[id] = &Divergence{UserID: id, UserName: userName, Live: ls, Shadow: ss,
		LiveDecision: live, ShadowDecision: sh, Since: now, Cause: cause}
}

func summary(d policy.Decision, err error) string {
	if err != nil {
		return "error" // the message names the revision: not comparable
	}
	return d.Summary()
}

// shadowPass compares the shadow policy with the live one for every user.
func (r *Reconciler) shadowPass(ctx context.Context, live *policy.Set, cause Cause) {
	shadow := r.Shadow()
	if shadow == nil || shadow.Revision() != cause.Revision {
		return // cleared or replaced: the newer set has its own pass
	}
	snap := r.store.Read()
	var users []*store.Resource
	snap.Resources(store.KindUser, func(u *store.Resource) bool {
		users = append(users, u)
		return true
	})
	groupsOf := groupsLookup(snap, len(users))
	schemas := newSchemaValues()
	inputs := make([]policy.TeammateInput, len(users))
	r.parallel(len(users), func(i int) {
		var cur *Teammate
		if v, ok := snap.Record(TableTeammates, users[i].ID); ok {
			cur = v.(*Teammate)
		}
		inputs[i] = teammateInput(groupsOf, schemas, users[i], cur)
	})
	liveD, liveE := r.decideAll(ctx, live, inputs)
	shD, shE := r.decideAll(ctx, shadow, inputs)
	r.shadow.mu.Lock()
	defer r.shadow.mu.Unlock()
	if r.shadow.set != shadow {
		return
	}
	now := time.Now()
	r.shadow.divergent = map[string]*Divergence{}
	for i, u := range users {
		r.noteShadow(u.ID, u.Name, liveD[i], liveE[i], shD[i], shE[i], cause, now)
	}
	r.shadow.liveRevision, r.shadow.evaluatedAt, r.shadow.teammates = live.Revision(), now, len(users)
	r.metrics.shadowDivergent.Set(float64(len(r.shadow.divergent)))
	r.log.Info("shadow policy compared with the live policy", "shadow_revision", shadow.Revision(),
		"live_revision", live.Revision(), "teammates", len(users), "divergent", len(r.shadow.divergent))
}
