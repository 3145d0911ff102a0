package scimd_test

import data.scimd

ent := "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

decide(user, groups) := d if {
	d := scimd.teammate with input as {"user": user, "groups": groups, "current": {"role": null, "access": false}}
}

test_it_director_is_admin if {
	decide({"title": "IT Director", ent: {"department": "IT"}}, []).role == "admin"
}

test_cost_center_analyst if {
	decide({ent: {"costCenter": "CC-4200"}}, []).role == "analyst"
}

test_eu_employee_member if {
	d := decide({"userType": "Employee", "addresses": [{"primary": true, "country": "de"}]}, [])
	d.role == "member"
}

test_group_by_external_id if {
	decide({}, [{"externalId": "00g-finance", "displayName": "Finance"}]).role == "analyst"
}

test_nothing if {
	not decide({"title": "Engineer"}, []).access
}

test_inactive if {
	decide({"active": false, "title": "VP Sales"}, []).reasons == ["inactive"]
}
