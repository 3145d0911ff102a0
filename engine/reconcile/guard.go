package reconcile

import (
	"fmt"
	"slices"
	"strings"
)

// Threshold configures the mass-change guard. A single trigger (a policy
// activation, one SCIM request) is held for approval when it would
//
//   - demote (remove access from, or lower the role of, by the live role
//     order) more than Count teammates AND more than Percent percent of all
//     teammates;
//   - grant the highest-ranked role, or any role in EscalationRoles, to
//     more than EscalationCount teammates; or
//   - newly exclude an existing teammate from provisioning.
type Threshold struct {
	Count   int
	Percent float64
	// EscalationRoles are roles whose grant counts as an escalation, on
	// top of the highest-ranked role.
	EscalationRoles []string
	// EscalationCount is how many escalations one trigger may make
	// without being held (0 means DefaultEscalationCount; negative turns
	// the escalation rule off).
	EscalationCount int
}

// DefaultEscalationCount is how many teammates one trigger may grant the
// highest role to before it is held.
const DefaultEscalationCount = 3

// DefaultThreshold is more than 10 teammates and more than 10% of them,
// and more than 3 escalations.
var DefaultThreshold = Threshold{Count: 10, Percent: 10, EscalationCount: DefaultEscalationCount}

// WithDefaults fills the zero fields of t from DefaultThreshold.
func (t Threshold) WithDefaults() Threshold {
	if t.Count == 0 && t.Percent == 0 {
		t.Count, t.Percent = DefaultThreshold.Count, DefaultThreshold.Percent
	}
	if t.EscalationCount == 0 {
		t.EscalationCount = DefaultEscalationCount
	}
	return t
}

// trips reports whether demotions out of total teammates exceed t.
func (t Threshold) trips(demotions, total int) bool {
	return demotions > t.Count && float64(demotions) > t.Percent/100*float64(total)
}

// escalates reports whether escalations exceed t.
func (t Threshold) escalates(escalations int) bool {
	return t.EscalationCount >= 0 && escalations > t.EscalationCount
}

// isEscalationRole reports whether granting role counts as an
// escalation: it is the highest-ranked role of the live or the deciding
// order, or one of t.EscalationRoles.
func (t Threshold) isEscalationRole(role string, live, deciding []string) bool {
	if role == "" {
		return false
	}
	if (len(live) > 0 && live[0] == role) || (len(deciding) > 0 && deciding[0] == role) {
		return true
	}
	return slices.Contains(t.EscalationRoles, role)
}

// isEscalation reports whether d grants an escalation role the teammate
// did not have with access before.
func (t Threshold) isEscalation(d Diff, live, deciding []string) bool {
	if !d.To.Access || d.To.Excluded || !t.isEscalationRole(d.To.Role, live, deciding) {
		return false
	}
	return !d.From.Access || d.From.Role != d.To.Role
}

// isNewExclusion reports whether d excludes an existing teammate who was
// not excluded: from then on provisioning would never remove their access.
func isNewExclusion(d Diff) bool {
	return d.From.Exists && !d.From.Excluded && d.To.Excluded
}

// isDemotion reports whether going from → to removes access or lowers the
// role, by the given precedence order (highest first): the guard passes
// the live order, under which the teammates' current roles were decided.
func isDemotion(from, to State, roles []string) bool {
	if from.Access && !to.Access {
		return true
	}
	if !from.Access || !to.Access {
		return false
	}
	return rank(to.Role, roles) > rank(from.Role, roles)
}

// rank is a role's position in the precedence order; no role, or an
// unknown one, ranks below every role.
func rank(role string, roles []string) int {
	for i, r := range roles {
		if r == role {
			return i
		}
	}
	return len(roles)
}

// guardTally counts what one trigger would do.
type guardTally struct {
	demotions, escalations, exclusions int
}

// holdReasons says why the guard holds a trigger with tally tl out of
// total teammates (nil: it is not held). total is computed only when the
// demotions exceed the absolute count.
func (t Threshold) holdReasons(tl guardTally, total func() int) []string {
	var why []string
	if tl.demotions > t.Count {
		if n := total(); t.trips(tl.demotions, n) {
			why = append(why, fmt.Sprintf("would demote %d of %d teammates (threshold: more than %d and more than %g%%)",
				tl.demotions, n, t.Count, t.Percent))
		}
	}
	if t.escalates(tl.escalations) {
		roles := "the highest role"
		if len(t.EscalationRoles) > 0 {
			roles += " or " + strings.Join(t.EscalationRoles, ", ")
		}
		why = append(why, fmt.Sprintf("would grant %s to %d teammates (threshold: more than %d)", roles, tl.escalations, t.EscalationCount))
	}
	if tl.exclusions > 0 {
		why = append(why, fmt.Sprintf("would newly exclude %d teammate(s) from provisioning: an excluded teammate keeps its access whatever the identity provider says", tl.exclusions))
	}
	return why
}

// exclusionReasons lists, for a held change, the reasons of each newly
// excluded teammate: the policy's reasons name the identifier that matched.
func exclusionReasons(changes []Diff) []any {
	out := []any{}
	for _, d := range changes {
		if isNewExclusion(d) {
			out = append(out, map[string]any{"id": d.ID, "userName": d.UserName, "reasons": toAny(d.Reasons)})
		}
	}
	return out
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// liveOrder is the role order demotions are judged by: that of the last
// revision applied to everyone, or set's before there is one.
func (r *Reconciler) liveOrder(set interface{ Roles() []string }) []string {
	r.decMu.RLock()
	defer r.decMu.RUnlock()
	if r.liveRoles != nil {
		return r.liveRoles
	}
	return set.Roles()
}

// noteLiveOrder makes set's role order the live one once set's decisions
// were applied to everyone: a full pass or an approval that nothing held.
func (r *Reconciler) noteLiveOrder(set interface{ Roles() []string }, batch []trigger, held map[int][]string) {
	if len(held) > 0 {
		return
	}
	for _, t := range batch {
		if t.all || t.cause.Kind == "approval" {
			r.decMu.Lock()
			r.liveRoles = slices.Clone(set.Roles())
			r.decMu.Unlock()
			return
		}
	}
}
