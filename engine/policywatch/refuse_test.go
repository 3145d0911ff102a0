package policywatch_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/policy/policytest"
	"github.com/scimd/scimd/engine/policywatch"
)

func TestRefusedSetKeepsPreviousActive(t *testing.T) {
	tests := []struct {
		name  string
		files map[string][]byte
		stage policy.Stage
		cause string // must appear in the audit event's reasons
	}{
		{"syntax error", policytest.SyntaxError(), policy.StageParse, "policy.rego:"},
		{"failing test", policytest.FailingTest(), policy.StageTest, "policy_test.rego:5: test data.scimd_test.test_admins_get_admin failed"},
		{"contract break", policytest.ContractBreak(), policy.StageContract, `policy.rego:5: data.scimd.group for group "Viewers": role not in data.scimd.roles: "superuser"`},
		{"http.send", policytest.HTTPSend(), policy.StageBuiltin, "policy.rego:7: built-in http.send is not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, rev1 := startMinimal(t)
			for name, b := range tt.files {
				writeFile(t, filepath.Join(h.dir, name), b)
			}
			h.waitFor("a refusal", func() bool { return len(h.eventsOfType(audit.TypePolicyRefused)) > 0 })
			h.settle()

			if got := h.m.Active().Revision(); got != rev1 {
				t.Fatalf("active revision %s after a refusal, want %s", got, rev1)
			}
			h.expectActivations(rev1)
			refused := h.eventsOfType(audit.TypePolicyRefused)
			if len(refused) != 1 {
				t.Fatalf("%d refusal events, want 1: %+v", len(refused), refused)
			}
			e := refused[0]
			badRev := revisionOf(t, tt.files)
			if e.Target.Type != "Policy" || e.Target.ID != badRev || e.Actor.Name != policywatch.TriggerWatch || e.PolicyRevision != rev1 {
				t.Errorf("event %+v: want target Policy/%s, actor watch, policy revision %s", e, badRev, rev1)
			}
			if e.Details["stage"] != string(tt.stage) || e.Details["activeRevision"] != rev1 {
				t.Errorf("details %v", e.Details)
			}
			if !strings.Contains(strings.Join(e.Reasons, "\n"), tt.cause) {
				t.Errorf("reasons %q do not name %q", e.Reasons, tt.cause)
			}
			if !strings.Contains(fmt.Sprint(e.Details["error"]), tt.cause) {
				t.Errorf("details.error %q does not name %q", e.Details["error"], tt.cause)
			}
			if _, err := audit.ComputeHash(e); err != nil {
				t.Errorf("event does not hash: %v", err)
			}

			st := h.m.Status()
			if st.State != policywatch.StateRefused || st.Revision != rev1 || st.RefusedRevision != badRev || !strings.Contains(st.LastError, tt.cause) || len(st.Problems) == 0 {
				t.Errorf("status %+v", st)
			}
			if ok, why := h.m.Ready(); !ok || why != "" {
				t.Errorf("Ready() = %v, %q: an older set is active", ok, why)
			}
			if got := metricValue(t, h.reg, "scimd_policy_refusals_total", "stage", string(tt.stage)); got != 1 {
				t.Errorf("refusal counter = %v, want 1", got)
			}
			if !strings.Contains(h.logs.String(), `"msg":"policy refused; the previous policy stays active"`) {
				t.Errorf("refusal not logged:\n%s", h.logs.String())
			}

			// A manual reload of the same bytes re-checks and re-audits them.
			err := h.m.Reload(context.Background(), "api")
			var re *policy.RefusedError
			if !errors.As(err, &re) || re.Stage != tt.stage {
				t.Errorf("manual Reload = %v, want a %s refusal", err, tt.stage)
			}
			if n := len(h.eventsOfType(audit.TypePolicyRefused)); n != 2 {
				t.Errorf("%d refusal events after a manual reload, want 2", n)
			}

			// Fixing the set activates it and clears the error.
			v2 := policytest.WithMarker("fixed")
			for name, b := range v2 {
				writeFile(t, filepath.Join(h.dir, name), b)
			}
			rev2 := revisionOf(t, v2)
			h.waitActive(rev2)
			h.settle()
			h.expectActivations(rev1, rev2)
			if st := h.m.Status(); st.State != policywatch.StateActive || st.LastError != "" || st.Revision != rev2 {
				t.Errorf("status after the fix: %+v", st)
			}
			act := h.eventsOfType(audit.TypePolicyActivated)
			last := act[len(act)-1]
			if last.Target.ID != rev2 || last.Change == nil || last.Change.From != rev1 || last.Change.To != rev2 || last.Details["trigger"] != policywatch.TriggerWatch {
				t.Errorf("activation event %+v", last)
			}
		})
	}
}

// metricValue returns the value of a counter or gauge in reg whose labels
// include the given name/value pairs (0 when absent).
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}
