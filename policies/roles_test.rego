# Tests for roles.rego: precedence, and teammates in no mapped group.
package scimd_test

import data.scimd

test_roles_highest_precedence_first if {
	scimd.roles == ["admin", "support", "viewer"]
}

test_rank_follows_roles if {
	scimd.rank("admin") == 0
	scimd.rank("support") == 1
	scimd.rank("viewer") == 2
	not scimd.rank("owner")
}

test_admin_wins_over_viewer_and_reason_names_the_group if {
	decide(alice, [viewers, admins], no_access) == {
		"excluded": false,
		"access": true,
		"role": "admin",
		"reasons": [`member of group "Intercom Admins" → admin`],
	}
}

test_support_wins_over_viewer if {
	d := decide(alice, [viewers, support], no_access)
	d.role == "support"
	d.reasons == [`member of group "Intercom Support" → support`]
}

test_admin_wins_over_support_and_viewer if {
	decide(alice, [support, viewers, admins], no_access).role == "admin"
}

test_no_mapped_group_means_no_access if {
	decide(alice, [], {"role": "viewer", "access": true}) == {
		"excluded": false,
		"access": false,
		"role": null,
		"reasons": ["in no mapped group → no access"],
	}
}

test_role_without_group_is_null_by_default if {
	scimd.role_without_group == null
}

test_role_without_group_when_configured if {
	decide(alice, [sales], no_access) == {
		"excluded": false,
		"access": true,
		"role": "viewer",
		"reasons": ["in no mapped group → default role viewer"],
	} with scimd.role_without_group as "viewer"
}

test_role_without_group_is_the_configured_role if {
	decide(alice, [], no_access).role == "support" with scimd.role_without_group as "support"
}

test_role_without_group_does_not_override_a_group if {
	decide(alice, [admins], no_access).role == "admin" with scimd.role_without_group as "viewer"
}
