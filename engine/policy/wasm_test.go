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

// TestCompiledPolicyCallsPatternBuiltinsInGo: the built-ins OPA's
// WebAssembly runtime would recompile at every call (regular expressions,
// globs) are called back into Go, anywhere in a policy (rule bodies,
// comprehensions, function arguments), and decide as the interpreter does.
func TestCompiledPolicyCallsPatternBuiltinsInGo(t *testing.T) {
	files := policytest.Minimal()
	files["patterns.rego"] = []byte(`package scimd

pattern_admin if regex.match("^ops-[a-z]+$", input.user.title)

pattern_admin if {
	some g in input.groups
	glob.match("eng-*-leads", ["-"], g.displayName)
}

pattern_admin if count([m | some m in regex.find_all_string_submatch_n("([a-z]+)@admins\\.example", input.user.userName, -1)]) > 0

pattern_admin if {
	regex.is_valid(input.user.title)
	startswith(input.user.title, "root")
}
`)
	files = policytest.Replace(files, "policy.rego", `granted := {mapping[g.displayName] | some g in input.groups}`,
		`granted := {mapping[g.displayName] | some g in input.groups} | {"admin" | pattern_admin}`)
	s, err := policy.LoadFiles(context.Background(), files)
	if err != nil {
		t.Fatal(err)
	}
	if !policy.UseCompiled(s, true) {
		t.Fatalf("not compiled to WebAssembly: %s", policy.Engine(s))
	}
	for _, tc := range []struct {
		title, userName, group string
		admin                  bool
	}{
		{"ops-web", "a@example.com", "x", true},
		{"ops-", "a@example.com", "x", false},
		{"dev", "a@example.com", "eng-web-leads", true},
		{"dev", "a@example.com", "eng-web-team", false},
		{"dev", "bob@admins.example", "x", true},
		{"root[", "a@example.com", "x", false},
		{"root", "a@example.com", "x", true},
	} {
		in := policy.TeammateInput{User: map[string]any{"userName": tc.userName, "title": tc.title, "active": true},
			Groups: []policy.Group{{ID: "g", DisplayName: tc.group}}}
		got, err := s.Teammate(context.Background(), in)
		want, wantErr := policy.PlainTeammate(context.Background(), s, in)
		if err != nil || wantErr != nil {
			t.Fatalf("%+v: %v / plain %v", tc, err, wantErr)
		}
		if (got.Role == "admin") != tc.admin || got.Role != want.Role || got.Access != want.Access {
			t.Errorf("%+v: compiled %s, plain %s, want admin %v", tc, got.Role, want.Role, tc.admin)
		}
	}
}
