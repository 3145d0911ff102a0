package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/scim/store"
)

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
