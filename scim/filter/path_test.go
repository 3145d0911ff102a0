package filter

import (
	"errors"
	"testing"

	"github.com/scimd/scimd/scim/schema"
)

func TestParsePath(t *testing.T) {
	for _, c := range []struct {
		in                  string
		urn, attr, sub, flt string
		canonical           string // "" if the same as in
	}{
		{in: `members[value eq "7f4bc1a3"]`, attr: "members", flt: `value eq "7f4bc1a3"`},
		{in: `emails[type eq "work"].value`, attr: "emails", sub: "value", flt: `type eq "work"`},
		{in: `name.givenName`, attr: "name", sub: "givenName"},
		{in: `Name.GivenName`, attr: "Name", sub: "GivenName"},
		{in: enterprise + `:manager`, urn: enterprise, attr: "manager"},
		{in: enterprise + `:manager.value`, urn: enterprise, attr: "manager", sub: "value"},
		{in: enterprise + `:employeeNumber`, urn: enterprise, attr: "employeeNumber"},
		{in: enterprise, urn: enterprise},
		{in: `members`, attr: "members"},
		{in: `active`, attr: "active"},
		{in: `$ref`, attr: "$ref"},
		{in: `addresses[type eq "work"].postalCode`, attr: "addresses", sub: "postalCode", flt: `type eq "work"`},
		{in: schema.UserURN + `:name.givenName`, urn: schema.UserURN, attr: "name", sub: "givenName"},
		{in: schema.GroupURN + `:members[value eq "x"]`, urn: schema.GroupURN, attr: "members", flt: `value eq "x"`},
		{in: `emails[type eq "work" and primary eq true]`, attr: "emails", flt: `type eq "work" and primary eq true`},
		{in: `emails[type eq "work" and value co "@x" and primary eq true].display`, attr: "emails", sub: "display",
			flt: `type eq "work" and value co "@x" and primary eq true`},
		{in: `emails[not (type eq "work")]`, attr: "emails", flt: `not (type eq "work")`},
		{in: `members[value eq 7f4bc1a3]`, attr: "members", flt: `value eq "7f4bc1a3"`, canonical: `members[value eq "7f4bc1a3"]`},
		{in: `members[Value EQ "x"]`, attr: "members", flt: `Value eq "x"`, canonical: `members[Value eq "x"]`},
		{in: ` members [ value eq "x" ] `, attr: "members", flt: `value eq "x"`, canonical: `members[value eq "x"]`},
		{in: `roles[primary eq "True"]`, attr: "roles", flt: `primary eq "True"`},
	} {
		p, err := ParsePath(c.in)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", c.in, err)
			continue
		}
		flt := ""
		if p.Filter != nil {
			flt = p.Filter.String()
		}
		if p.URN != c.urn || p.Attr != c.attr || p.Sub != c.sub || flt != c.flt {
			t.Errorf("ParsePath(%q) = {%q %q %q [%s]}, want {%q %q %q [%s]}", c.in, p.URN, p.Attr, p.Sub, flt, c.urn, c.attr, c.sub, c.flt)
		}
		want := c.canonical
		if want == "" {
			want = c.in
		}
		if got := p.String(); got != want {
			t.Errorf("ParsePath(%q).String() = %q, want %q", c.in, got, want)
		}
	}
}

