package filter

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/scimd/scimd/scim/schema"
)

const userJSON = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
  "id": "2819c223-7f76-453a-919d-413861904646",
  "externalId": "Bjensen-Ext",
  "userName": "bjensen@example.com",
  "name": {"familyName": "Jensen", "givenName": "Barbara", "formatted": "Ms. Barbara J Jensen III"},
  "displayName": "Babs Jensen",
  "nickName": "",
  "profileUrl": null,
  "title": "Tour Guide",
  "userType": "Employee",
  "active": true,
  "emails": [
    {"value": "bjensen@example.com", "type": "work", "primary": true},
    {"value": "babs@jensen.org", "type": "home"}
  ],
  "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
  "addresses": [{"type": "work", "postalCode": "91608", "locality": "Hollywood"}],
  "ims": [],
  "x509Certificates": [{}],
  "photos": [{"value": ""}],
  "groups": [{"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides"}],
  "loginCount": 42,
  "meta": {
    "resourceType": "User",
    "created": "2010-01-23T04:56:22Z",
    "lastModified": "2011-05-13T04:42:34Z",
    "version": "W/\"3694e05e9dff590\""
  },
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
    "employeeNumber": "701984",
    "department": "Tour Operations",
    "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
  }
}`

const groupJSON = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
  "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
  "externalId": "grp-1",
  "displayName": "Tour Guides",
  "members": [
    {"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen", "type": "User",
     "$ref": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"},
    {"value": "902c246b-6245-4190-8e05-00816be7344a", "type": "User"}
  ],
  "meta": {"resourceType": "Group", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"}
}`

const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// decode decodes a fixture, with numbers as float64 or as json.Number.
func decode(t testing.TB, s string, useNumber bool) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	if useNumber {
		d.UseNumber()
	}
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

type matchCase struct {
	filter string
	want   bool
}

