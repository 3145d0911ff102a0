package scimd_test

import data.scimd

decide(user, groups) := d if {
	d := scimd.teammate with input as {"user": user, "groups": groups, "current": {"role": null, "access": false}}
}

test_heaviest_group_wins if {
	d := decide({"userName": "a@example.com"}, [{"displayName": "eng-web"}, {"displayName": "eng-platform-leads"}])
	d.role == "admin"
	d.access
}

test_contractor_capped if {
	d := decide({"userName": "c@contractors.example.com"}, [{"displayName": "founders"}])
	d.role == "editor"
	d.reasons[count(d.reasons) - 1] == "contractor: capped at editor"
}

test_no_group if {
	not decide({"userName": "n"}, [{"displayName": "marketing"}]).access
}

test_deactivated if {
	decide({"userName": "x", "active": false}, [{"displayName": "founders"}]).reasons == ["deactivated → no access"]
}

test_group_query if {
	scimd.group == {"role": "viewer"} with input as {"group": {"displayName": "sales-emea"}}
}
