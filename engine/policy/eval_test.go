package policy_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/policy/policytest"
	"github.com/scimd/scimd/scim/schema"
)

const defaultPolicies = "../../policies"

func loadDefault(t testing.TB) *policy.Set {
	t.Helper()
	s, err := policy.LoadDir(context.Background(), defaultPolicies)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	admins  = policy.Group{ID: "g1", DisplayName: "Intercom Admins"}
	support = policy.Group{ID: "g2", DisplayName: "Intercom Support"}
	viewers = policy.Group{ID: "g3", DisplayName: "Intercom Viewers"}
	sales   = policy.Group{ID: "g4", DisplayName: "Sales"}
)

func user(name string, extra ...any) map[string]any {
	u := map[string]any{
		"schemas":  []any{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"id":       "u-" + name,
		"userName": name + "@example.com",
		"active":   true,
		"emails":   []any{map[string]any{"value": name + "@example.com", "primary": true}},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		u[extra[i].(string)] = extra[i+1]
	}
	return u
}

func TestDefaultPolicyGroups(t *testing.T) {
	s := loadDefault(t)
	if got := s.Roles(); !reflect.DeepEqual(got, []string{"admin", "support", "viewer"}) {
		t.Errorf("Roles() = %v", got)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		g      policy.Group
		role   string
		active bool
	}{
		{admins, "admin", true},
		{support, "support", true},
		{viewers, "viewer", true},
		{sales, "", false},
		{policy.Group{ID: "g5", ExternalID: "Intercom Viewers", DisplayName: "renamed"}, "viewer", true},
	} {
		role, active, err := s.Group(ctx, tc.g)
		if err != nil || role != tc.role || active != tc.active {
			t.Errorf("Group(%+v) = %q, %v, %v; want %q, %v", tc.g, role, active, err, tc.role, tc.active)
		}
	}
}

func TestDefaultPolicyTeammate(t *testing.T) {
	s := loadDefault(t)
	ctx := context.Background()
	tests := []struct {
		name string
		in   policy.TeammateInput
		want policy.Decision
	}{
		{"precedence", policy.TeammateInput{User: user("alice"), Groups: []policy.Group{viewers, admins, sales}},
			policy.Decision{Access: true, Role: "admin", Reasons: []string{`member of group "Intercom Admins" → admin`}}},
		{"no group", policy.TeammateInput{User: user("bob"), Groups: []policy.Group{sales}, Current: policy.Current{Role: "viewer", Access: true}},
			policy.Decision{Reasons: []string{"in no mapped group → no access"}}},
		{"deactivated", policy.TeammateInput{User: user("carol", "active", false), Groups: []policy.Group{admins}},
			policy.Decision{Reasons: []string{"deactivated in the identity provider (active: false) → no access"}}},
		{"excluded keeps current", policy.TeammateInput{User: user("breakglass"), Groups: []policy.Group{viewers}, Current: policy.Current{Role: "admin", Access: true}},
			policy.Decision{Excluded: true, Access: true, Role: "admin", Reasons: []string{`excluded from provisioning (exclusions.rego): userName "breakglass@example.com" is listed: left unchanged`}}},
		{"department", policy.TeammateInput{User: user("dan", schema.EnterpriseUserURN, map[string]any{"department": "Support"})},
			policy.Decision{Access: true, Role: "support", Reasons: []string{`department is "Support" → support`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := s.Teammate(ctx, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Revision != s.Revision() || len(d.DecisionID) != 36 {
				t.Errorf("decision not tagged: revision %q, id %q", d.Revision, d.DecisionID)
			}
			d.Revision, d.DecisionID = "", ""
			if !reflect.DeepEqual(d, tt.want) {
				t.Errorf("got  %+v\nwant %+v", d, tt.want)
			}
		})
	}
}

func TestDecisionIDsAreUnique(t *testing.T) {
	s := loadDefault(t)
	seen := map[string]bool{}
	for range 100 {
		d, err := s.Teammate(context.Background(), policy.TeammateInput{User: user("x")})
		if err != nil {
			t.Fatal(err)
		}
		if seen[d.DecisionID] {
			t.Fatalf("duplicate decision id %s", d.DecisionID)
		}
		seen[d.DecisionID] = true
	}
}

// A role computed from an attribute the contract probes do not fill is
// only caught at evaluation: the error wraps ErrUnknownRole and the
// decision still carries revision and id.
func TestUnknownRoleAtEvaluation(t *testing.T) {
	f := policytest.Replace(policytest.Minimal(), "policy.rego",
		`"role": "viewer", "reasons": ["member of Viewers"]} if {
	"viewer" in granted`,
		`"role": input.user.nickName, "reasons": ["nick"]} if {
	input.user.nickName`)
	s, err := policy.LoadFiles(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Teammate(context.Background(), policy.TeammateInput{User: map[string]any{"nickName": "owner"}})
	if !errors.Is(err, policy.ErrUnknownRole) {
		t.Fatalf("err = %v, want ErrUnknownRole", err)
	}
	if d.Revision != s.Revision() || d.DecisionID == "" {
		t.Errorf("failed decision not tagged: %+v", d)
	}
	if _, err := s.Teammate(context.Background(), policy.TeammateInput{User: map[string]any{"nickName": "viewer"}}); err != nil {
		t.Errorf("known role refused: %v", err)
	}
}

// TestBadInput: values JSON cannot carry are an error where the policy
// reads them (what it cannot read is not converted: see TestProjection).
func TestBadInput(t *testing.T) {
	s := loadDefault(t)
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	for name, u := range map[string]map[string]any{
		"NaN":     {"userName": math.NaN()},
		"Inf":     {"externalId": math.Inf(1)},
		"cycle":   {"externalId": cyclic},
		"channel": {"active": make(chan int)},
	} {
		if _, err := s.Teammate(context.Background(), policy.TeammateInput{User: u}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// Value builds the same input as InterfaceToValue on the Go form.
func TestInputValueMatchesInterfaceToValue(t *testing.T) {
	type nested struct {
		A int `json:"a"`
	}
	in := policy.TeammateInput{
		User: user("alice",
			schema.EnterpriseUserURN, map[string]any{"department": "Support", "manager": map[string]any{"value": "u-2"}},
			"n", 1.5, "i", 3, "i64", int64(-4), "nil", nil, "strs", []string{"a", "b"}, "s", nested{A: 1},
			"maps", []map[string]any{{"k": true}}),
		Groups:  []policy.Group{admins, {ID: "x", ExternalID: "ext", DisplayName: "X"}},
		Current: policy.Current{Role: "viewer", Access: true},
	}
	got, err := in.Value()
	if err != nil {
		t.Fatal(err)
	}
	want, err := ast.InterfaceToValue(in.Map())
	if err != nil {
		t.Fatal(err)
	}
	if got.Compare(want) != 0 {
		t.Errorf("Value() =\n%v\nInterfaceToValue(Map()) =\n%v", got, want)
	}
	in.Current.Role = ""
	got, _ = in.Value()
	if r := got.(ast.Object).Get(ast.StringTerm("current")).Get(ast.StringTerm("role")); r == nil || r.Value.Compare(ast.Null{}) != 0 {
		t.Errorf("empty current role is %v, want null", r)
	}
}

func TestTeammateBatch(t *testing.T) {
	s := loadDefault(t)
	ctx := context.Background()
	groups := [][]policy.Group{nil, {admins}, {support, viewers}, {sales}, {viewers}}
	var inputs []policy.TeammateInput
	for i := range 300 {
		u := user(fmt.Sprint("u", i))
		switch {
		case i%97 == 0:
			u["bad"] = math.NaN()
		case i%7 == 0:
			u["active"] = false
		case i%11 == 0:
			u["userName"] = "breakglass@example.com"
		case i%13 == 0:
			u[schema.EnterpriseUserURN] = map[string]any{"department": "Support"}
		}
		inputs = append(inputs, policy.TeammateInput{User: u, Groups: groups[i%len(groups)]})
	}
	for _, workers := range []int{0, 1, 3} {
		ds, errs := s.TeammateBatch(ctx, inputs, workers)
		if len(ds) != len(inputs) || len(errs) != len(inputs) {
			t.Fatalf("workers=%d: %d decisions, %d errors for %d inputs", workers, len(ds), len(errs), len(inputs))
		}
		for i, in := range inputs {
			want, wantErr := s.Teammate(ctx, in)
			if (errs[i] != nil) != (wantErr != nil) {
				t.Fatalf("workers=%d, input %d: err %v, want %v", workers, i, errs[i], wantErr)
			}
			if ds[i].Role != want.Role || ds[i].Access != want.Access || ds[i].Excluded != want.Excluded || !reflect.DeepEqual(ds[i].Reasons, want.Reasons) || ds[i].Revision != s.Revision() || ds[i].DecisionID == "" {
				t.Fatalf("workers=%d, input %d: %+v, want %+v", workers, i, ds[i], want)
			}
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, errs := s.TeammateBatch(cctx, inputs, 2)
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("input %d after cancel: %v", i, err)
		}
	}
	if ds, errs := s.TeammateBatch(ctx, nil, 4); len(ds) != 0 || len(errs) != 0 {
		t.Error("empty batch returned results")
	}
}

func TestConcurrentEvaluation(t *testing.T) {
	s := loadDefault(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				g := []policy.Group{admins, support, viewers, sales}[(i+j)%4]
				if _, _, err := s.Group(context.Background(), g); err != nil {
					t.Error(err)
				}
				if _, err := s.Teammate(context.Background(), policy.TeammateInput{User: user("c"), Groups: []policy.Group{g}}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}
