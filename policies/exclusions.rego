# Teammates that provisioning must never change.
#
# People listed here keep exactly the role and access they have: scimd never
# changes their role and never removes their access, whatever the identity
# provider says. Use it for break-glass accounts, and put the operator's own
# account here too, so that a mistake in the identity provider can never
# lock the operator out. An administrator may still change them by hand.
package scimd

# Matched, ignoring upper/lower case, against the user's userName and each
# of the user's e-mail addresses.
excluded_users := {
	"breakglass@example.com",
	# "you@your-company.example",  <- the operator's own account belongs here
}

# The same list in lower case, for comparison.
excluded_lower := {lower(u) | some u in excluded_users}

# A user is excluded when their userName is in the list ...
excluded if {
	lower(input.user.userName) in excluded_lower
}

# ... or when any of their e-mail addresses is.
excluded if {
	some email in input.user.emails
	lower(email.value) in excluded_lower
}
