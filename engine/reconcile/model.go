package reconcile

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/scimd/scimd/scim/store"
)

// Record tables owned by the reconciler.
const (
	TableTeammates = "teammates"
	TableChanges   = "changes"
)

// Teammate is the actual state of one SCIM User in the application.
type Teammate struct {
	ID       string `json:"id"`
	UserName string `json:"userName"`
	// Role is "" for none.
	Role     string `json:"role"`
	Access   bool   `json:"access"`
	Excluded bool   `json:"excluded"`
	// Reasons, Revision and DecisionID are those of the decision that set
	// this state (or of the manual change).
	Reasons    []string  `json:"reasons"`
	Revision   string    `json:"revision,omitempty"`
	DecisionID string    `json:"decisionId,omitempty"`
	ChangedAt  time.Time `json:"changedAt"`
	// Manual is set while the role was last set by hand by an admin.
	Manual *ManualChange `json:"manual,omitempty"`
	// DecisionError is set while the latest evaluation of this teammate
	// failed or timed out: the teammate keeps the decision above, which
	// may be stale, until an evaluation succeeds. DecisionErrorSince is
	// when it was first set.
	DecisionError      string    `json:"decisionError,omitempty"`
	DecisionErrorSince time.Time `json:"decisionErrorSince,omitzero"`
	// UserDeleted is set for an excluded teammate whose SCIM user was
	// deleted: provisioning does not remove an excluded teammate.
	UserDeleted bool `json:"userDeleted,omitempty"`
}

// ManualChange records an admin's manual role change.
type ManualChange struct {
	Role      string    `json:"role"`
	Actor     string    `json:"actor"`
	RequestID string    `json:"requestId,omitempty"`
	At        time.Time `json:"at"`
}

// Change states.
const (
	ChangePending  = "pending"
	ChangeApproved = "approved"
	ChangeRejected = "rejected"
)

// PendingChange is a trigger's set of would-be changes, held by the
// mass-change guard.
type PendingChange struct {
	ID      string    `json:"id"`
	State   string    `json:"state"`
	Created time.Time `json:"created"`
	// Trigger describes what caused it: a SCIM request or a policy
	// activation.
	Trigger Cause `json:"trigger"`
	// Changes lists every would-be change, in user id order.
	Changes []Diff `json:"changes"`
	// Demotions counts changes that remove access or lower a role (by the
	// live role order); Escalations grants of the highest role (or of an
	// escalation role); Exclusions teammates newly excluded.
	Demotions   int `json:"demotions"`
	Escalations int `json:"escalations"`
	Exclusions  int `json:"exclusions"`
	// Reasons say which rule of the guard held it.
	Reasons []string `json:"reasons,omitempty"`
	// Teammates is how many teammates there were when it was held.
	Teammates int `json:"teammates"`
	// Deferred are users touched by later triggers while this change was
	// pending; they are re-evaluated when it is decided.
	Deferred []string  `json:"deferred,omitempty"`
	Decided  time.Time `json:"decided,omitempty"`
	// DecidedBy is the admin who approved or rejected it.
	DecidedBy string `json:"decidedBy,omitempty"`
	// Outcome is what an approval applied, once it has been applied.
	Outcome *ApprovalOutcome `json:"outcome,omitempty"`
}

// ApprovalOutcome is what applying an approved change did. An approval
// applies each teammate's decision as it stands when approved, which may
// differ from the held one: Unchanged counts the teammates whose decision
// no longer changes anything (say, the group was renamed back meanwhile).
type ApprovalOutcome struct {
	Applied   int       `json:"applied"`
	Unchanged int       `json:"unchanged"`
	Errors    int       `json:"errors"`
	At        time.Time `json:"at"`
}

// sticks reports whether c is a rejected change triggered by the policy
// revision that is still active: its teammates keep their decisions (and
// later triggers for them are deferred) until another revision is
// activated, so a rejected policy is never applied piecemeal.
func (c *PendingChange) sticks(activeRevision string) bool {
	return c.State == ChangeRejected && c.Trigger.Revision != "" && c.Trigger.Revision == activeRevision &&
		(c.Trigger.Kind == "policy" || c.Trigger.Kind == "startup")
}

// Diff is one teammate's change from → to.
type Diff struct {
	ID       string   `json:"id"`
	UserName string   `json:"userName"`
	From     State    `json:"from"`
	To       State    `json:"to"`
	Reasons  []string `json:"reasons,omitempty"`
	// Demotion is true when access is removed or the role is lowered.
	Demotion bool `json:"demotion"`
}

// State is a teammate's role and access.
type State struct {
	Role     string `json:"role"`
	Access   bool   `json:"access"`
	Excluded bool   `json:"excluded"`
	Exists   bool   `json:"exists"`
}

