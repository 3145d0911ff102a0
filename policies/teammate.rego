# The decision for one teammate: data.scimd.teammate.
#
# scimd asks it for each teammate with input
#   {"user": <the SCIM user>, "groups": [<their groups>],
#    "current": {"role": <role now, or null>, "access": <true or false>}}
# and expects
#   {"excluded": true|false, "access": true|false,
#    "role": "<one of roles>" or null, "reasons": ["<why>", ...]}.
package scimd

# The decision: the first case that applies, in this order.
teammate := excluded_decision if {
	excluded
} else := deactivated_decision if {
	deactivated
} else := granted_decision if {
	granted_role
} else := no_group_decision

# 1. Excluded teammates (exclusions.rego) are left exactly as they are:
#    their current access and role are repeated, and scimd changes nothing.
excluded_decision := {
	"excluded": true,
	"access": object.get(input, ["current", "access"], false),
	"role": object.get(input, ["current", "role"], null),
	"reasons": excluded_reasons,
}

# The reasons of an excluded decision name the identifier that matched.
excluded_reasons := sort([sprintf("excluded from provisioning (exclusions.rego): %s %q is listed: left unchanged", [m.attribute, m.value]) |
	some m in exclusion_matches
])

# 2. A user deactivated in the identity provider (active: false) loses
#    access, whatever their groups.
deactivated if input.user.active == false

deactivated_decision := {
	"excluded": false,
	"access": false,
	"role": null,
	"reasons": ["deactivated in the identity provider (active: false) → no access"],
}

# 3. A user granted a role by a group or an attribute rule gets the most
#    powerful of the roles granted.
granted_decision := {
	"excluded": false,
	"access": true,
	"role": granted_role,
	"reasons": granted_reasons,
}

# Everything that grants this user a role: each mapped group they are a
# member of (groups.rego) ...
grants contains {"role": role, "reason": sprintf("member of group %q → %s", [g.displayName, role])} if {
	some g in input.groups
	role := group_role(g)
}

# ... and each attribute rule that matches them (attributes.rego).
grants contains grant if {
	some grant in attribute_grants
}

# Of the granted roles, the one ranked highest in `roles` (roles.rego) wins.
granted_role := roles[min({rank(grant.role) | some grant in grants})]

# The reasons name every group or rule that granted the winning role.
granted_reasons := sort([grant.reason | some grant in grants; grant.role == granted_role])

# 4. A user in no mapped group, matched by no attribute rule, gets
#    role_without_group (roles.rego): by default none, so no access.
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
