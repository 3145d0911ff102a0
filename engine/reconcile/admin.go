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

// Errors of the admin operations.
var (
	ErrNotFound    = errors.New("not found")
	ErrInvalid     = errors.New("invalid")
	ErrNotPending  = errors.New("change is not pending")
	ErrNoPolicy    = errors.New("no active policy")
	ErrUnknownRole = errors.New("unknown role")
	// ErrManaged refuses a manual role change on a managed teammate.
	ErrManaged = errors.New("managed by the identity provider and the policy")
)

// TeammateView is a teammate with the latest decision about it.
type TeammateView struct {
	Teammate
	// Groups are the display names of the user's groups.
	Groups []string `json:"groups"`
	// Decision holds the latest evaluated decision's reasons and revision,
	// which can be newer than the one that last changed the teammate.
	Decision *DecisionView `json:"decision,omitempty"`
	// PendingChange is the held change the teammate waits behind (a
	// pending one, or a rejected policy activation that still sticks).
	PendingChange string `json:"pendingChange,omitempty"`
}

// DecisionView is the latest decision about a teammate.
type DecisionView struct {
	Reasons    []string  `json:"reasons"`
	Revision   string    `json:"revision"`
	DecisionID string    `json:"decisionId"`
	At         time.Time `json:"at"`
}

// TeammateFilter selects teammates. Empty fields do not filter.
type TeammateFilter struct {
	Role   string
	Access *bool
	// Group is a group id or display name.
	Group string
}

// Teammates lists teammates in id order, and the change-feed sequence
// number the list reflects (a new feed client starts after it).
func (r *Reconciler) Teammates(f TeammateFilter) ([]TeammateView, uint64) {
	snap := r.store.Read()
	var groupMembers map[string]bool
	if f.Group != "" {
		g, ok := snap.Resource(store.KindGroup, f.Group)
		if !ok {
			g, ok = snap.ResourceByName(store.KindGroup, f.Group)
		}
		groupMembers = map[string]bool{}
		if ok {
			for _, m := range snap.Members(g.ID) {
				groupMembers[m.MemberID] = true
			}
		}
	}
	out := []TeammateView{}
	snap.Records(TableTeammates, func(id string, v any) bool {
		t := v.(*Teammate)
		if f.Role != "" && t.Role != f.Role {
			return true
		}
		if f.Access != nil && t.Access != *f.Access {
			return true
		}
		if groupMembers != nil && !groupMembers[id] {
			return true
		}
		out = append(out, r.view(snap, t))
		return true
	})
	return out, snap.FeedSeq
}

// Teammate returns one teammate.
func (r *Reconciler) Teammate(id string) (TeammateView, bool) {
	snap := r.store.Read()
	v, ok := snap.Record(TableTeammates, id)
	if !ok {
		return TeammateView{}, false
	}
	return r.view(snap, v.(*Teammate)), true
}

func (r *Reconciler) view(snap *store.Snapshot, t *Teammate) TeammateView {
	v := TeammateView{Teammate: *t, Groups: []string{}}
	revision := ""
	if set := r.policy.Active(); set != nil {
		revision = set.Revision()
	}
	v.PendingChange = r.blockedUsers(snap, revision)[t.ID]
	if v.Reasons == nil {
		v.Reasons = []string{}
	}
	for _, m := range snap.GroupsOf(t.ID) {
		if g, ok := snap.Resource(store.KindGroup, m.GroupID); ok {
			v.Groups = append(v.Groups, g.Name)
		}
	}
	sort.Strings(v.Groups)
	r.decMu.RLock()
	if d, ok := r.decisions[t.ID]; ok {
		v.Decision = &DecisionView{Reasons: d.Reasons, Revision: d.Revision, DecisionID: d.DecisionID, At: d.At}
	}
	r.decMu.RUnlock()
	return v
}

