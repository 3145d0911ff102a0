package scimd_test

import data.scimd

decide(user, groups, current) := d if {
	d := scimd.teammate with input as {"user": user, "groups": groups, "current": current}
}

none := {"role": null, "access": false}

test_partner_domain_excluded if {
	d := decide({"userName": "p@Partner.Example.net"}, [{"displayName": "Admins"}], {"role": "member", "access": true})
	d.excluded
	d.role == "member"
}

test_internal_admin if {
	u := {"userName": "a", "emails": [{"value": "a@example.com", "primary": true}]}
	decide(u, [{"displayName": "Everyone"}, {"displayName": "Admins"}], none).role == "admin"
}

test_external_guest if {
	u := {"userName": "g", "emails": [{"value": "g@gmail.example", "primary": true}]}
	decide(u, [{"displayName": "Admins"}], none).role == "guest"
}

test_no_group if {
	not decide({"userName": "n"}, [], none).access
}
