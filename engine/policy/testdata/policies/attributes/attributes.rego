# A policy of another shape than the shipped one: most roles come from the
# identity provider's attributes (department, title, cost centre, address,
# user type), read through object.get with defaults, plus a group table
# keyed by externalId. Precedence is the order of roles.
package scimd

enterprise := "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

roles := ["admin", "manager", "analyst", "member"]

group_roles := {
	"00g-it-admins": "admin",
	"00g-finance": "analyst",
	"00g-all-staff": "member",
}

analyst_cost_centers := {"CC-4100", "CC-4200", "CC-7730"}

eu_countries := {"DE", "FR", "IE", "NL", "ES", "IT"}

department := object.get(input.user, [enterprise, "department"], "")

cost_center := object.get(input.user, [enterprise, "costCenter"], "")

title := lower(object.get(input.user, "title", ""))

active := object.get(input.user, "active", true)

group := {"role": group_roles[input.group.externalId]}

grants contains {"role": "admin", "reason": "IT director"} if {
	department == "IT"
	contains(title, "director")
}

grants contains {"role": "manager", "reason": sprintf("title %q → manager", [title])} if {
	some prefix in ["head of", "vp", "manager"]
	startswith(title, prefix)
}

grants contains {"role": "analyst", "reason": sprintf("cost centre %s → analyst", [cost_center])} if {
	cost_center in analyst_cost_centers
}

grants contains {"role": "member", "reason": "employee in the EU → member"} if {
	input.user.userType == "Employee"
	some a in input.user.addresses
	a.primary == true
	upper(a.country) in eu_countries
}

grants contains {"role": role, "reason": sprintf("group %s → %s", [g.externalId, role])} if {
	some g in input.groups
	role := group_roles[g.externalId]
}

ranked := sort([[i, g.reason] | some g in grants; some i, r in roles; r == g.role])

teammate := {"excluded": false, "access": false, "role": null, "reasons": ["inactive"]} if {
	active == false
}

teammate := {
	"excluded": false,
	"access": true,
	"role": roles[ranked[0][0]],
	"reasons": [x[1] | some x in ranked; x[0] == ranked[0][0]],
} if {
	active != false
	count(ranked) > 0
}

teammate := {"excluded": false, "access": false, "role": null, "reasons": ["no attribute or group grants a role"]} if {
	active != false
	count(ranked) == 0
}
