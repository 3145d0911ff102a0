# Which identity-provider group grants which role.
#
# The identity provider (Okta, Entra ID, …) pushes groups and their members
# to scimd. A group listed below is "mapped": its members get its role. A
# group that is not listed is "inactive": it grants nothing and changes
# nobody, whatever its members.
package scimd

# Each key is compared with the group's displayName (the name shown in the
# identity provider) AND with its externalId (the identity provider's own
# id for the group, which does not change when the group is renamed), so
# either may be used as a key. Example of a key by id:
#   "00g1a2b3c4d5e6f7g8h9": "admin",
group_roles := {
	"Intercom Admins": "admin",
	"Intercom Support": "support",
	"Intercom Viewers": "viewer",
}

# group_role(g) is the role group g grants; it is undefined (no role) for a
# group that is not in the table. A match by externalId is tried first.
group_role(g) := role if {
	role := group_roles[g.externalId]
} else := role if {
	role := group_roles[g.displayName]
}

# What scimd asks about each group: data.scimd.group with input
# {"group": {"id", "externalId", "displayName"}}. The answer is
# {"role": "..."} for a mapped group; no answer means the group is inactive.
group := {"role": group_role(input.group)}
