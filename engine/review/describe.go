package review

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/reconcile"
)

// Describe summarises an audit event on one line for people: what happened
// to what ("added 2 members to group Intercom Admins", "alice@example.com:
// support → admin"). The event itself remains the record; this is a label.
func Describe(e audit.Event) string { return DescribeFor(e, "") }

// DescribeFor is Describe from the point of view of one user id: a group
// membership event says "added to group X" when subject was among the
// members added.
func DescribeFor(e audit.Event, subject string) string {
	name := e.Target.Name
	if name == "" {
		name = e.Target.ID
	}
	switch {
	case strings.HasPrefix(e.Type, "scim.group."):
		return describeGroup(e, name, subject)
	case strings.HasPrefix(e.Type, "scim.user."):
		return describeUser(e, name)
	}
	switch e.Type {
	case audit.TypeTokenCreated:
		return "created token " + name
	case audit.TypeTokenRevoked:
		return "revoked token " + name
	case audit.TypeTokenRotated:
		return fmt.Sprintf("rotated token %s (previous secret valid %v more)", name, e.Details["grace"])
	case audit.TypeTokenExpired:
		if e.Details["previousSecret"] == true {
			return "previous secret of token " + name + " expired"
		}
		return "token " + name + " expired"
	case audit.TypeAccessDenied:
		return fmt.Sprintf("refused %s: the token lacks the %v scope", e.Target.ID, e.Details["scope"])
	case audit.TypePolicyActivated:
		s := "activated policy " + e.Target.ID
		if from := changeString(e, true); from != "" {
			s += fmt.Sprintf(" (was %s)", from)
		}
		if plan, ok := e.Details["plan"].(map[string]any); ok {
			s += fmt.Sprintf(", planned in audit event %v (%v)", plan["seq"], plan["summary"])
			if against, _ := plan["againstReplacedRevision"].(bool); !against {
				s += fmt.Sprintf(" against %v, not the revision it replaced", plan["liveRevision"])
			}
		}
		return s
	case audit.TypePolicyRefused:
		return fmt.Sprintf("refused policy %s: %s", orNone(e.Target.ID), firstReason(e))
	case audit.TypePolicyPlanned:
		return fmt.Sprintf("planned policy %s against %s: %s", orNone(e.Target.ID), orNone(detailString(e, "liveRevision")),
			plannedOutcome(e))
	case audit.TypePolicyError:
		return fmt.Sprintf("could not decide %s: %s", name, firstReason(e))
	case audit.TypeDecision:
		return fmt.Sprintf("decided %s: %s", name, firstReason(e))
	case audit.TypeDecisionSummary:
		s := fmt.Sprintf("re-evaluated teammates with policy %s (%s): %v changed, %v held, %v unchanged", e.Target.ID,
			e.Actor.Name, e.Details["changed"], e.Details["held"], e.Details["unchanged"])
		if plan, ok := e.Details["plan"].(map[string]any); ok {
			if matches, _ := plan["matches"].(bool); matches {
				s += fmt.Sprintf("; as planned in audit event %v (%v)", plan["seq"], plan["summary"])
			} else {
				s += fmt.Sprintf("; NOT as planned in audit event %v: planned %v, changed %v", plan["seq"], plan["summary"], plan["applied"])
			}
		}
		return s
	case audit.TypeChangeHeld:
		return fmt.Sprintf("held change %s: %s", e.Target.ID, firstReason(e))
	case audit.TypeChangeApproved:
		return fmt.Sprintf("approved change %s (%v changes)", e.Target.ID, e.Details["changes"])
	case audit.TypeChangeRejected:
		return fmt.Sprintf("rejected change %s (%v changes)", e.Target.ID, e.Details["changes"])
	}
	if strings.HasPrefix(e.Type, "teammate.") {
		from, okFrom := asState(e.Change, true)
		to, okTo := asState(e.Change, false)
		verb := strings.TrimPrefix(e.Type, "teammate.")
		if okFrom || okTo {
			return fmt.Sprintf("%s %s: %s → %s", name, verb, historyState(from, true), historyState(to, false))
		}
		return fmt.Sprintf("%s %s", name, verb)
	}
	return fmt.Sprintf("%s %s %s", e.Type, e.Target.Type, name)
}

