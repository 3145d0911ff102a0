# Attribute rules: roles granted by what the identity provider says about a
# user (department, title, …) rather than by a group.
#
# Each rule adds a grant {"role": ..., "reason": ...}. Grants from attribute
# rules compete with grants from groups: the most powerful role wins
# (roles.rego), so a Support employee who is also in "Intercom Admins"
# remains an admin.
package scimd

# The SCIM enterprise extension, where department, division, costCenter,
# organization, employeeNumber and manager live.
enterprise := "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

# Everyone in the Support department gets the support role.
attribute_grants contains {"role": "support", "reason": `department is "Support" → support`} if {
	input.user[enterprise].department == "Support"
}