var userCases = []matchCase{
	// eq and case sensitivity.
	{`userName eq "bjensen@example.com"`, true},
	{`userName eq "BJENSEN@EXAMPLE.COM"`, true}, // userName is not caseExact
	{`UserName EQ "bjensen@example.com"`, true}, // attribute names and operators in any case
	{`userName eq "bjensen"`, false},
	{`id eq "2819c223-7f76-453a-919d-413861904646"`, true},
	{`id eq "2819C223-7F76-453A-919D-413861904646"`, false}, // id is caseExact
	{`externalId eq "Bjensen-Ext"`, true},
	{`externalId eq "bjensen-ext"`, false}, // externalId is caseExact
	{`displayName eq "babs jensen"`, true},
	{`title eq "x"`, false},
	{`locale eq "en"`, false}, // absent
	{`madeUpAttr eq "x"`, false},
	// ne.
	{`userName ne "x"`, true},
	{`userName ne "BJENSEN@example.com"`, false},
	{`locale ne "en"`, true}, // absent: ne is not eq
	{`emails ne "babs@jensen.org"`, false},
	{`emails ne "nobody@example.com"`, true},
	// co, sw, ew.
	{`userName co "JENSEN"`, true},
	{`userName co "smith"`, false},
	{`userName sw "bJ"`, true},
	{`userName sw "jensen"`, false},
	{`userName ew ".COM"`, true},
	{`userName ew "bjensen"`, false},
	{`id co "7f76"`, true},
	{`id co "7F76"`, false},
	{`id sw "2819"`, true},
	{`id ew "904646"`, true},
	{`active co "tr"`, false}, // substring operators need strings
	// gt, ge, lt, le on strings (lexicographic, case per caseExact).
	{`userName gt "a"`, true},
	{`userName gt "C"`, false},
	{`userName lt "C"`, true},
	{`title ge "TOUR GUIDE"`, true},
	{`title gt "TOUR GUIDE"`, false},
	{`title le "tour guide"`, true},
	{`title lt "tour guide"`, false},
	// Numbers (unknown attribute holding a JSON number).
	{`loginCount eq 42`, true},
	{`loginCount eq 42.0`, true},
	{`loginCount eq 4.2e1`, true},
	{`loginCount gt 41.5`, true},
	{`loginCount ge 42`, true},
	{`loginCount lt 42`, false},
	{`loginCount le 1e2`, true},
	{`loginCount ne 42`, false},
	{`loginCount eq "42"`, true}, // string holding a number
	{`loginCount eq "forty-two"`, false},
	{`loginCount co 4`, false},
	// Booleans.
	{`active eq true`, true},
	{`active eq false`, false},
	{`active ne false`, true},
	{`active eq True`, true},
	{`active eq "True"`, true}, // Entra sends string booleans
	{`active eq "yes"`, false},
	{`active gt false`, false},
	{`emails[primary eq true]`, true},
	// null.
	{`profileUrl eq null`, true},
	{`locale eq null`, true},
	{`title eq null`, false},
	{`title ne null`, true},
	{`title gt null`, false},
	// pr.
	{`title pr`, true},
	{`nickName pr`, false},         // ""
	{`profileUrl pr`, false},       // null
	{`ims pr`, false},              // []
	{`x509Certificates pr`, false}, // [{}]
	{`photos pr`, false},           // [{"value": ""}]
	{`locale pr`, false},           // missing
	{`emails pr`, true},
	{`emails.value pr`, true},
	{`emails.display pr`, false},
	{`name pr`, true},
	{`name.middleName pr`, false},
	{`meta.lastModified pr`, true},
	{`not (locale pr)`, true},
	// Complex and multi-valued attributes.
	{`name.familyName eq "jensen"`, true},
	{`name.familyName co "Stark"`, false},
	{`name eq "Jensen"`, false}, // singular complex without sub-attribute
	{`emails eq "babs@jensen.org"`, true},
	{`emails co "JENSEN.ORG"`, true},
	{`emails.value sw "babs"`, true},
	{`emails.type eq "home"`, true},
	{`emails.type eq "other"`, false},
	{`phoneNumbers.value co "8377"`, true},
	{`groups.value eq "e9e30dba-f08f-4109-8486-d5c6a331660a"`, true},
	{`groups.value eq "E9E30DBA-F08F-4109-8486-D5C6A331660A"`, false}, // caseExact
	{`schemas eq "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER"`, true}, // unknown: case-insensitive
	{`addresses.postalCode eq "91608"`, true},
	// Value paths: conditions on the same element.
	{`emails[type eq "work" and value co "@example.com"]`, true},
	{`emails[type eq "home" and value co "@example.com"]`, false},
	{`emails.type eq "home" and emails.value co "@example.com"`, true}, // not correlated
	{`emails[type eq "home" or value co "@nowhere"]`, true},
	{`emails[not (type eq "work")]`, true},
	{`emails[type eq "work" and value co "@example.com" and primary eq true]`, true},
	{`emails[(type eq "home" or type eq "work") and primary eq true]`, true},
	{`emails[type eq "home" and primary eq true]`, false},
	{`emails[type eq "work"] or ims[type eq "xmpp"]`, true},
	{`ims[type eq "xmpp"]`, false},
	{`addresses[type eq "work" and postalCode eq "91608"]`, true},
	{`name[givenName eq "barbara"]`, true}, // singular complex
	{`locale[value eq "x"]`, false},
	// Logic, precedence, grouping.
	{`title eq "x" or userType eq "Employee" and active eq true`, true},
	{`(title eq "x" or userType eq "Employee") and active eq false`, false},
	{`title eq "x" or userType eq "Employee" and active eq false`, false},
	{`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`, true},
	{`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`, false},
	{`not (userName eq "x")`, true},
	{`not(userName eq "bjensen@example.com")`, false},
	{`not (not (userName eq "bjensen@example.com"))`, true},
	{`userName eq "x" OR title pr`, true},
	{`userName eq "bjensen@example.com" AnD active eQ TRUE`, true},
	// Schema URNs.
	{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Tour Operations"`, true},
	{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "tour operations"`, true},
	{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Sales"`, false},
	{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d"`, true},
	{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87E4-49D8CA9F808D"`, false}, // caseExact
	{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager pr`, true},
	{`URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:Manager.DisplayName eq "john smith"`, true},
	{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter pr`, false},
	{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User pr`, true},
	{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager[displayName sw "john"]`, true},
	{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen@example.com"`, true},
	{`urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq "Barbara"`, true},
	{`urn:example:unknown:1.0:Ext:attr eq "x"`, false},
	{`urn:example:unknown:1.0:Ext:attr ne "x"`, true},
	{`department eq "Tour Operations"`, true}, // extension attribute without its URN
	{`Manager.Value eq "26118915-6090-4610-87e4-49d8ca9f808d"`, true},
	// dateTime attributes compare as instants.
	{`meta.lastModified gt "2011-05-13T04:42:33Z"`, true},
	{`meta.lastModified gt "2011-05-13T04:42:34Z"`, false},
	{`meta.lastModified ge "2011-05-13T04:42:34Z"`, true},
	{`meta.lastModified eq "2011-05-13T06:42:34+02:00"`, true},
	{`meta.lastModified eq "2011-05-13T04:42:34.000Z"`, true},
	{`meta.lastModified gt "2011-05-13T05:42:34+02:00"`, true}, // lexicographically greater, earlier in time
	{`meta.lastModified lt "2011-05-13T05:42:34+02:00"`, false},
	{`meta.lastModified lt "2011-05-14"`, true},
	{`meta.lastModified le "2011-05-13T04:42:34"`, true},
	{`meta.created lt "2011-01-01T00:00:00Z" and meta.lastModified gt "2011-01-01T00:00:00Z"`, true},
	{`meta.Created gt "2010-01-23T04:56:21Z"`, true},
	{`meta.created gt "not a date"`, false},
	{`meta.resourceType eq "User"`, true},
	{`meta.resourceType eq "user"`, false}, // caseExact
	{`meta eq "x"`, false},
	// Entra: valuePath followed by a sub-attribute comparison.
	{`emails[type eq "work"].value eq "bjensen@example.com"`, true},
	{`emails[type eq "work"].value eq "BJensen@Example.com"`, true},
	{`emails[type eq "work"].value eq "babs@jensen.org"`, false},
	{`emails[type eq "home"].value eq "babs@jensen.org"`, true},
	{`emails[type eq "work" and primary eq true].value eq "bjensen@example.com"`, true},
	{`emails[type eq "work"].value pr`, true},
	{`emails[type eq "home"].display pr`, false},
	{`emails[Type Eq "work"].Value EQ "bjensen@example.com" and active eq true`, true},
	// Microsoft's reference Postman collection: unquoted values.
	{`userName sw B`, true},
	{`userName sw O`, false},
	{`externalId eq Bjensen-Ext`, true},
	{`name.FamilyName eq Jensen`, true},
	{`name.FamilyName eq Employee`, false},
	{`name.FamilyName eq Jensen and (emails.Value co example.com or emails.Value co example.org)`, true},
	{`userName eq bjensen@example.com`, true},
	{`employeeNumber eq 701984`, true}, // a bare number compared with a string attribute
	{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq 701984`, true},
	{`DisplayName eq "Babs Jensen"`, true},
	{`meta.Created gt 2010-01-01T00:00:00Z`, true},
	// White space.
	{"  userName   eq\t\"bjensen@example.com\"  ", true},
	{`userName eq"bjensen@example.com"`, true},
	{`( userName eq "bjensen@example.com" )`, true},
	{`emails [ type eq "work" ]`, true},
}

var groupCases = []matchCase{
	{`displayName eq "Tour Guides"`, true},
	{`displayName eq "tour guides"`, true},
	{`displayName eq "Tour"`, false},
	{`members[value eq "2819c223-7f76-453a-919d-413861904646"]`, true},
	{`members[value eq "2819C223-7F76-453A-919D-413861904646"]`, false}, // members.value is caseExact
	{`members.value eq "902c246b-6245-4190-8e05-00816be7344a"`, true},
	{`members eq "902c246b-6245-4190-8e05-00816be7344a"`, true},
	{`members eq "nobody"`, false},
	{`members[type eq "user"]`, true},
	{`members[type eq "User"].value eq "902c246b-6245-4190-8e05-00816be7344a"`, true},
	{`members[display co "babs" and value eq "2819c223-7f76-453a-919d-413861904646"]`, true},
	{`members[display co "babs" and value eq "902c246b-6245-4190-8e05-00816be7344a"]`, false},
	{`members.$ref co "/Users/2819c223"`, true},
	{`members pr`, true},
	{`emails[type eq "work"]`, false},
	{`externalId eq "grp-1" and displayName sw "tour"`, true},
	{`urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "Tour Guides"`, true},
	{`meta.lastModified gt "2011-01-01T00:00:00Z"`, true},
}

func runMatchCases(t *testing.T, rt *schema.ResourceType, docJSON string, cases []matchCase) {
	t.Helper()
	for _, useNumber := range []bool{false, true} {
		doc := decode(t, docJSON, useNumber)
		for _, c := range cases {
			f, err := Parse(c.filter)
			if err != nil {
				t.Errorf("Parse(%q): %v", c.filter, err)
				continue
			}
			if got := f.Match(rt, doc); got != c.want {
				t.Errorf("Parse(%q).Match = %v, want %v (canonical %q, useNumber %v)", c.filter, got, c.want, f.String(), useNumber)
			}
			// The canonical form means the same thing.
			g, err := Parse(f.String())
			if err != nil {
				t.Errorf("Parse(%q) (canonical of %q): %v", f.String(), c.filter, err)
				continue
			}
			if got := g.Match(rt, doc); got != c.want {
				t.Errorf("canonical %q of %q: Match = %v, want %v", f.String(), c.filter, got, c.want)
			}
		}
	}
}

func TestMatchUser(t *testing.T)  { runMatchCases(t, schema.UserType, userJSON, userCases) }
func TestMatchGroup(t *testing.T) { runMatchCases(t, schema.GroupType, groupJSON, groupCases) }

func TestMatchNilResourceType(t *testing.T) {
	doc := decode(t, userJSON, false)
	for _, c := range []matchCase{
		{`userName eq "BJENSEN@example.com"`, true},
		{`id eq "2819C223-7F76-453A-919D-413861904646"`, true}, // no schema: case-insensitive
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Tour Operations"`, true},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName pr`, true},
		{`emails[type eq "work"].value eq "bjensen@example.com"`, true},
		{`meta.lastModified gt "2011"`, true}, // no schema: string comparison
	} {
		f, err := Parse(c.filter)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.filter, err)
		}
		if got := f.Match(nil, doc); got != c.want {
			t.Errorf("Parse(%q).Match(nil) = %v, want %v", c.filter, got, c.want)
		}
	}
}

// TestMatchLooseDocuments checks documents built by hand or left
// un-normalised: typed slices, string booleans, bare member ids, keys in
// another case.
func TestMatchLooseDocuments(t *testing.T) {
	doc := map[string]any{
		"USERNAME": "Alice",
		"active":   "False",
		"emails":   []map[string]any{{"value": "a@x.org", "type": "work"}},
		"schemas":  []string{schema.UserURN},
		"members":  []any{"u1", map[string]any{"value": "u2"}},
		"phoneNumbers": []any{
			map[string]any{"value": []any{"nested", "array"}},
		},
		"loginCount": 7,
		"ratio":      json.Number("0.25"),
		"weird":      []any{nil, 3, true, []any{"deep"}},
	}
	for _, c := range []matchCase{
		{`userName eq "alice"`, true},
		{`active eq false`, true},
		{`active eq true`, false},
		{`emails[type eq "work"].value eq "a@x.org"`, true},
		{`emails co "@x.org"`, true},
		{`schemas eq "urn:ietf:params:scim:schemas:core:2.0:User"`, true},
		{`schemas pr`, true},
		{`members eq "u1"`, true},
		{`members.value eq "u1"`, true},
		{`members[value eq "u1"]`, true},
		{`members[value eq "u2"]`, true},
		{`members[type eq "User"]`, false},
		{`phoneNumbers.value eq "array"`, true},
		{`loginCount gt 6`, true},
		{`ratio lt 0.3`, true},
		{`weird eq "deep"`, false},
		{`weird eq 3`, true},
		{`weird eq true`, true},
		{`weird pr`, true},
	} {
		f, err := Parse(c.filter)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.filter, err)
		}
		for _, rt := range []*schema.ResourceType{schema.UserType, schema.GroupType, nil} {
			if got := f.Match(rt, doc); got != c.want {
				t.Errorf("Parse(%q).Match(%v) = %v, want %v", c.filter, rt, got, c.want)
			}
		}
	}
}

func TestMatchEscapedStrings(t *testing.T) {
	doc := map[string]any{
		"displayName": `Babs "B" Jensen`,
		"nickName":    `CORP\jdoe`,
		"title":       "Café\tnoir",
		"locale":      "😀",
	}
	for _, c := range []matchCase{
		{`displayName eq "Babs \"B\" Jensen"`, true},
		{`displayName co "\"b\""`, true},
		{`nickName eq "CORP\\jdoe"`, true},
		{`nickName eq "CORP\jdoe"`, true}, // RuleLenientString
		{`title eq "Caf\u00e9\u0009NOIR"`, true},
		{`title eq "Caf\u00E9\tnoir"`, true},
		{"title eq \"Café\tnoir\"", true}, // raw tab
		{`locale eq "\uD83D\uDE00"`, true},
		{`locale eq "\uD83D"`, false},
	} {
		f, err := Parse(c.filter)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.filter, err)
		}
		if got := f.Match(schema.UserType, doc); got != c.want {
			t.Errorf("Parse(%q).Match = %v, want %v (canonical %q)", c.filter, got, c.want, f.String())
		}
	}
}

func TestString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`userName Eq "john"`, `userName eq "john"`},
		{`  userName   eq   "john"  `, `userName eq "john"`},
		{`userName eq"john"`, `userName eq "john"`},
		{`emails[type eq "work"].value eq "x"`, `emails[type eq "work" and value eq "x"]`},
		{`emails[type eq "a" or type eq "b"].value eq "x"`, `emails[(type eq "a" or type eq "b") and value eq "x"]`},
		{`emails[type eq "work"].value pr`, `emails[type eq "work" and value pr]`},
		{`userName sw O`, `userName sw "O"`},
		{`externalId eq 007`, `externalId eq "007"`},
		{`externalId eq -12.5E+3`, `externalId eq -12.5e+3`},
		{`(a pr or b pr) and c pr`, `(a pr or b pr) and c pr`},
		{`a pr or (b pr and c pr)`, `a pr or b pr and c pr`},
		{`a pr and (b pr and c pr)`, `a pr and b pr and c pr`},
		{`not(a pr)`, `not (a pr)`},
		{`NOT (a pr OR b pr)`, `not (a pr or b pr)`},
		{`active eq True`, `active eq true`},
		{`x eq NULL`, `x eq null`},
		{`x eq "a\"b\\c\/d"`, `x eq "a\"b\\c/d"`},
		{`x eq "\u00e9\n"`, `x eq "é\u000A"`},
		{`x eq "CORP\jdoe"`, `x eq "CORP\\jdoe"`},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m"`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m"`},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User pr`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User pr`},
		{`emails[not (type eq "work")]`, `emails[not (type eq "work")]`},
		{`scimdvp0 pr`, `scimdvp0 pr`},
		{`scimdvp0 pr and emails[type eq "x"]`, `scimdvp0 pr and emails[type eq "x"]`},
	} {
		f, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got := f.String(); got != c.want {
			t.Errorf("Parse(%q).String() = %q, want %q", c.in, got, c.want)
		}
	}
	var nilFilter *Filter
	if got := nilFilter.String(); got != "" {
		t.Errorf("nil String() = %q", got)
	}
}

func TestTolerated(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []Rule
	}{
		{`userName eq "x"`, nil},
		{`userName EQ "x" AND active eq True`, nil},
		{`emails[type eq "work"].value eq "x"`, []Rule{RuleValuePathSubAttr}},
		{`userName sw O`, []Rule{RuleBareValue}},
		{`externalId eq 123`, nil},
		{`x eq "CORP\jdoe"`, []Rule{RuleLenientString}},
		{`x eq"y"`, []Rule{RuleMissingSpace}},
		{`emails[type eq work].value eq x`, []Rule{RuleValuePathSubAttr, RuleBareValue}},
	} {
		f, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got := f.Tolerated(); !equalRules(got, c.want) {
			t.Errorf("Parse(%q).Tolerated() = %v, want %v", c.in, got, c.want)
		}
	}
}

func equalRules(a, b []Rule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		``,
		`   `,
		`userName`,
		`userName eq`,
		`userName xx "a"`,
		`userName eq "a" and`,
		`userName eq "a" and or title pr`,
		`(userName eq "a"`,
		`userName eq "a")`,
		`()`,
		`userName eq "unterminated`,
		`userName eq "a\"`,
		`emails[type eq "work"`,
		`emails[type eq "work"]]`,
		`emails]`,
		`emails[type[value eq "x"]]`,
		`emails[]`,
		`emails[type eq "work"].value`,
		`emails[type eq "work"].value eq`,
		`emails[type eq "work"].value xx "a"`,
		`emails[urn:ietf:params:scim:schemas:core:2.0:User:type eq "x"]`,
		`a.b.c eq "x"`,
		`1abc eq "x"`,
		`user@name eq "x"`,
		`userName eq "a" "b"`,
		`userName eq Group A`,
		`not userName eq "a"`,
		`userName pr "x"`,
		`userName eq (x)`,
		`userName eq ["x"]`,
		`[type eq "x"]`,
		`emails[type eq "work"]foo eq "x"`,
		`"userName" eq "x"`,
		strings.Repeat("(", MaxDepth+1) + "a pr" + strings.Repeat(")", MaxDepth+1),
		`userName eq "` + strings.Repeat("x", MaxLength) + `"`,
	} {
		f, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) = %q, want error", in, f)
			continue
		}
		var fe *Error
		if !errors.As(err, &fe) {
			t.Errorf("Parse(%q) error %T is not *Error", in, err)
			continue
		}
		if fe.Kind != KindInvalidFilter || fe.Detail == "" {
			t.Errorf("Parse(%q) error = %+v, want kind %s and a detail", in, fe, KindInvalidFilter)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	_, err := Parse(`user@name eq "x"`)
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("got %v", err)
	}
	if fe.Err == nil || errors.Unwrap(err) != fe.Err {
		t.Errorf("want the parser error wrapped, got %#v", fe)
	}
	if !strings.Contains(fe.Detail, `user@name eq \"x\"`) || strings.Contains(fe.Detail, "parse conflict") {
		t.Errorf("Detail %q should quote the input and not the parser internals", fe.Detail)
	}
	if err.Error() != fe.Detail {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestNilFilter(t *testing.T) {
	var f *Filter
	if !f.Match(schema.UserType, nil) || !f.MatchValue(schema.UserType, "emails", nil) {
		t.Error("a nil filter matches everything")
	}
	if _, _, ok := f.IndexHint(); ok {
		t.Error("nil filter gave a hint")
	}
	if f.Tolerated() != nil || f.Validate(schema.UserType) != nil {
		t.Error("nil filter")
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{`active gt true`, false},
		{`emails[primary lt false]`, false},
		{`x509Certificates.value ge "a"`, false},
		{`active eq true`, true},
		{`meta.lastModified gt "2011-05-13T04:42:34Z"`, true},
		{`userName gt "a"`, true},
		{`madeUp gt true`, true},
	} {
		f, err := Parse(c.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.in, err)
		}
		err = f.Validate(schema.UserType)
		if (err == nil) != c.ok {
			t.Errorf("Validate(%q) = %v, want ok=%v", c.in, err, c.ok)
		}
		var fe *Error
		if err != nil && (!errors.As(err, &fe) || fe.Kind != KindInvalidFilter) {
			t.Errorf("Validate(%q) error %#v", c.in, err)
		}
	}
}

func TestIndexHint(t *testing.T) {
	for _, c := range []struct {
		in          string
		attr, value string
		ok          bool
	}{
		{`userName eq "bjensen"`, HintUserName, "bjensen", true},
		{`USERNAME eq "BJensen"`, HintUserName, "BJensen", true},
		{`id eq "abc"`, HintID, "abc", true},
		{`externalId eq "ext-1"`, HintExternalID, "ext-1", true},
		{`externalId eq 12345`, HintExternalID, "12345", true},
		{`externalId eq jyoung`, HintExternalID, "jyoung", true},
		{`displayName eq "Group A"`, HintDisplayName, "Group A", true},
		{`members[value eq "u1"]`, HintMembersValue, "u1", true},
		{`members[type eq "User" and value eq "u1"]`, HintMembersValue, "u1", true},
		{`members[type eq "User"].value eq "u1"`, HintMembersValue, "u1", true},
		{`members.value eq "u1"`, HintMembersValue, "u1", true},
		{`members eq "u1"`, HintMembersValue, "u1", true},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"`, HintUserName, "x", true},
		{`urn:ietf:params:scim:schemas:core:2.0:Group:members[value eq "u"]`, HintMembersValue, "u", true},
		{`(userName eq "x")`, HintUserName, "x", true},
		// AND: the most selective term wins, wherever it is.
		{`userName eq "x" and active eq true`, HintUserName, "x", true},
		{`active eq true and userName eq "x"`, HintUserName, "x", true},
		{`userName eq "x" and id eq "i"`, HintID, "i", true},
		{`displayName eq "G" and members[value eq "u"]`, HintDisplayName, "G", true},
		{`members[value eq "u"] and externalId eq "e"`, HintExternalID, "e", true},
		{`userName eq "x" and (id eq "a" or id eq "b")`, HintUserName, "x", true},
		{`title pr and (active eq true and externalId eq "e")`, HintExternalID, "e", true},
		// No hint.
		{`userName eq "a" or userName eq "b"`, "", "", false},
		{`userName eq "a" or id eq "b"`, "", "", false},
		{`not (id eq "a")`, "", "", false},
		{`userName ne "x"`, "", "", false},
		{`userName sw "x"`, "", "", false},
		{`userName co "x"`, "", "", false},
		{`userName pr`, "", "", false},
		{`id eq null`, "", "", false},
		{`id eq true`, "", "", false},
		{`name.givenName eq "x"`, "", "", false},
		{`userName.value eq "x"`, "", "", false},
		{`emails[type eq "work"].value eq "x"`, "", "", false},
		{`emails.value eq "x"`, "", "", false},
		{`members[value ne "u"]`, "", "", false},
		{`members[value eq "u" or type eq "User"]`, "", "", false},
		{`members[display eq "u"]`, "", "", false},
		{`members.display eq "u"`, "", "", false},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1"`, "", "", false},
		{`urn:example:ext:1.0:Ext:userName eq "x"`, "", "", false},
	} {
		f, err := Parse(c.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.in, err)
		}
		attr, value, ok := f.IndexHint()
		if attr != c.attr || value != c.value || ok != c.ok {
			t.Errorf("Parse(%q).IndexHint() = %q, %q, %v; want %q, %q, %v", c.in, attr, value, ok, c.attr, c.value, c.ok)
		}
	}
}

