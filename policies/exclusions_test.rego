# Tests for exclusions.rego: excluded teammates are never changed, and only
# identifiers the IdP's administrators control can exclude someone.
package scimd_test

import data.scimd

breakglass := {"id": "u-bg", "userName": "breakglass@example.com", "active": true}

excluded_reasons := [`excluded from provisioning (exclusions.rego): userName "breakglass@example.com" is listed: left unchanged`]

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

# A user may edit their secondary e-mails in many IdPs: listing an e-mail
# must never let them exclude themselves from deprovisioning.
test_email_never_excludes if {
	user := {"id": "u-x", "userName": "mallory@example.com", "active": false, "emails": [
		{"value": "mallory@example.com", "primary": true},
		{"value": "BreakGlass@example.com"},
	]}
	not scimd.excluded with input as {"user": user}
	decide(user, [support], {"role": "support", "access": true}) == {
		"excluded": false,
		"access": false,
		"role": null,
		"reasons": ["deactivated in the identity provider (active: false) → no access"],
	}
}

test_other_editable_attributes_never_exclude if {
	user := {
		"id": "u-x", "userName": "mallory@example.com", "displayName": "breakglass@example.com",
		"nickName": "breakglass@example.com", "title": "breakglass@example.com",
	}
	not scimd.excluded with input as {"user": user}
}

test_exclusion_by_user_name_ignores_case if {
	user := {"id": "u-bg", "userName": "BreakGlass@Example.COM"}
	decide(user, [], no_access).excluded
	decide(user, [], no_access).reasons == [`excluded from provisioning (exclusions.rego): userName "BreakGlass@Example.COM" is listed: left unchanged`]
}

test_exclusion_list_entries_ignore_case if {
	scimd.excluded with input as {"user": {"userName": "ops@example.com"}}
		with scimd.excluded_user_names as {"Ops@Example.com"}
}

test_excluded_by_external_id if {
	user := {"id": "u-9", "externalId": "00u1abcd", "userName": "ops@example.com"}
	d := decide(user, [admins], {"role": "viewer", "access": true}) with scimd.excluded_external_ids as {"00u1abcd"}
	d.excluded
	d.role == "viewer"
	d.reasons == [`excluded from provisioning (exclusions.rego): externalId "00u1abcd" is listed: left unchanged`]
}

test_external_id_matches_exactly if {
	not scimd.excluded with input as {"user": {"externalId": "00U1ABCD"}}
		with scimd.excluded_external_ids as {"00u1abcd"}
}

test_excluded_by_id if {
	user := {"id": "2819c223-7f76-453a-919d-413861904646", "userName": "ops@example.com"}
	d := decide(user, [], {"role": "admin", "access": true}) with scimd.excluded_ids as {"2819c223-7f76-453a-919d-413861904646"}
	d.excluded
	d.access
	d.reasons == [`excluded from provisioning (exclusions.rego): id "2819c223-7f76-453a-919d-413861904646" is listed: left unchanged`]
}

test_every_matching_identifier_is_a_reason if {
	user := object.union(breakglass, {"externalId": "00u1"})
	d := decide(user, [], no_access) with scimd.excluded_external_ids as {"00u1"}
	d.reasons == [
		`excluded from provisioning (exclusions.rego): externalId "00u1" is listed: left unchanged`,
		`excluded from provisioning (exclusions.rego): userName "breakglass@example.com" is listed: left unchanged`,
	]
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

test_non_string_identifiers_are_not_an_error if {
	not scimd.excluded with input as {"user": {"userName": 7, "externalId": 1, "id": ["u-bg"], "emails": [{"value": 1}, "x"]}}
}
