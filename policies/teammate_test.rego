# Tests for teammate.rego: the decision for one teammate.
package scimd_test

import data.scimd

test_member_of_mapped_group_gets_access if {
	decide(alice, [support], no_access) == {
		"excluded": false,
		"access": true,
		"role": "support",
		"reasons": [`member of group "Intercom Support" → support`],
	}
}

test_unmapped_groups_grant_nothing if {
	decide(alice, [sales], no_access) == {
		"excluded": false,
		"access": false,
		"role": null,
		"reasons": ["in no mapped group → no access"],
	}
}

test_unmapped_group_is_left_out_of_reasons if {
	decide(alice, [sales, viewers], no_access).reasons == [`member of group "Intercom Viewers" → viewer`]
}

test_leaving_last_mapped_group_loses_access if {
	before := decide(alice, [admins, sales], no_access)
	before.access
	before.role == "admin"

	after := decide(alice, [sales], {"role": "admin", "access": true})
	after.access == false
	after.role == null
}

test_deactivated_user_loses_access if {
	user := object.union(alice, {"active": false})
	decide(user, [admins], {"role": "admin", "access": true}) == {
		"excluded": false,
		"access": false,
		"role": null,
		"reasons": ["deactivated in the identity provider (active: false) → no access"],
	}
}

test_user_without_active_attribute_counts_as_active if {
	user := object.remove(alice, ["active"])
	decide(user, [viewers], no_access).role == "viewer"
}

test_only_active_false_deactivates if {
	decide(object.union(alice, {"active": null}), [viewers], no_access).role == "viewer"
	decide(object.union(alice, {"active": "false"}), [viewers], no_access).role == "viewer"
}

test_group_mapped_by_external_id_grants_its_role if {
	renamed := {"id": "g-x", "externalId": "00gX", "displayName": "Renamed Admins"}
	d := decide(alice, [renamed], no_access) with scimd.group_roles as {"00gX": "admin"}
	d.role == "admin"
	d.reasons == [`member of group "Renamed Admins" → admin`]
}

test_reasons_name_every_group_granting_the_winning_role if {
	eu := {"id": "g-eu", "externalId": "", "displayName": "Intercom Admins EU"}
	d := decide(alice, [eu, admins, viewers], no_access) with scimd.group_roles as {
		"Intercom Admins": "admin",
		"Intercom Admins EU": "admin",
		"Intercom Viewers": "viewer",
	}
	d.role == "admin"
	d.reasons == [
		`member of group "Intercom Admins EU" → admin`,
		`member of group "Intercom Admins" → admin`,
	]
}

test_every_decision_names_a_known_role_or_null if {
	users := [alice, object.union(alice, {"active": false}), with_department(alice, "Support")]
	groupsets := [[], [sales], [admins], [support, viewers], [admins, support, viewers, sales]]
	every user in users {
		every groups in groupsets {
			d := decide(user, groups, no_access)
			is_boolean(d.access)
			d.excluded == false
			d.role in {null, "admin", "support", "viewer"}
			count(d.reasons) > 0
		}
	}
}