// TestIndexHintNarrowsSafely checks that every document a filter matches
// carries the hinted value.
func TestIndexHintNarrowsSafely(t *testing.T) {
	docs := []struct {
		rt  *schema.ResourceType
		doc map[string]any
	}{{schema.UserType, decode(t, userJSON, false)}, {schema.GroupType, decode(t, groupJSON, false)}}
	for _, cases := range [][]matchCase{userCases, groupCases} {
		for _, c := range cases {
			f, err := Parse(c.filter)
			if err != nil {
				t.Fatal(err)
			}
			attr, value, ok := f.IndexHint()
			if !ok {
				continue
			}
			for _, d := range docs {
				if !f.Match(d.rt, d.doc) {
					continue
				}
				if !hasValue(d.doc, attr, value) {
					t.Errorf("%q matches a document without %s %q", c.filter, attr, value)
				}
			}
		}
	}
}

func hasValue(doc map[string]any, attr, value string) bool {
	if attr == HintMembersValue {
		ms, _ := doc["members"].([]any)
		for _, m := range ms {
			if m.(map[string]any)["value"] == value {
				return true
			}
		}
		return false
	}
	v, _ := doc[attr].(string)
	if attr == HintUserName || attr == HintDisplayName {
		return strings.EqualFold(v, value)
	}
	return v == value
}

