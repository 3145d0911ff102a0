package policy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The oracle: OPA re-decides a sample of the native table's decisions.
// The first oracleFirst native decisions of a set are all checked, then
// one in oracleRate at random. On any disagreement the table is switched
// off for the set, the disagreement is logged, and OPA decides from then
// on (including every decision of the batch that met it).
const (
	oracleFirst = 64
	oracleRate  = 1000
)

// sampled reports whether the next native decision goes to the oracle.
func (s *Set) sampled() bool {
	// Load first: past the first decisions, workers need not contend on
	// the counter.
	if s.oracleN.Load() < oracleFirst && s.oracleN.Add(1) <= oracleFirst {
		return true
	}
	return rand.IntN(oracleRate) == 0
}

// verify has OPA decide input, which table decided as nd. It returns the
// decision to use: nd when OPA agrees, else OPA's (and its error), after
// switching the table off.
func (s *Set) verify(ctx context.Context, table *nativeTable, input ast.Value, nd Decision) (Decision, error) {
	od, err := s.teammateValue(ctx, input, Decision{Revision: nd.Revision, DecisionID: nd.DecisionID})
	if err != nil && ctx.Err() != nil {
		return od, err // not a disagreement: evaluation was cut short
	}
	if err == nil && sameDecision(nd, od) {
		return nd, nil
	}
	opa := describeDecision(od)
	if err != nil {
		opa = "error: " + err.Error()
	}
	s.disableNative(table, fmt.Sprintf("the native decision table disagreed with OPA for user %q: native %s, OPA %s",
		userID(input), describeDecision(nd), opa))
	return od, err
}

// disableNative switches table off for good, once, and logs why.
func (s *Set) disableNative(table *nativeTable, reason string) {
	cur := s.native.Load()
	if cur == nil || cur.table != table || table == nil {
		return
	}
	if s.native.CompareAndSwap(cur, &nativeState{reason: reason}) {
		s.logger().Error("policy: native decisions disabled, OPA decides every teammate of this revision",
			"revision", s.revision, "reason", reason)
	}
}

func sameDecision(a, b Decision) bool {
	return a.Excluded == b.Excluded && a.Access == b.Access && a.Role == b.Role && slices.Equal(a.Reasons, b.Reasons)
}

func describeDecision(d Decision) string {
	return fmt.Sprintf("{excluded: %v, access: %v, role: %q, reasons: %q}", d.Excluded, d.Access, d.Role, d.Reasons)
}

// userID is input.user.id when it is a string, for reports.
func userID(input ast.Value) string {
	in, ok := input.(ast.Object)
	if !ok {
		return ""
	}
	u := in.Get(keyUser)
	if u == nil {
		return ""
	}
	uo, ok := u.Value.(ast.Object)
	if !ok {
		return ""
	}
	id, _ := stringAt(uo, "id")
	return id
}