func TestPathAttrPath(t *testing.T) {
	for in, want := range map[string]string{
		`emails[type eq "work"].value`: "emails",
		`name.givenName`:               "name",
		enterprise + `:manager.value`:  enterprise + ":manager",
		enterprise:                     enterprise,
	} {
		p, err := ParsePath(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.AttrPath(); got != want {
			t.Errorf("ParsePath(%q).AttrPath() = %q, want %q", in, got, want)
		}
	}
}

func TestParsePathErrors(t *testing.T) {
	for _, in := range []string{
		``,
		`  `,
		`[value eq "x"]`,
		`emails[`,
		`emails[]`,
		`emails]`,
		`emails[type eq "work"`,
		`emails[type eq "work"]value`,
		`emails[type eq "work"] .value`,
		`emails[type eq "work"].value.display`,
		`emails[type eq "work"].1value`,
		`emails[type eq "work"].value eq "x"`,
		`emails[type eq "work"][value eq "x"]`,
		`emails[type[value eq "x"]]`,
		`emails[type eq]`,
		`emails[type eq "x" and]`,
		`name.givenName[type eq "x"]`,
		enterprise + `[value eq "x"]`,
		`a.b.c`,
		`1abc`,
		`emails value`,
		`emails[type eq "work"] extra`,
		`(emails)`,
		`"emails"`,
		`emails[urn:ietf:params:scim:schemas:core:2.0:User:type eq "x"]`,
	} {
		p, err := ParsePath(in)
		if err == nil {
			t.Errorf("ParsePath(%q) = %q, want error", in, p)
			continue
		}
		var fe *Error
		if !errors.As(err, &fe) || fe.Kind != KindInvalidPath || fe.Detail == "" {
			t.Errorf("ParsePath(%q) error = %#v, want *Error of kind %s", in, err, KindInvalidPath)
		}
	}
}

func TestMatchValue(t *testing.T) {
	user := decode(t, userJSON, false)
	group := decode(t, groupJSON, false)
	emails := user["emails"].([]any)
	members := group["members"].([]any)
	manager := user[enterprise].(map[string]any)["manager"]
	for _, c := range []struct {
		rt   *schema.ResourceType
		path string
		elem any
		want bool
	}{
		{schema.UserType, `emails[type eq "work"]`, emails[0], true},
		{schema.UserType, `emails[type eq "work"]`, emails[1], false},
		{schema.UserType, `emails[type eq "WORK"].value`, emails[0], true},
		{schema.UserType, `emails[value eq "BJENSEN@example.com"]`, emails[0], true}, // emails.value is not caseExact
		{schema.UserType, `emails[type eq "work" and primary eq true]`, emails[0], true},
		{schema.UserType, `emails[primary eq true]`, emails[1], false},
		{schema.UserType, `emails[not (primary pr)]`, emails[1], true},
		{schema.GroupType, `members[value eq "2819c223-7f76-453a-919d-413861904646"]`, members[0], true},
		{schema.GroupType, `members[value eq "2819C223-7F76-453A-919D-413861904646"]`, members[0], false}, // caseExact
		{schema.GroupType, `members[value eq "2819c223-7f76-453a-919d-413861904646"]`, members[1], false},
		{schema.GroupType, `members[value eq "u1"]`, "u1", true}, // a bare member id
		{schema.GroupType, `members[value eq "U1"]`, "u1", false},
		{schema.GroupType, `members[type eq "User"]`, "u1", false},
		{schema.GroupType, `members[value eq u1]`, map[string]any{"Value": "u1"}, true},
		{schema.UserType, enterprise + `:manager[value eq "26118915-6090-4610-87e4-49d8ca9f808d"]`, manager, true},
		{schema.UserType, `roles[primary eq true]`, map[string]any{"value": "a", "primary": "True"}, true},
		{nil, `members[value eq "U1"]`, "u1", true}, // no schema: case-insensitive
		{schema.UserType, `emails[type eq "work"]`, nil, false},
		{schema.UserType, `emails[type eq "work"]`, []any{emails[0]}, false},
	} {
		p, err := ParsePath(c.path)
		if err != nil {
			t.Fatalf("ParsePath(%q): %v", c.path, err)
		}
		if got := p.Filter.MatchValue(c.rt, p.AttrPath(), c.elem); got != c.want {
			t.Errorf("ParsePath(%q).Filter.MatchValue(%v) = %v, want %v", c.path, c.elem, got, c.want)
		}
	}
}

// TestMatchValueParsedFilter uses MatchValue on a filter from Parse, with
// the parent given only at match time.
func TestMatchValueParsedFilter(t *testing.T) {
	f, err := Parse(`value eq "ABC" and type eq "User"`)
	if err != nil {
		t.Fatal(err)
	}
	elem := map[string]any{"value": "abc", "type": "user"}
	if f.MatchValue(schema.GroupType, "members", elem) {
		t.Error("members.value is caseExact")
	}
	if !f.MatchValue(schema.UserType, "emails", elem) {
		t.Error("emails.value is not caseExact")
	}
	if !f.MatchValue(schema.UserType, "", elem) {
		t.Error("without a parent, attributes are unknown and case-insensitive")
	}
	// Alternating bindings stay correct.
	for i := 0; i < 3; i++ {
		if f.MatchValue(schema.GroupType, "members", elem) || !f.MatchValue(schema.UserType, "emails", elem) {
			t.Fatal("binding cache mixed up resource types")
		}
	}
}
