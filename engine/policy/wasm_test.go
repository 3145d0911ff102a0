package policy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/policy/policytest"
)

// TestCompiledPolicyIsBounded: a policy whose decision for some input (one
// the gate's probes do not try) loops
// without end (without allocating) or allocates without end is stopped,
// with an error naming the bound, instead of holding a core or the
// process's memory; other inputs are decided as usual.
func TestCompiledPolicyIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name, rule string
		fuel       int64         // 0: the default
		timeout    time.Duration // 0: none
		want       error
	}{
		{"loops", `spin if {
	count(input.user.title) == 13
	r := numbers.range(1, 2000)
	every i in r {
		every j in r {
			i >= 1
			j >= 1
		}
	}
}`, 200_000, 0, policy.ErrPolicySteps},
		{"loops past the deadline", `spin if {
	count(input.user.title) == 13
	r := numbers.range(1, 2000)
	every i in r {
		every j in r {
			i >= 1
			j >= 1
		}
	}
}`, 0, 50 * time.Millisecond, context.DeadlineExceeded},
		{"allocates", `spin if {
	count(input.user.title) == 13
	count(numbers.range(1, 100000000)) > 0
}`, 0, 0, policy.ErrPolicyMemory},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := policytest.Minimal()
			files["spin.rego"] = []byte("package scimd\n\n" + tc.rule + "\n")
			files = policytest.Replace(files, "policy.rego", `granted := {mapping[g.displayName] | some g in input.groups}`,
				`granted := {mapping[g.displayName] | some g in input.groups; not spin}`)
			s, err := policy.LoadFiles(context.Background(), files)
			if err != nil {
				t.Fatal(err)
			}
			if !policy.UseCompiled(s, true) {
				t.Fatalf("not compiled to WebAssembly: %s", policy.Engine(s))
			}
			if tc.fuel > 0 {
				policy.SetFuel(s, tc.fuel) // below the memory the loop needs
			}
			in := policy.TeammateInput{User: map[string]any{"userName": "a@example.com", "title": "thirteen-char"}, Groups: []policy.Group{{ID: "g", DisplayName: "Admins"}}}
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			start := time.Now()
			_, err = s.Teammate(ctx, in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Teammate = %v, want %v", err, tc.want)
			}
			t.Logf("stopped after %s: %v", time.Since(start), err)
			in.User["title"] = "Engineer"
			if _, err := s.Teammate(context.Background(), in); err != nil {
				t.Fatalf("another input after the bound: %v", err)
			}
		})
	}
}