// GroupView is a SCIM group as the policy sees it.
type GroupView struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	ExternalID  string `json:"externalId,omitempty"`
	// Active is true when the policy maps the group to a role.
	Active  bool     `json:"active"`
	Role    string   `json:"role,omitempty"`
	Members []string `json:"members"`
	Error   string   `json:"error,omitempty"`
	// Warnings flag mappings a reviewer should fix, such as a group with
	// an externalId mapped by its display name.
	Warnings []string `json:"warnings"`
}

// Groups lists every group with whether the active policy maps it.
func (r *Reconciler) Groups(ctx context.Context) []GroupView {
	snap := r.store.Read()
	set := r.policy.Active()
	out := []GroupView{}
	snap.Resources(store.KindGroup, func(g *store.Resource) bool {
		v := GroupView{ID: g.ID, DisplayName: g.Name, ExternalID: g.ExternalID, Members: []string{}, Warnings: []string{}}
		for _, m := range snap.Members(g.ID) {
			v.Members = append(v.Members, m.MemberID)
		}
		if set != nil {
			role, active, err := set.Group(ctx, policy.Group{ID: g.ID, ExternalID: g.ExternalID, DisplayName: g.Name})
			if err != nil {
				v.Error = err.Error()
			}
			v.Role, v.Active = role, active
			if w := set.DisplayNameWarning(ctx, policy.Group{ID: g.ID, ExternalID: g.ExternalID, DisplayName: g.Name}); w != "" {
				v.Warnings = append(v.Warnings, w)
			}
		}
		out = append(out, v)
		return true
	})
	return out
}