func plannedOutcome(e audit.Event) string {
	if detailString(e, "outcome") == "refused" {
		return "refused at the " + detailString(e, "stage") + " stage: " + firstReason(e)
	}
	if b, _ := e.Details["wouldHold"].(bool); b {
		return detailString(e, "summary") + ", the guard would hold it"
	}
	return detailString(e, "summary")
}

func describeGroup(e audit.Event, name, subject string) string {
	added, removed := idList(e.Details["membersAdded"]), idList(e.Details["membersRemoved"])
	if subject != "" {
		switch {
		case contains(added, subject):
			return "added to group " + name
		case contains(removed, subject):
			return "removed from group " + name
		}
	}
	var parts []string
	switch e.Type {
	case audit.TypeGroupCreated:
		parts = append(parts, "created group "+name)
	case audit.TypeGroupDeleted:
		parts = append(parts, "deleted group "+name)
	default:
		from, to := nameOf(e.Change, true), nameOf(e.Change, false)
		if from != "" && to != "" && from != to {
			parts = append(parts, fmt.Sprintf("renamed group %s → %s", from, to))
		} else {
			parts = append(parts, "updated group "+name)
		}
	}
	if len(added) > 0 {
		parts = append(parts, fmt.Sprintf("+%d members", len(added)))
	}
	if len(removed) > 0 {
		parts = append(parts, fmt.Sprintf("\u2212%d members", len(removed)))
	}
	return strings.Join(parts, ", ")
}

func describeUser(e audit.Event, name string) string {
	switch e.Type {
	case audit.TypeUserCreated:
		return "created user " + name
	case audit.TypeUserDeleted:
		return "deleted user " + name
	}
	from, to := activeOf(e.Change, true), activeOf(e.Change, false)
	switch {
	case from != nil && to != nil && *from && !*to:
		return "deactivated user " + name
	case from != nil && to != nil && !*from && *to:
		return "reactivated user " + name
	}
	return "updated user " + name
}

func firstReason(e audit.Event) string {
	if len(e.Reasons) == 0 {
		return "(no reason recorded)"
	}
	if len(e.Reasons) == 1 {
		return e.Reasons[0]
	}
	return fmt.Sprintf("%s (and %d more)", e.Reasons[0], len(e.Reasons)-1)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func detailString(e audit.Event, key string) string {
	s, _ := e.Details[key].(string)
	return s
}

func changeString(e audit.Event, from bool) string {
	if e.Change == nil {
		return ""
	}
	v := e.Change.To
	if from {
		v = e.Change.From
	}
	s, _ := v.(string)
	return s
}

func side(c *audit.Change, from bool) any {
	if c == nil {
		return nil
	}
	if from {
		return c.From
	}
	return c.To
}

func nameOf(c *audit.Change, from bool) string {
	m, _ := side(c, from).(map[string]any)
	s, _ := m["name"].(string)
	return s
}

func activeOf(c *audit.Change, from bool) *bool {
	m, _ := side(c, from).(map[string]any)
	switch v := m["active"].(type) {
	case bool:
		return &v
	case string: // stored as the IdP sent it ("True", "false")
		if t, f := strings.EqualFold(v, "true"), strings.EqualFold(v, "false"); t || f {
			return &t
		}
	}
	return nil
}

// asState decodes one side of a teammate change event.
func asState(c *audit.Change, from bool) (reconcile.State, bool) {
	v := side(c, from)
	if v == nil {
		return reconcile.State{}, false
	}
	if s, ok := v.(reconcile.State); ok {
		return s, true
	}
	b, err := json.Marshal(v)
	if err != nil {
		return reconcile.State{}, false
	}
	var s reconcile.State
	if err := json.Unmarshal(b, &s); err != nil {
		return reconcile.State{}, false
	}
	return s, true
}

// idList reads a details list of ids (as stored: []string, or []any after a
// round trip through JSON).
func idList(v any) []string {
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		out := make([]string, 0, len(l))
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// MentionsMember reports whether e is a group event that added or removed
// the member id.
func MentionsMember(e audit.Event, id string) bool {
	return contains(idList(e.Details["membersAdded"]), id) || contains(idList(e.Details["membersRemoved"]), id)
}
