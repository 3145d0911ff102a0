package policy_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimd/scimd/engine/policy"
)

// policyMutations break one rule of the default policy each: a wrong role,
// a dropped condition, a reordered case, a changed reason. Every one must
// make the policy's own tests fail, so that the gate refuses it.
var policyMutations = []struct{ file, old, new string }{
	{"roles.rego", `roles := ["admin", "support", "viewer"]`, `roles := ["support", "admin", "viewer"]`},
	{"roles.rego", `roles := ["admin", "support", "viewer"]`, `roles := ["admin", "support", "viewer", "owner"]`},
	{"roles.rego", `default role_without_group := null`, `default role_without_group := "viewer"`},
	{"roles.rego", `	r == role
`, `	r != role
`},
	{"roles.rego", `rank(role) := i if {`, `rank(role) := i + 1 if {`},
	{"groups.rego", `"Intercom Admins": "admin"`, `"Intercom Admins": "support"`},
	{"groups.rego", `"Intercom Support": "support"`, `"Intercom Support": "viewer"`},
	{"groups.rego", `"Intercom Viewers": "viewer"`, `"Intercom Viewers": "support"`},
	{"groups.rego", `"Intercom Admins": "admin",
`, ``},
	{"groups.rego", `role := group_roles[g.externalId]`, `role := group_roles[g.id]`},
	{"groups.rego", `role := group_roles[g.displayName]`, `role := group_roles[lower(g.displayName)]`},
	{"groups.rego", `group := {"role": group_role(input.group)}`, `group := {"role": group_role(input.group)} if input.group.id`},
	{"groups.rego", `group := {"role": group_role(input.group)}`, `group := {"role": object.get(group_roles, input.group.displayName, "viewer")}`},
	{"groups.rego", `group_role(g) := role if {
	role := group_roles[g.externalId]
} else := role if {
	role := group_roles[g.displayName]
}`, `group_role(g) := role if {
	role := group_roles[g.displayName]
} else := role if {
	role := group_roles[g.externalId]
}`},
	{"exclusions.rego", `"breakglass@example.com",`, `"breakglass@example.org",`},
	{"exclusions.rego", `excluded_lower := {lower(u) | some u in excluded_users}`, `excluded_lower := excluded_users`},
	{"exclusions.rego", `	lower(input.user.userName) in excluded_lower`, `	input.user.userName in excluded_lower`},
	{"exclusions.rego", `	lower(email.value) in excluded_lower`, `	email.value in excluded_lower`},
	{"exclusions.rego", `	lower(email.value) in excluded_lower`, `	false`},
	{"attributes.rego", `input.user[enterprise].department == "Support"`, `input.user.department == "Support"`},
	{"attributes.rego", `input.user[enterprise].department == "Support"`, `input.user[enterprise].department != "Sales"`},
	{"attributes.rego", `{"role": "support", "reason"`, `{"role": "viewer", "reason"`},
	{"attributes.rego", `enterprise := "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`, `enterprise := "urn:ietf:params:scim:schemas:core:2.0:User"`},
	{"teammate.rego", `teammate := excluded_decision if {
	excluded
} else := deactivated_decision if {
	deactivated
}`, `teammate := deactivated_decision if {
	deactivated
} else := excluded_decision if {
	excluded
}`},
	{"teammate.rego", `"access": object.get(input, ["current", "access"], false),`, `"access": true,`},
	{"teammate.rego", `"access": object.get(input, ["current", "access"], false),`, `"access": object.get(input, ["current", "access"], true),`},
	{"teammate.rego", `"role": object.get(input, ["current", "role"], null),`, `"role": null,`},
	{"teammate.rego", `"excluded": true,`, `"excluded": false,`},
	{"teammate.rego", `deactivated if input.user.active == false`, `deactivated if input.user.active != true`},
	{"teammate.rego", `deactivated if input.user.active == false`, `deactivated if false`},
	{"teammate.rego", `	"access": false,
	"role": null,
	"reasons": ["deactivated`, `	"access": false,
	"role": "viewer",
	"reasons": ["deactivated`},
	{"teammate.rego", `granted_role := roles[min({rank(grant.role) | some grant in grants})]`, `granted_role := roles[max({rank(grant.role) | some grant in grants})]`},
	{"teammate.rego", `grant.role == granted_role])`, `true])`},
	{"teammate.rego", `granted_reasons := sort(`, `granted_reasons := array.reverse(`},
	{"teammate.rego", `sprintf("member of group %q → %s", [g.displayName, role])`, `sprintf("member of group %q", [g.displayName])`},
	{"teammate.rego", `grants contains grant if {
	some grant in attribute_grants
}`, ``},
	{"teammate.rego", `	some g in input.groups
	role := group_role(g)`, `	some g in input.groups
	role := group_roles[g.displayName]`},
	{"teammate.rego", `	"role": role_without_group,
	"reasons": [sprintf`, `	"role": "viewer",
	"reasons": [sprintf`},
	{"teammate.rego", `} if {
	role_without_group == null
}`, `} if {
	true
}`},
	{"teammate.rego", `"reasons": ["in no mapped group → no access"]`, `"reasons": []`},
	{"teammate.rego", `	"access": true,
	"role": granted_role,`, `	"access": false,
	"role": granted_role,`},
}

// TestDefaultPolicyTestsCatchEveryMutation runs the gate on each mutation
// of the default policy. A mutation whose pattern no longer occurs (the
// policy was edited) is logged, not failed; one that passes the gate is a
// rule the tests do not pin down.
func TestDefaultPolicyTestsCatchEveryMutation(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the gate once per mutation")
	}
	orig := map[string][]byte{}
	entries, err := os.ReadDir(defaultPolicies)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if policy.IsPolicyFile(e.Name()) {
			b, err := os.ReadFile(filepath.Join(defaultPolicies, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			orig[e.Name()] = b
		}
	}
	if _, err := policy.LoadFiles(context.Background(), orig); err != nil {
		t.Fatalf("default policy refused: %v", err)
	}
	applied := 0
	for i, m := range policyMutations {
		src := string(orig[m.file])
		if !strings.Contains(src, m.old) {
			t.Logf("mutation %d of %s no longer applies: %q", i, m.file, m.old)
			continue
		}
		applied++
		files := maps.Clone(orig)
		files[m.file] = []byte(strings.Replace(src, m.old, m.new, 1))
		_, err := policy.LoadFiles(context.Background(), files)
		var re *policy.RefusedError
		if !errors.As(err, &re) {
			t.Errorf("mutation %d of %s survived the gate: %q → %q", i, m.file, m.old, m.new)
		}
	}
	if applied < len(policyMutations)/2 {
		t.Errorf("only %d of %d mutations apply: update policyMutations to the policy", applied, len(policyMutations))
	}
}
