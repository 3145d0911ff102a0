package policy_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/scim/schema"
)

// TestExplain: the explanation names the rules (file:line, values) that
// made the decision, the groups and attributes that mattered, and the
// precedence step.
func TestExplain(t *testing.T) {
	s := loadDefault(t)
	ctx := context.Background()
	u := user("alice@example.com")
	u[schema.EnterpriseUserURN] = map[string]any{"department": "Support", "employeeNumber": "7"}
	u["title"] = "Engineer"
	in := policy.TeammateInput{User: u, Groups: []policy.Group{
		{ID: "g1", DisplayName: "Intercom Admins"},
		{ID: "g2", DisplayName: "Intercom Viewers"},
		{ID: "g3", DisplayName: "Sales"},
	}}
	ex, err := s.Explain(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Decision.Role != "admin" || !ex.Decision.Access {
		t.Fatalf("decision %+v", ex.Decision)
	}
	var groupRole, teammate bool
	for _, r := range ex.Rules {
		if r.File == "" || r.Row == 0 {
			t.Errorf("rule without location: %+v", r)
		}
		if r.Rule == "data.scimd.group_role" && len(r.Args) == 1 && r.Value == "admin" {
			groupRole = true
		}
		if r.Rule == "data.scimd.teammate" {
			teammate = true
		}
	}
	if !groupRole || !teammate {
		t.Errorf("rules lack group_role(admins) = admin or teammate: %+v", ex.Rules)
	}
	p := ex.Precedence
	if p.Rule != "data.scimd.teammate" || !strings.HasSuffix(p.File, "teammate.rego") || p.Branch != 2 || p.Rank != 0 {
		t.Errorf("precedence %+v, want teammate.rego, branch 2 (granted), rank 0", p)
	}
	// Only the admins group matters: without it, support (the department)
	// wins; without the viewers or Sales group nothing changes.
	var names []string
	for _, f := range ex.Mattered {
		names = append(names, f.Kind+":"+f.Name+"→"+f.Without)
	}
	if !slices.Equal(names, []string{"group:Intercom Admins→role support"}) {
		t.Errorf("mattered %v", names)
	}

	// A deactivated user: the attribute active mattered.
	u2 := user("bob@example.com")
	u2["active"] = false
	ex, err = s.Explain(ctx, policy.TeammateInput{User: u2, Groups: in.Groups[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if ex.Precedence.Branch != 1 || len(ex.Mattered) != 1 || ex.Mattered[0].Name != "active" || ex.Mattered[0].Without != "role admin" {
		t.Errorf("deactivated: precedence %+v, mattered %+v", ex.Precedence, ex.Mattered)
	}
}
