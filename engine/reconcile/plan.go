package reconcile

import (
	"context"
	"fmt"
	"strconv"

	"github.com/scimd/scimd/audit"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/scim/store"
)

// Plan is what a candidate policy set would change, against live state.
type Plan struct {
	// Revision is the candidate's; LiveRevision the active set's ("" when
	// none is active).
	Revision     string `json:"revision"`
	LiveRevision string `json:"liveRevision"`
	// Teammates is how many teammates exist now.
	Teammates int `json:"teammates"`
	// Changes lists every teammate whose role, access or exclusion would
	// change, in user id order.
	Changes []Diff `json:"changes"`
	// Groups lists the groups whose mapping would change.
	Groups []GroupChange `json:"groups"`
	// Granted, Changed and Removed count teammates who would gain access,
	// change role while keeping access, and lose access: "+N ~M −K".
	Granted int `json:"granted"`
	Changed int `json:"changed"`
	Removed int `json:"removed"`
	// Demotions counts changes that remove access or lower a role;
	// WouldHold is whether the mass-change guard would hold the activation.
	// Demotions are judged by the live role order. Escalations counts
	// grants of the highest (or an escalation) role, Exclusions teammates
	// newly excluded; HoldReasons says which guard rules would hold it.
	Demotions   int      `json:"demotions"`
	Escalations int      `json:"escalations"`
	Exclusions  int      `json:"exclusions"`
	WouldHold   bool     `json:"wouldHold"`
	HoldReasons []string `json:"holdReasons,omitempty"`
	// Errors lists teammates the candidate could not decide.
	Errors []PlanError `json:"errors"`
	// Warnings lists groups the candidate maps in a way a reviewer should
	// fix (mapped by display name although they have an externalId).
	Warnings []GroupWarning `json:"warnings"`
}

// GroupWarning is a warning about how a policy maps one group.
type GroupWarning struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	ExternalID  string `json:"externalId,omitempty"`
	Warning     string `json:"warning"`
}

// GroupChange is a group whose mapping differs between the live and the
// candidate policy.
type GroupChange struct {
	ID          string       `json:"id"`
	DisplayName string       `json:"displayName"`
	From        GroupMapping `json:"from"`
	To          GroupMapping `json:"to"`
}

// GroupMapping is whether a policy maps a group, and to which role.
type GroupMapping struct {
	Active bool   `json:"active"`
	Role   string `json:"role,omitempty"`
}

// PlanError is a teammate the candidate failed to decide.
type PlanError struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// Plan evaluates every teammate against live state with the candidate set
// and returns the difference from today. Nothing is applied or written.
func (r *Reconciler) Plan(ctx context.Context, candidate *policy.Set) (*Plan, error) {
	snap := r.store.Read()
	live := r.policy.Active()
	p := &Plan{Revision: candidate.Revision(), Changes: []Diff{}, Groups: []GroupChange{}, Errors: []PlanError{}, Warnings: []GroupWarning{}}
	if live != nil {
		p.LiveRevision = live.Revision()
	}
	batch := []trigger{{cause: Cause{Kind: "plan"}, all: true}}
	touched, _ := touchedUsers(snap, batch)
	snap.Records(TableTeammates, func(string, any) bool {
		p.Teammates++
		return true
	})
	// Demotions are judged by the live role order, as the guard does.
	liveRoles := candidate.Roles()
	if live != nil {
		liveRoles = live.Roles()
	}
	var tally guardTally
	for _, ev := range r.evaluate(ctx, candidate, snap, touched, batch, liveRoles) {
		if ev.err != nil {
			p.Errors = append(p.Errors, PlanError{ID: ev.id, Error: ev.err.Error()})
			continue
		}
		if ev.diff == nil || !ev.diff.From.Exists {
			continue // unchanged, or a teammate the next reconcile creates anyway
		}
		d := *ev.diff
		p.Changes = append(p.Changes, d)
		switch {
		case !d.From.Access && d.To.Access:
			p.Granted++
		case d.From.Access && !d.To.Access:
			p.Removed++
		default:
			p.Changed++
		}
		if d.Demotion {
			p.Demotions++
		}
		if r.threshold.isEscalation(d, liveRoles, candidate.Roles()) {
			p.Escalations++
		}
		if isNewExclusion(d) {
			p.Exclusions++
		}
	}
	tally = guardTally{demotions: p.Demotions, escalations: p.Escalations, exclusions: p.Exclusions}
	p.HoldReasons = r.threshold.holdReasons(tally, func() int { return p.Teammates })
	p.WouldHold = len(p.HoldReasons) > 0

	var groupErr error
	snap.Resources(store.KindGroup, func(g *store.Resource) bool {
		in := policy.Group{ID: g.ID, ExternalID: g.ExternalID, DisplayName: g.Name}
		var from GroupMapping
		if live != nil {
			role, active, err := live.Group(ctx, in)
			if err == nil {
				from = GroupMapping{Active: active, Role: role}
			}
		}
		role, active, err := candidate.Group(ctx, in)
		if err != nil {
			groupErr = err
			return false
		}
		to := GroupMapping{Active: active, Role: role}
		if active {
			if w := candidate.DisplayNameWarning(ctx, in); w != "" {
				p.Warnings = append(p.Warnings, GroupWarning{ID: g.ID, DisplayName: g.Name, ExternalID: g.ExternalID, Warning: w})
			}
		}
		if from != to {
			p.Groups = append(p.Groups, GroupChange{ID: g.ID, DisplayName: g.Name, From: from, To: to})
		}
		return true
	})
	if groupErr != nil {
		return nil, groupErr
	}
	return p, nil
}

