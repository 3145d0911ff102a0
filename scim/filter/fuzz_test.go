package filter

import (
	"errors"
	"testing"

	"github.com/scimd/scimd/scim/schema"
)

// fuzzSeeds are filters IdPs and test suites send, plus edge cases.
var fuzzSeeds = []string{
	`userName eq "bjensen@example.com"`,
	`userName Eq "BJENSEN@EXAMPLE.COM"`,
	`externalId eq jyoung`,
	`userName sw O`,
	`name.FamilyName eq Employee and (emails.Value co example.com or emails.Value co example.org)`,
	`emails[type eq "work"].value eq "bjensen@example.com"`,
	`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
	`members[value eq "2819c223-7f76-453a-919d-413861904646"]`,
	`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m"`,
	`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User pr`,
	`meta.lastModified gt "2011-05-13T04:42:34Z"`,
	`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`,
	`active eq true and loginCount ge 4.2e1 and title eq null`,
	`x eq "a\"b\\c\u00e9\uD83D\uDE00" or y eq "CORP\jdoe"`,
	`emails[not (type eq "work")].value pr`,
	`((a pr))`,
}

// fuzzDocs returns the fixtures a fuzzed filter is matched against.
func fuzzDocs(t testing.TB) []struct {
	rt  *schema.ResourceType
	doc map[string]any
} {
	return []struct {
		rt  *schema.ResourceType
		doc map[string]any
	}{
		{schema.UserType, decode(t, userJSON, false)},
		{schema.UserType, decode(t, userJSON, true)},
		{schema.GroupType, decode(t, groupJSON, false)},
		{nil, decode(t, userJSON, true)},
		{schema.UserType, map[string]any{}},
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	docs := fuzzDocs(f)
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := Parse(s)
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) || fe.Kind != KindInvalidFilter || fe.Detail == "" {
				t.Fatalf("Parse(%q) error %#v is not an invalidFilter *Error", s, err)
			}
			return
		}
		results := make([]bool, len(docs))
		for i, d := range docs {
			results[i] = flt.Match(d.rt, d.doc)
			_ = flt.Validate(d.rt)
			if emails, ok := d.doc["emails"].([]any); ok {
				flt.MatchValue(d.rt, "emails", emails[0])
			}
			flt.MatchValue(d.rt, "members", "u1")
		}
		_, _, _ = flt.IndexHint()
		_ = flt.Tolerated()

		// The canonical form parses to itself and means the same thing.
		canon := flt.String()
		if len(canon) > MaxLength {
			return
		}
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", s, canon, err)
		}
		if got := again.String(); got != canon {
			t.Fatalf("Parse(%q) = %q, which reparses as %q", s, canon, got)
		}
		if len(again.Tolerated()) != 0 {
			t.Fatalf("canonical %q needed tolerance rules %v", canon, again.Tolerated())
		}
		for i, d := range docs {
			if again.Match(d.rt, d.doc) != results[i] {
				t.Fatalf("Parse(%q) and its canonical form %q disagree on document %d", s, canon, i)
			}
		}
	})
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		`members[value eq "7f4bc1a3"]`,
		`emails[type eq "work"].value`,
		`name.givenName`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`,
		`members`,
		`addresses[type eq "work"].postalCode`,
		`members[value eq 7f4bc1a3]`,
		`emails[type eq "work" and value co "@x" and not (primary eq false)].display`,
	} {
		f.Add(s)
	}
	user := decode(f, userJSON, false)
	group := decode(f, groupJSON, false)
	elems := []any{user["emails"].([]any)[0], group["members"].([]any)[0], "u1", nil, map[string]any{}}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) || fe.Kind != KindInvalidPath || fe.Detail == "" {
				t.Fatalf("ParsePath(%q) error %#v is not an invalidPath *Error", s, err)
			}
			return
		}
		if p.Attr == "" && p.URN == "" {
			t.Fatalf("ParsePath(%q) = %+v: no attribute", s, p)
		}
		for _, rt := range []*schema.ResourceType{schema.UserType, schema.GroupType, nil} {
			for _, e := range elems {
				p.Filter.MatchValue(rt, p.AttrPath(), e)
			}
		}
		canon := p.String()
		if len(canon) > MaxLength {
			return
		}
		again, err := ParsePath(canon)
		if err != nil {
			t.Fatalf("ParsePath(%q) = %q, which does not parse: %v", s, canon, err)
		}
		if got := again.String(); got != canon {
			t.Fatalf("ParsePath(%q) = %q, which reparses as %q", s, canon, got)
		}
	})
}
