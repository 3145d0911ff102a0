# Teammates that provisioning must never change.
#
# People listed here keep exactly the role and access they have: scimd never
# changes their role and never removes their access, whatever the identity
# provider says. Use it for break-glass accounts, and put the operator's own
# account here too, so that a mistake in the identity provider can never
# lock the operator out. An administrator may still change them by hand.
#
# Exclusions match only identifiers the identity provider's administrators
# control: the userName, the IdP's externalId and scimd's own SCIM id. They
# never match e-mail addresses or any other attribute that users may edit
# themselves (many IdPs let users add secondary e-mails): otherwise anyone
# could exclude themselves from deprovisioning. See README.md.
package scimd

# userNames, matched ignoring upper/lower case.
excluded_user_names := {
	"breakglass@example.com",
	# "you@your-company.example",  <- the operator's own account belongs here
}

# externalIds (the identity provider's immutable user id), matched exactly.
excluded_external_ids := set()

# SCIM ids assigned by scimd (GET /api/v1/teammates shows them), matched
# exactly.
excluded_ids := set()

# The userName list in lower case, for comparison.
excluded_user_names_lower := {lower(u) | some u in excluded_user_names}

# exclusion_matches names each identifier of the user that is listed: the
# attribute and its value. The decision's reasons repeat them, so the audit
# log says why a teammate is excluded.
exclusion_matches contains {"attribute": "userName", "value": input.user.userName} if {
	is_string(input.user.userName)
	lower(input.user.userName) in excluded_user_names_lower
}

exclusion_matches contains {"attribute": "externalId", "value": input.user.externalId} if {
	is_string(input.user.externalId)
	input.user.externalId in excluded_external_ids
}

exclusion_matches contains {"attribute": "id", "value": input.user.id} if {
	is_string(input.user.id)
	input.user.id in excluded_ids
}

# A user is excluded when any of those identifiers is listed.
excluded if count(exclusion_matches) > 0
