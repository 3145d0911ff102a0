package filter

import (
	"reflect"
	"strings"
	"testing"
)

// simpleCases are filters the fast path must take, with the ones it must
// leave to the general parser.
var simpleCases = []struct {
	filter string
	simple bool
}{
	{`userName eq "bjensen@example.com"`, true},
	{`  userName   EQ   "BJENSEN@example.com"  `, true},
	{"userName\teq\t\"x\"", true},
	{`displayName eq "Intercom Admins"`, true},
	{`externalId eq jyoung`, true},
	{`userName sw O`, true},
	{`emails.value co example.com`, true},
	{`name.familyName eq "O'Malley"`, true},
	{`title pr`, true},
	{`name.givenName PR`, true},
	{`active eq true`, true},
	{`active eq FALSE`, true},
	{`title eq null`, true},
	{`externalId eq 12345`, true},
	{`loginCount ge -7`, true},
	{`loginCount ge 0`, true},
	{`meta.lastModified gt "2011-05-13T04:42:34Z"`, true},
	{`id eq "2819c223-7f76-453a-919d-413861904646"`, true},
	{`x-y_z9 ne ""`, true},
	{`userName eq user+tag@example.com`, true},

	{`userName eq "a\"b"`, false},
	{`userName eq "CORP\jdoe"`, false},
	{`userName eq "jöhn"`, false},
	{"userName eq \"a\tb\"", false},
	{`userName eq"x"`, false},
	{`userName eq "x" and active eq true`, false},
	{`userName eq "x" "y"`, false},
	{`emails[type eq "work"]`, false},
	{`emails[type eq "work"].value eq "x"`, false},
	{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Sales"`, false},
	{`a.b.c eq "x"`, false},
	{`$ref eq "x"`, false},
	{`not eq "x"`, false},
	{`and eq "x"`, false},
	{`eq eq "x"`, false},
	{`userName eq`, false},
	{`userName`, false},
	{`userName pr x`, false},
	{`userName xx "x"`, false},
	{`loginCount ge 4.2e1`, false},
	{`loginCount ge 007`, false},
	{`loginCount ge 1x`, false},
	{`(userName eq "x")`, false},
	{``, false},
	{`userName eq "x`, false},
	{`userName eq x"`, false},
}

func TestSimpleAgreesWithParser(t *testing.T) {
	for _, c := range simpleCases {
		fast, ok := parseSimple(c.filter)
		if ok != c.simple {
			t.Errorf("parseSimple(%q) took it: %v, want %v", c.filter, ok, c.simple)
		}
		if !ok {
			continue
		}
		slow, err := parseGeneral(c.filter)
		if err != nil {
			t.Errorf("parseSimple(%q) accepted what the parser refuses: %v", c.filter, err)
			continue
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Errorf("parseSimple(%q) = %#v, parser = %#v", c.filter, fast.root, slow.root)
		}
	}
}

// FuzzSimpleAgreesWithParser checks that whatever the fast path takes, the
// general parser accepts and parses to the same Filter.
func FuzzSimpleAgreesWithParser(f *testing.F) {
	for _, c := range simpleCases {
		f.Add(c.filter)
	}
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fast, ok := parseSimple(s)
		if !ok {
			return
		}
		slow, err := parseGeneral(s)
		if err != nil {
			t.Fatalf("parseSimple(%q) accepted what the parser refuses: %v", s, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("parseSimple(%q) = %#v, parser = %#v", s, fast.root, slow.root)
		}
		if fast.String() != slow.String() || !reflect.DeepEqual(fast.Tolerated(), slow.Tolerated()) {
			t.Fatalf("parseSimple(%q): %q %v, parser: %q %v", s, fast, fast.Tolerated(), slow, slow.Tolerated())
		}
	})
}

// TestSimpleCoversGeneratedFilters compares both parsers on every
// combination of common attributes, operators and values.
func TestSimpleCoversGeneratedFilters(t *testing.T) {
	attrs := []string{"userName", "name.familyName", "emails.value", "active", "x1-_", "A"}
	ops := []string{"eq", "NE", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"}
	values := []string{`"x"`, `""`, `"2011-05-13T04:42:34Z"`, `"12"`, `"-1.5"`, `"a b"`, `true`, `False`, `NULL`,
		`0`, `-0`, `42`, `-42`, `jyoung`, `example.com`, `a@b.c`, `x+y`, `a-b`, `Ü`, `1.5`, `1e3`}
	taken := 0
	for _, a := range attrs {
		for _, op := range ops {
			for _, v := range values {
				expr := a + " " + op
				if !strings.EqualFold(op, "pr") {
					expr += " " + v
				}
				fast, ok := parseSimple(expr)
				slow, err := parseGeneral(expr)
				if !ok {
					continue
				}
				taken++
				if err != nil {
					t.Errorf("parseSimple(%q) accepted what the parser refuses: %v", expr, err)
					continue
				}
				if !reflect.DeepEqual(fast, slow) {
					t.Errorf("parseSimple(%q) = %#v, parser = %#v", expr, fast.root, slow.root)
				}
			}
		}
	}
	if taken == 0 {
		t.Fatal("the fast path took nothing")
	}
}

func BenchmarkParseGeneral(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseGeneral(benchFilters[0].filter); err != nil {
			b.Fatal(err)
		}
	}
}
