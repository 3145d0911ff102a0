package policy

// referenceLogic holds the decision logic of the shipped default policy
// (policies/teammate.rego, and the logic rules of groups.rego,
// exclusions.rego and roles.rego), rule for rule. A policy set whose rules
// of these names are exactly these (ignoring comments and layout) has the
// default shape, and its decisions can be made from a native decision table
// (see native.go). TestReferenceLogicMatchesShippedPolicy keeps this copy
// equal to the files.
//
// The data rules the logic reads (group_roles, excluded_users, roles,
// role_without_group) and the attribute rules (attribute_grants) are not
// part of it: they may change freely within the forms native.go accepts.
const referenceLogic = `package scimd

teammate := excluded_decision if {
	excluded
} else := deactivated_decision if {
	deactivated
} else := granted_decision if {
	granted_role
} else := no_group_decision

excluded_decision := {
	"excluded": true,
	"access": object.get(input, ["current", "access"], false),
	"role": object.get(input, ["current", "role"], null),
	"reasons": ["excluded from provisioning (exclusions.rego): left unchanged"],
}

deactivated if input.user.active == false

deactivated_decision := {
	"excluded": false,
	"access": false,
	"role": null,
	"reasons": ["deactivated in the identity provider (active: false) → no access"],
}

granted_decision := {
	"excluded": false,
	"access": true,
	"role": granted_role,
	"reasons": granted_reasons,
}

grants contains {"role": role, "reason": sprintf("member of group %q → %s", [g.displayName, role])} if {
	some g in input.groups
	role := group_role(g)
}

grants contains grant if {
	some grant in attribute_grants
}

granted_role := roles[min({rank(grant.role) | some grant in grants})]

granted_reasons := sort([grant.reason | some grant in grants; grant.role == granted_role])

no_group_decision := {
	"excluded": false,
	"access": false,
	"role": null,
	"reasons": ["in no mapped group → no access"],
} if {
	role_without_group == null
} else := {
	"excluded": false,
	"access": true,
	"role": role_without_group,
	"reasons": [sprintf("in no mapped group → default role %s", [role_without_group])],
}

group_role(g) := role if {
	role := group_roles[g.externalId]
} else := role if {
	role := group_roles[g.displayName]
}

group := {"role": group_role(input.group)}

excluded_lower := {lower(u) | some u in excluded_users}

excluded if {
	lower(input.user.userName) in excluded_lower
}

excluded if {
	some email in input.user.emails
	lower(email.value) in excluded_lower
}

rank(role) := i if {
	some i, r in roles
	r == role
}
`

// Reasons the reference logic gives, as the native table writes them.
const (
	reasonExcluded    = "excluded from provisioning (exclusions.rego): left unchanged"
	reasonDeactivated = "deactivated in the identity provider (active: false) → no access"
	reasonNoGroup     = "in no mapped group → no access"
)