// Cause is what triggered a re-evaluation.
type Cause struct {
	// Kind is "scim", "policy", "drift", "startup", "approval" or
	// "rejection".
	Kind      string `json:"kind"`
	Actor     string `json:"actor,omitempty"`
	RequestID string `json:"requestId,omitempty"`
	Revision  string `json:"revision,omitempty"`
	// AuditSeqs are the audit events of the write that caused it.
	AuditSeqs []uint64 `json:"auditSeqs,omitempty"`
	// GroupsRenamed lists the groups the write renamed: a rename moves
	// access when a policy maps the group by its display name.
	GroupsRenamed []GroupRename `json:"groupsRenamed,omitempty"`
	// Summary says in words what the write did when that explains the
	// change better than its kind: `group renamed from "X" to "Y"`.
	Summary string `json:"summary,omitempty"`
}

// GroupRename is one group's change of displayName.
type GroupRename struct {
	ID   string `json:"id"`
	From string `json:"from"`
	To   string `json:"to"`
}

// renameSummary describes renames in words.
func renameSummary(renames []GroupRename) string {
	parts := make([]string, len(renames))
	for i, g := range renames {
		parts[i] = fmt.Sprintf("group renamed from %q to %q", g.From, g.To)
	}
	return strings.Join(parts, "; ")
}

// Records returns the decoders of the reconciler's record tables, for
// store.Options.Records.
func Records() map[string]store.RecordDecoder {
	return map[string]store.RecordDecoder{
		TableTeammates: func(b []byte) (any, error) {
			var t Teammate
			err := json.Unmarshal(b, &t)
			return &t, err
		},
		TableChanges: func(b []byte) (any, error) {
			var c PendingChange
			err := json.Unmarshal(b, &c)
			return &c, err
		},
		TableDecidedChanges: func(b []byte) (any, error) {
			var c PendingChange
			err := json.Unmarshal(b, &c)
			return &c, err
		},
		TableDeferred: func(b []byte) (any, error) {
			var d Deferral
			err := json.Unmarshal(b, &d)
			return &d, err
		},
	}
}

// stateJSON is State as JSON: a role is null when there is none, the one
// spelling of "no role" of teammates, the feed and held changes.
type stateJSON struct {
	Role     *string `json:"role"`
	Access   bool    `json:"access"`
	Excluded bool    `json:"excluded"`
	Exists   bool    `json:"exists"`
}

// MarshalJSON writes "role": null for a State without a role.
func (s State) MarshalJSON() ([]byte, error) {
	j := stateJSON{Access: s.Access, Excluded: s.Excluded, Exists: s.Exists}
	if s.Role != "" {
		j.Role = &s.Role
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads a State written with "role": null or "" (records
// written before roles were null).
func (s *State) UnmarshalJSON(b []byte) error {
	var j stateJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = State{Access: j.Access, Excluded: j.Excluded, Exists: j.Exists}
	if j.Role != nil {
		s.Role = *j.Role
	}
	return nil
}

// stateOf returns a teammate's State (the zero State for nil).
func stateOf(t *Teammate) State {
	if t == nil {
		return State{}
	}
	return State{Role: t.Role, Access: t.Access, Excluded: t.Excluded, Exists: true}
}

// detail is the State as plain JSON data for audit events (which then hash
// in one encoding pass); it encodes exactly as the State does.
func (s State) detail() map[string]any {
	var role any
	if s.Role != "" {
		role = s.Role
	}
	return map[string]any{"role": role, "access": s.Access, "excluded": s.Excluded, "exists": s.Exists}
}

// detail is the Cause as plain JSON data for audit events; it encodes
// exactly as the Cause does.
func (c Cause) detail() map[string]any {
	m := map[string]any{"kind": c.Kind}
	if c.Actor != "" {
		m["actor"] = c.Actor
	}
	if c.RequestID != "" {
		m["requestId"] = c.RequestID
	}
	if c.Revision != "" {
		m["revision"] = c.Revision
	}
	if len(c.AuditSeqs) > 0 {
		seqs := make([]any, len(c.AuditSeqs))
		for i, s := range c.AuditSeqs {
			seqs[i] = s
		}
		m["auditSeqs"] = seqs
	}
	if len(c.GroupsRenamed) > 0 {
		list := make([]any, len(c.GroupsRenamed))
		for i, g := range c.GroupsRenamed {
			list[i] = map[string]any{"id": g.ID, "from": g.From, "to": g.To}
		}
		m["groupsRenamed"] = list
	}
	if c.Summary != "" {
		m["summary"] = c.Summary
	}
	return m
}