// Changes lists pending and decided changes, newest first.
func (r *Reconciler) Changes(state string) []PendingChange {
	out := []PendingChange{}
	snap := r.store.Read()
	for _, table := range []string{TableChanges, TableDecidedChanges} {
		snap.Records(table, func(_ string, v any) bool {
			c := v.(*PendingChange)
			if state == "" || c.State == state {
				out = append(out, deferredOf(snap, *c))
			}
			return true
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}

// Change returns one change.
func (r *Reconciler) Change(id string) (PendingChange, bool) {
	return lookupChange(r.store.Read(), id)
}

// Approve marks a pending change approved and applies the current
// decisions of its teammates (and of those deferred behind it) without the
// guard.
func (r *Reconciler) Approve(ctx context.Context, id string, actor audit.Actor, requestID string) error {
	c, err := r.decideChange(ctx, id, ChangeApproved, actor, requestID)
	if err != nil {
		return err
	}
	users := mergeIDs(changeUsers(c), c.Deferred)
	cause := Cause{Kind: "approval", Actor: actor.Name, RequestID: requestID, GroupsRenamed: c.Trigger.GroupsRenamed}
	if c.Trigger.Summary != "" {
		// The approved change's own cause still explains what moves.
		cause.Summary = "approved change " + c.ID + ": " + c.Trigger.Summary
	}
	r.enqueue(trigger{cause: cause, users: users,
		bypassGuard: true, changeID: c.ID, committedAt: time.Now()})
	return nil
}

// Reject marks a pending change rejected: its changes are dropped and the
// teammates keep their state. A rejected policy activation sticks: its
// teammates keep their decisions, and later triggers for them are
// deferred, until another revision is activated (the policy in git must be
// reverted or fixed). Teammates deferred behind a rejected SCIM-triggered
// change are evaluated again, with the guard.
func (r *Reconciler) Reject(ctx context.Context, id string, actor audit.Actor, requestID string) error {
	c, err := r.decideChange(ctx, id, ChangeRejected, actor, requestID)
	if err != nil {
		return err
	}
	if len(c.Deferred) > 0 && !c.sticks(c.Trigger.Revision) {
		r.enqueue(trigger{cause: Cause{Kind: "rejection", Actor: actor.Name, RequestID: requestID}, users: c.Deferred,
			committedAt: time.Now()})
	}
	return nil
}

func changeUsers(c *PendingChange) []string {
	ids := make([]string, len(c.Changes))
	for i, d := range c.Changes {
		ids[i] = d.ID
	}
	return ids
}

func (r *Reconciler) decideChange(ctx context.Context, id, state string, actor audit.Actor, requestID string) (*PendingChange, error) {
	var decided *PendingChange
	err := r.store.Write(ctx, func(tx *store.WriteTxn) error {
		c, ok := lookupChange(tx, id)
		if !ok {
			return fmt.Errorf("change %q: %w", id, ErrNotFound)
		}
		if c.State != ChangePending {
			return fmt.Errorf("change %q is %s: %w", id, c.State, ErrNotPending)
		}
		c.State, c.Decided, c.DecidedBy = state, tx.Now(), actor.Name
		if err := archiveChange(tx, &c, r.retention); err != nil {
			return err
		}
		typ := audit.TypeChangeApproved
		var reasons []string
		if state == ChangeRejected {
			typ = audit.TypeChangeRejected
			reasons = []string{RejectionNote(&c)}
		}
		tx.Audit(audit.Event{Type: typ, Actor: actor, RequestID: requestID, Target: audit.Target{Type: "Change", ID: id},
			PolicyRevision: c.Trigger.Revision, Reasons: reasons,
			Details: map[string]any{"changes": len(c.Changes), "demotions": c.Demotions, "escalations": c.Escalations,
				"exclusions": c.Exclusions, "trigger": c.Trigger.detail()}})
		decided = &c
		return nil
	})
	r.refreshPending()
	return decided, err
}

// SetRole is an admin's manual role change. It is applied only to an
// excluded teammate (provisioning never changes those, so the change
// sticks). On a managed teammate it is refused with ErrManaged and audited
// as refused: the identity provider and the policy are the source of
// truth, and nothing downstream may see a grant the policy did not decide.
func (r *Reconciler) SetRole(ctx context.Context, id, role string, actor audit.Actor, requestID string) (Teammate, error) {
	set := r.policy.Active()
	if role != "" && (set == nil || !set.HasRole(role)) {
		return Teammate{}, fmt.Errorf("role %q is not one of the policy's roles: %w", role, ErrUnknownRole)
	}
	var out Teammate
	refused := false
	err := r.store.Write(ctx, func(tx *store.WriteTxn) error {
		v, ok := tx.Record(TableTeammates, id)
		if !ok {
			return fmt.Errorf("teammate %q: %w", id, ErrNotFound)
		}
		t := *v.(*Teammate)
		from := stateOf(&t)
		if !t.Excluded {
			refused = true
			to := from
			to.Role, to.Access = role, role != ""
			tx.Audit(audit.Event{Type: audit.TypeRoleManualRefused, Actor: actor, RequestID: requestID,
				Target: audit.Target{Type: "Teammate", ID: id, Name: t.UserName}, PolicyRevision: t.Revision,
				Reasons: []string{managedNote(&t)},
				Change:  &audit.Change{From: from.detail(), To: to.detail()}})
			out = t
			return nil
		}
		t.Role = role
		t.Access = role != ""
		t.Manual = &ManualChange{Role: role, Actor: actor.Name, RequestID: requestID, At: tx.Now()}
		t.Reasons = []string{fmt.Sprintf("role set by hand by %s", actor.Name)}
		t.ChangedAt = tx.Now()
		if err := tx.PutRecord(TableTeammates, id, &t); err != nil {
			return err
		}
		tx.Audit(audit.Event{Type: audit.TypeRoleManual, Actor: actor, RequestID: requestID,
			Target: audit.Target{Type: "Teammate", ID: id, Name: t.UserName},
			Change: &audit.Change{From: from.detail(), To: stateOf(&t).detail()}})
		cause := Cause{Kind: "manual", Actor: actor.Name, RequestID: requestID}
		if err := tx.AppendFeed(id, audit.TypeRoleManual, FeedChange{Changes: []string{audit.TypeRoleManual},
			From: from, To: stateOf(&t), Teammate: feedTeammate(&t), Cause: cause}); err != nil {
			return err
		}
		out = t
		return nil
	})
	if err == nil && refused {
		return out, fmt.Errorf("teammate %s: %s: %w", out.UserName, managedNote(&out), ErrManaged)
	}
	return out, err
}

// managedNote explains why a managed teammate's role cannot be set by hand.
func managedNote(t *Teammate) string {
	return "the role of a managed teammate is decided by the identity provider's groups and the policy, never by hand: " +
		"change the user's groups in the identity provider or the policy in git, or list the teammate in exclusions.rego to manage it by hand"
}

// ObserveDrift records a role that the application reports for a teammate
// (drift from the application side): it is audited as observed, never
// applied. For a managed teammate whose decided state differs, the feed
// then carries only the correction (the decided state), so applications
// put it back; nothing downstream sees the drifted role as a grant. An
// excluded teammate's drift is recorded only.
func (r *Reconciler) ObserveDrift(ctx context.Context, id, role string, actor audit.Actor, requestID string) (Teammate, error) {
	var out Teammate
	err := r.store.Write(ctx, func(tx *store.WriteTxn) error {
		v, ok := tx.Record(TableTeammates, id)
		if !ok {
			return fmt.Errorf("teammate %q: %w", id, ErrNotFound)
		}
		t := *v.(*Teammate)
		out = t
		decided := stateOf(&t)
		observed := decided
		observed.Role, observed.Access = role, role != ""
		target := audit.Target{Type: "Teammate", ID: id, Name: t.UserName}
		tx.Audit(audit.Event{Type: audit.TypeDriftObserved, Actor: actor, RequestID: requestID, Target: target,
			PolicyRevision: t.Revision, Reasons: []string{fmt.Sprintf("the application reports role %q; scimd decided %q", role, t.Role)},
			Change: &audit.Change{From: decided.detail(), To: observed.detail()}})
		if observed == decided || t.Excluded {
			return nil
		}
		cause := Cause{Kind: "drift", Actor: actor.Name, RequestID: requestID, Revision: t.Revision}
		reasons := append([]string{"drift reported by the application corrected: the decided role is restored"}, t.Reasons...)
		tx.Audit(audit.Event{Type: audit.TypeRoleReverted, Actor: audit.Actor{Kind: "system", Name: "reconciler"},
			RequestID: requestID, Target: target, PolicyRevision: t.Revision, DecisionID: t.DecisionID, Reasons: reasons,
			Change:  &audit.Change{From: observed.detail(), To: decided.detail()},
			Details: map[string]any{"cause": cause.detail()}})
		tm := feedTeammate(&t)
		tm.Reasons = reasons
		return tx.AppendFeed(id, audit.TypeRoleReverted, FeedChange{Changes: []string{audit.TypeRoleReverted},
			From: observed, To: decided, Teammate: tm, Cause: cause})
	})
	return out, err
}

// RejectionNote says what rejecting c means, for the audit event and the
// CLI: for a policy activation, that the revision stays active and its
// teammates keep their decisions until the policy in git is reverted or
// fixed.
func RejectionNote(c *PendingChange) string {
	n := len(c.Changes)
	if c.Trigger.Kind == "policy" || c.Trigger.Kind == "startup" {
		rev := c.Trigger.Revision
		fix := "revert or fix the policy in git"
		if _, commit, ok := strings.Cut(rev, "@"); ok {
			fix = fmt.Sprintf("revert or fix the policy in git (git revert %s, or a fixing commit)", commit)
		}
		return fmt.Sprintf("rejected: the %d held teammates keep their current decisions, and later changes for them are deferred, "+
			"while policy revision %s stays active; %s so that a new revision is activated", n, rev, fix)
	}
	return fmt.Sprintf("rejected: the %d held teammates keep their current state; the next change the identity provider makes for one of them is evaluated again, with the guard", n)
}
