# Tests for groups.rego: which group grants which role.
package scimd_test

import data.scimd

test_admins_group_grants_admin if {
	scimd.group == {"role": "admin"} with input as {"group": admins}
}

test_support_group_grants_support if {
	scimd.group == {"role": "support"} with input as {"group": support}
}

test_viewers_group_grants_viewer if {
	scimd.group == {"role": "viewer"} with input as {"group": viewers}
}

test_group_needs_only_a_display_name if {
	scimd.group == {"role": "admin"} with input as {"group": {"displayName": "Intercom Admins"}}
}

test_unmapped_group_is_inactive if {
	not scimd.group with input as {"group": sales}
}

test_display_name_must_match_exactly if {
	not scimd.group with input as {"group": {"id": "g", "externalId": "", "displayName": "intercom admins"}}
}

test_group_can_be_mapped_by_external_id if {
	scimd.group == {"role": "admin"} with input as {"group": {"id": "g", "externalId": "00gABC", "displayName": "Renamed"}}
		with scimd.group_roles as {"00gABC": "admin"}
}

test_external_id_match_wins_over_display_name if {
	scimd.group == {"role": "viewer"} with input as {"group": {"id": "g", "externalId": "00gABC", "displayName": "Intercom Admins"}}
		with scimd.group_roles as {"00gABC": "viewer", "Intercom Admins": "admin"}
}

test_group_role_of_each_table_entry if {
	every name, role in scimd.group_roles {
		scimd.group_role({"id": "g", "externalId": "", "displayName": name}) == role
	}
}
