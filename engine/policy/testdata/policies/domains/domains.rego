# A policy of another shape than the shipped one: e-mail domains decide.
# Accounts of partner and acquired domains are excluded (left as they
# are), internal accounts get their group's role, others are guests.
package scimd

roles := ["admin", "member", "guest"]

excluded_domains := {"partner.example.net", "acquired.example.org"}

internal_domains := {"example.com", "eu.example.com"}

group_roles := {"Admins": "admin", "Everyone": "member", "Engineering": "member"}

domain(addr) := lower(parts[1]) if {
	parts := split(addr, "@")
	count(parts) == 2
}

excluded if {
	some e in input.user.emails
	domain(e.value) in excluded_domains
}

excluded if domain(input.user.userName) in excluded_domains

internal_account if {
	some e in input.user.emails
	e.primary == true
	domain(e.value) in internal_domains
}

group := {"role": group_roles[input.group.displayName]}

group_grants contains role if {
	some g in input.groups
	role := group_roles[g.displayName]
}

best := roles[min({i | some i, r in roles; r in group_grants})]

teammate := {
	"excluded": true,
	"access": object.get(input, ["current", "access"], false),
	"role": object.get(input, ["current", "role"], null),
	"reasons": ["e-mail domain excluded from provisioning: left unchanged"],
} if {
	excluded
} else := {"excluded": false, "access": false, "role": null, "reasons": ["deactivated"]} if {
	input.user.active == false
} else := {"excluded": false, "access": true, "role": best, "reasons": [sprintf("internal account, group role %s", [best])]} if {
	internal_account
	best
} else := {"excluded": false, "access": true, "role": "guest", "reasons": ["external account in a group → guest"]} if {
	not internal_account
	count(group_grants) > 0
} else := {"excluded": false, "access": false, "role": null, "reasons": ["no group grants a role"]}