// PlanRef is the latest policy.planned audit event of a revision that
// passed the gate: what a reviewer saw before it was activated.
type PlanRef struct {
	Seq          uint64
	LiveRevision string
	Summary      string
	Granted      int
	Changed      int
	Removed      int
	WouldHold    bool
}

// LatestPlan finds the latest plan of revision in the audit log.
func LatestPlan(ctx context.Context, st *store.Store, revision string) (PlanRef, bool, error) {
	if revision == "" {
		return PlanRef{}, false, nil
	}
	events, err := st.AuditEvents(ctx, store.AuditQuery{Types: []string{audit.TypePolicyPlanned}, TargetID: revision})
	if err != nil {
		return PlanRef{}, false, fmt.Errorf("find the plan of revision %s: %w", revision, err)
	}
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		if e.Type != audit.TypePolicyPlanned || fmt.Sprint(e.Details["outcome"]) != "planned" {
			continue
		}
		p := PlanRef{Seq: e.Seq, LiveRevision: detailText(e.Details["liveRevision"]), Summary: detailText(e.Details["summary"]),
			Granted: detailInt(e.Details["granted"]), Changed: detailInt(e.Details["changed"]), Removed: detailInt(e.Details["removed"])}
		p.WouldHold, _ = e.Details["wouldHold"].(bool)
		return p, true, nil
	}
	return PlanRef{}, false, nil
}

// Detail is the plan as audit details: its sequence, the live revision it
// was made against and its summary.
func (p PlanRef) Detail() map[string]any {
	return map[string]any{"seq": p.Seq, "liveRevision": p.LiveRevision, "summary": p.Summary}
}

// comparePlan says whether a pass's changes are the plan's: the same
// numbers of teammates gaining access, changing role and losing access.
func (p PlanRef) compare(granted, changed, removed int) map[string]any {
	d := p.Detail()
	applied := fmt.Sprintf("+%d ~%d \u2212%d", granted, changed, removed)
	d["applied"] = applied
	d["matches"] = p.Granted == granted && p.Changed == changed && p.Removed == removed
	return d
}

func detailText(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func detailInt(v any) int {
	n, _ := strconv.Atoi(fmt.Sprint(v))
	return n
}

// passCounts counts a pass's changes as a plan does: teammates that
// existed before and gain access, change while keeping it, or lose it.
func passCounts(evals []*evaluation) (granted, changed, removed int) {
	for _, ev := range evals {
		if ev.err != nil || ev.diff == nil || !ev.diff.From.Exists {
			continue
		}
		switch d := ev.diff; {
		case !d.From.Access && d.To.Access:
			granted++
		case d.From.Access && !d.To.Access:
			removed++
		default:
			changed++
		}
	}
	return granted, changed, removed
}
