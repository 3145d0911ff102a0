# Roles, and which one wins when several apply.
#
# A teammate can be in several mapped groups at once, for example both
# "Intercom Admins" and "Intercom Viewers". They then get the role that
# comes FIRST in the list below: it is ordered from most to least powerful.
# Only these roles exist; scimd refuses a policy that grants any other.
package scimd

roles := ["admin", "support", "viewer"]

# A teammate who is in none of the mapped groups (groups.rego) and matches
# no attribute rule (attributes.rego) gets NO ACCESS: role null.
#
# To give such teammates a role instead, uncomment the next line; it then
# takes precedence over the `default` line below it.
# role_without_group := "viewer"
default role_without_group := null

# rank(role) is the position of a role in the list above: 0 for the most
# powerful. The decision (teammate.rego) picks the granted role with the
# smallest rank.
rank(role) := i if {
	some i, r in roles
	r == role
}
