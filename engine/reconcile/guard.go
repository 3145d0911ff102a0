package reconcile

// Threshold configures the mass-change guard: a single trigger that would
// demote (remove access from, or lower the role of) more than Count
// teammates AND more than Percent percent of all teammates is held for
// approval.
type Threshold struct {
	Count   int
	Percent float64
}

// DefaultThreshold is more than 10 teammates and more than 10% of them.
var DefaultThreshold = Threshold{Count: 10, Percent: 10}

// trips reports whether demotions out of total teammates exceed t.
func (t Threshold) trips(demotions, total int) bool {
	return demotions > t.Count && float64(demotions) > t.Percent/100*float64(total)
}

// isDemotion reports whether going from → to removes access or lowers the
// role, by the policy's precedence order (highest first).
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
