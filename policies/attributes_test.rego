# Tests for attributes.rego: roles granted by user attributes.
package scimd_test

test_support_department_gets_support if {
	decide(with_department(alice, "Support"), [], no_access) == {
		"excluded": false,
		"access": true,
		"role": "support",
		"reasons": [`department is "Support" → support`],
	}
}

test_support_department_and_support_group_give_both_reasons if {
	decide(with_department(alice, "Support"), [support], no_access).reasons == [
		`department is "Support" → support`,
		`member of group "Intercom Support" → support`,
	]
}

test_other_department_gets_nothing if {
	decide(with_department(alice, "Sales"), [], no_access).access == false
	decide(with_department(alice, "Engineering"), [], no_access).access == false
	decide(with_department(alice, "support"), [], no_access).access == false
}

test_department_outside_the_enterprise_extension_is_ignored if {
	user := object.union(alice, {"department": "Support"})
	decide(user, [], no_access).access == false
}

test_admin_group_wins_over_support_department if {
	d := decide(with_department(alice, "Support"), [admins], no_access)
	d.role == "admin"
	d.reasons == [`member of group "Intercom Admins" → admin`]
}

test_support_department_wins_over_viewer_group if {
	decide(with_department(alice, "Support"), [viewers], no_access).role == "support"
}