func TestConcurrentMatch(t *testing.T) {
	f, err := Parse(`emails[type eq "work"].value eq "bjensen@example.com" and members pr or displayName eq "Tour Guides"`)
	if err != nil {
		t.Fatal(err)
	}
	user, group := decode(t, userJSON, false), decode(t, groupJSON, false)
	done := make(chan bool)
	for i := 0; i < 8; i++ {
		go func() {
			ok := true
			for j := 0; j < 200; j++ {
				ok = ok && !f.Match(schema.UserType, user) && f.Match(schema.GroupType, group) &&
					!f.MatchValue(schema.UserType, "emails", user["emails"].([]any)[0])
			}
			done <- ok
		}()
	}
	for i := 0; i < 8; i++ {
		if !<-done {
			t.Error("concurrent Match gave a wrong answer")
		}
	}
}

func TestErrorIsPlainStruct(t *testing.T) {
	// The HTTP layer may build its own *Error values.
	e := &Error{Kind: KindInvalidPath, Detail: "d"}
	if e.Error() != "d" || e.Unwrap() != nil {
		t.Errorf("got %q", e.Error())
	}
}

func TestBareValueControlCharacters(t *testing.T) {
	for _, in := range []string{"userName eq a\x00b", "userName eq a\x7fb", "userName eq a\xffb"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q): want error", in)
		}
	}
}

func TestMatchIncompleteResourceType(t *testing.T) {
	rt := &schema.ResourceType{Name: "Odd"}
	f, err := Parse(`userName eq "BJENSEN@example.com" and emails[type eq "work"]`)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Match(rt, decode(t, userJSON, false)) {
		t.Error("want a match with a resource type without schemas")
	}
	p, err := ParsePath(`emails[type eq "work"]`)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Filter.MatchValue(rt, "emails", map[string]any{"type": "Work"}) {
		t.Error("want a value match with a resource type without schemas")
	}
}
