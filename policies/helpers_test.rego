# Shared fixtures for the policy tests: groups, users and a helper that asks
# for a decision the way scimd does.
package scimd_test

import data.scimd

admins := {"id": "g-admins", "externalId": "", "displayName": "Intercom Admins"}

support := {"id": "g-support", "externalId": "", "displayName": "Intercom Support"}

viewers := {"id": "g-viewers", "externalId": "", "displayName": "Intercom Viewers"}

# A group the policy does not map.
sales := {"id": "g-sales", "externalId": "", "displayName": "Sales"}

alice := {
	"id": "u-alice",
	"userName": "alice@example.com",
	"active": true,
	"emails": [{"value": "alice@example.com", "primary": true}],
}

no_access := {"role": null, "access": false}

# decide returns data.scimd.teammate for a user in groups, whose role and
# access are `current` now.
decide(user, groups, current) := decision if {
	decision := scimd.teammate with input as {"user": user, "groups": groups, "current": current}
}

# with_department returns user with an enterprise-extension department.
with_department(user, department) := object.union(user, {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": department}})
