# A policy of another shape than the shipped one: roles carry weights, the
# heaviest grant wins, groups are matched by regular expressions, and
# contractors are capped at a role whatever their groups say.
package scimd

roles := ["owner", "admin", "editor", "viewer"]

weights := {"owner": 100, "admin": 80, "editor": 50, "viewer": 10}

# The first matching patterns decide; several may match (the heaviest wins).
group_patterns := [
	{"pattern": `^founders$`, "role": "owner"},
	{"pattern": `^eng-(platform|infra)-leads$`, "role": "admin"},
	{"pattern": `^eng-[a-z0-9-]+$`, "role": "editor"},
	{"pattern": `^(sales|support|ops)-[a-z0-9-]+$`, "role": "viewer"},
]

contractor_cap := "editor"

heaviest(rs) := r if {
	top := max({weights[x] | some x in rs})
	some r in rs
	weights[r] == top
}

group_role(name) := heaviest({p.role | some p in group_patterns; regex.match(p.pattern, name)})

group := {"role": group_role(input.group.displayName)}

contractor if input.user.userType == "Contractor"

contractor if endswith(lower(input.user.userName), "@contractors.example.com")

grants contains {"role": role, "reason": sprintf("group %q → %s (weight %d)", [g.displayName, role, weights[role]])} if {
	some g in input.groups
	role := group_role(g.displayName)
}

grants contains {"role": "viewer", "reason": "title Auditor → viewer (weight 10)"} if input.user.title == "Auditor"

capped(role) := contractor_cap if {
	contractor
	weights[role] > weights[contractor_cap]
} else := role

effective := {capped(g.role) | some g in grants}

granted := heaviest(effective)

cap_reasons := [sprintf("contractor: capped at %s", [contractor_cap])] if {
	contractor
	some g in grants
	weights[g.role] > weights[contractor_cap]
} else := []

default teammate := {"excluded": false, "access": false, "role": null, "reasons": ["no group or attribute grants a role"]}

teammate := {"excluded": false, "access": false, "role": null, "reasons": ["deactivated → no access"]} if {
	input.user.active == false
}

teammate := {
	"excluded": false,
	"access": true,
	"role": granted,
	"reasons": array.concat(sort([g.reason | some g in grants]), cap_reasons),
} if {
	not input.user.active == false
	granted
}
