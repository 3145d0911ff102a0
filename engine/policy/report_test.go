package policy_test

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/policy/policytest"
)

func TestRunTestsDefaultPolicy(t *testing.T) {
	var out strings.Builder
	ok, err := policy.RunTests(context.Background(), defaultPolicies, &out)
	if !ok || err != nil {
		t.Fatalf("RunTests = %v, %v\n%s", ok, err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		filepath.Join(defaultPolicies, "roles_test.rego") + ":\n",
		"data.scimd_test.test_admin_wins_over_viewer_and_reason_names_the_group: PASS (",
		"\nPASS: ",
		"OK: revision ",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "FAIL") {
		t.Errorf("output reports a failure:\n%s", s)
	}
}

func TestRunTestsFailure(t *testing.T) {
	dir := t.TempDir()
	if err := policytest.WriteDir(dir, policytest.FailingTest()); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	ok, err := policy.RunTests(context.Background(), dir, &out)
	if ok || err != nil {
		t.Fatalf("RunTests = %v, %v; want false, nil", ok, err)
	}
	s := out.String()
	loc := filepath.Join(dir, "policy_test.rego") + ":5"
	for _, want := range []string{
		loc + ": data.scimd_test.test_admins_get_admin: FAIL (",
		"data.scimd_test.test_no_group_no_access: PASS (",
		"PASS: 1/2\nFAIL: 1/2\n",
		"REFUSED at test stage",
		"  " + loc + ": test data.scimd_test.test_admins_get_admin failed",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

func TestCheck(t *testing.T) {
	var out strings.Builder
	ok, err := policy.Check(context.Background(), defaultPolicies, &out)
	if !ok || err != nil {
		t.Fatalf("Check = %v, %v\n%s", ok, err, out.String())
	}
	if strings.Contains(out.String(), "PASS") || !strings.Contains(out.String(), "OK: revision") {
		t.Errorf("Check must not run tests:\n%s", out.String())
	}

	// Check does not run tests, so a failing test passes Check...
	dir := t.TempDir()
	policytest.WriteDir(dir, policytest.FailingTest())
	out.Reset()
	if ok, _ := policy.Check(context.Background(), dir, &out); !ok {
		t.Errorf("Check ran the tests:\n%s", out.String())
	}
	// ...but a contract break does not.
	dir = t.TempDir()
	policytest.WriteDir(dir, policytest.HTTPSend())
	out.Reset()
	ok, err = policy.Check(context.Background(), dir, &out)
	if ok || err != nil {
		t.Fatalf("Check = %v, %v", ok, err)
	}
	if !regexp.MustCompile(`REFUSED at builtin stage .*\n  .*policy\.rego:7: built-in http\.send is not allowed`).MatchString(out.String()) {
		t.Errorf("unexpected output:\n%s", out.String())
	}
	out.Reset()
	if ok, err := policy.Check(context.Background(), filepath.Join(dir, "missing"), &out); ok || err != nil || !strings.Contains(out.String(), "REFUSED at read stage") {
		t.Errorf("missing directory: %v, %v\n%s", ok, err, out.String())
	}
}
