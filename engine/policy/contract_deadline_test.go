package policy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/policy/policytest"
)

// TestGateRefusesPolicySlowOnItsOwnConstants: the contract probes use the
// policy's string constants as user attributes; a rule that is slow for
// one of them is refused within the probe deadline (or memory bound) instead of stalling
// activation (and, at startup, scimd) for as long as the rule runs.
func TestGateRefusesPolicySlowOnItsOwnConstants(t *testing.T) {
	files := policytest.Minimal()
	files["slow.rego"] = []byte(`package scimd

slow if {
	input.user.title == "Slowpoke"
	every i in numbers.range(1, 100000) {
		every j in numbers.range(1, 100000) {
			i != 0 - j
		}
	}
}
`)
	files = policytest.Replace(files, "policy.rego", `granted := {mapping[g.displayName] | some g in input.groups}`,
		`granted := {mapping[g.displayName] | some g in input.groups; not slow}`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err := policy.LoadFiles(ctx, files)
	var re *policy.RefusedError
	if !errors.As(err, &re) || re.Stage != policy.StageContract {
		t.Fatalf("LoadFiles = %v; want a refusal at the contract stage", err)
	}
	// The rule runs out of time (interpreter) or memory (WebAssembly)
	// first: either is a bound, and says so.
	if msg := re.Problems[0].Message; !strings.Contains(msg, "took longer than") && !strings.Contains(msg, "MiB of memory") {
		t.Errorf("refusal %q does not say the policy was too slow or too big", msg)
	}
	t.Logf("refused after %s", time.Since(start))
}
