# Tests for exclusions.rego: excluded teammates are never changed.
package scimd_test

import data.scimd

breakglass := {"id": "u-bg", "userName": "breakglass@example.com", "active": true}

excluded_reasons := ["excluded from provisioning (exclusions.rego): left unchanged"]

test_excluded_by_user_name_keeps_current_role_and_access if {
	decide(breakglass, [viewers], {"role": "admin", "access": true}) == {
		"excluded": true,
		"access": true,
		"role": "admin",
		"reasons": excluded_reasons,
	}
}

test_excluded_teammate_gets_nothing_from_groups if {
	decide(breakglass, [admins], no_access) == {
		"excluded": true,
		"access": false,
		"role": null,
		"reasons": excluded_reasons,
	}
}

test_excluded_by_email if {
	user := {"id": "u-bg", "userName": "bg", "emails": [{"value": "other@example.com"}, {"value": "breakglass@example.com"}]}
	decide(user, [], {"role": "support", "access": true}).excluded
}

test_exclusion_ignores_case if {
	user := {"id": "u-bg", "userName": "BreakGlass@Example.COM"}
	decide(user, [], no_access).excluded
	scimd.excluded with input as {"user": user}
}

test_exclusion_by_email_ignores_case if {
	scimd.excluded with input as {"user": {"userName": "bg", "emails": [{"value": "BreakGlass@Example.com"}]}}
}

test_exclusion_list_entries_ignore_case if {
	scimd.excluded with input as {"user": {"userName": "ops@example.com"}}
		with scimd.excluded_users as {"Ops@Example.com"}
}

test_excluded_even_when_deactivated if {
	user := object.union(breakglass, {"active": false})
	decide(user, [], {"role": "admin", "access": true}) == {
		"excluded": true,
		"access": true,
		"role": "admin",
		"reasons": excluded_reasons,
	}
}

test_excluded_without_current_state if {
	scimd.teammate == {
		"excluded": true,
		"access": false,
		"role": null,
		"reasons": excluded_reasons,
	} with input as {"user": breakglass, "groups": [admins]}
}

test_other_users_are_not_excluded if {
	not scimd.excluded with input as {"user": alice}
	not decide(alice, [admins], no_access).excluded
}

test_non_string_user_name_or_email_is_not_an_error if {
	not scimd.excluded with input as {"user": {"userName": 7, "emails": [{"value": 1}, "x"]}}
}
