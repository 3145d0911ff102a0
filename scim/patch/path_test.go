package patch

import (
	"reflect"
	"testing"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		in   string
		want Path
		bad  bool
	}{
		{in: "userName", want: Path{Attr: "userName"}},
		{in: "name.givenName", want: Path{Attr: "name", Sub: "givenName"}},
		{in: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
			want: Path{URN: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", Attr: "department"}},
		{in: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
			want: Path{URN: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", Attr: "manager", Sub: "value"}},
		{in: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
			want: Path{URN: "urn:ietf:params:scim:schemas:extension:enterprise:2.0", Attr: "User"}},
		{in: `members[value eq "2819c223"]`, want: Path{Attr: "members", Filter: `value eq "2819c223"`}},
		{in: `emails[type eq "work"].value`, want: Path{Attr: "emails", Filter: `type eq "work"`, Sub: "value"}},
		{in: `emails[value eq "a]b.c"].display`, want: Path{Attr: "emails", Filter: `value eq "a]b.c"`, Sub: "display"}},
		{in: `emails[value eq "q\"]"]`, want: Path{Attr: "emails", Filter: `value eq "q\"]"`}},
		{in: `urn:ietf:params:scim:schemas:core:2.0:User:emails[value eq "a:b"].type`,
			want: Path{URN: "urn:ietf:params:scim:schemas:core:2.0:User", Attr: "emails", Filter: `value eq "a:b"`, Sub: "type"}},
		{in: "members.$ref", want: Path{Attr: "members", Sub: "$ref"}},
		{in: "  title  ", want: Path{Attr: "title"}},
		{in: "", bad: true},
		{in: "name.", bad: true},
		{in: ".name", bad: true},
		{in: "name.givenName.x", bad: true},
		{in: "emails[]", bad: true},
		{in: "emails[ ]", bad: true},
		{in: `emails[type eq "work"`, bad: true},
		{in: `emails[type eq "work"]value`, bad: true},
		{in: `emails[type eq "work"].`, bad: true},
		{in: `emails[type eq "work"][x]`, bad: true},
		{in: `emails[a[b]]`, bad: true},
		{in: `[type eq "work"]`, bad: true},
		{in: "urn:", bad: true},
		{in: "urn:x", bad: true},
		{in: "urn:a:b:", bad: true},
		{in: "user name", bad: true},
		{in: "9lives", bad: true},
	}
	for _, tc := range tests {
		got, err := ParsePath(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParsePath(%q) = %+v, want error", tc.in, got)
			} else if errType(err) != InvalidPath {
				t.Errorf("ParsePath(%q): scimType %q", tc.in, errType(err))
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParsePath(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if again, err := ParsePath(got.String()); err != nil || again != got {
			t.Errorf("round trip of %q: %+v, %v", got.String(), again, err)
		}
	}
}

func TestEqList(t *testing.T) {
	tests := []struct {
		expr, joiner string
		want         []eqTest
		ok           bool
	}{
		{`type eq "work"`, "and", []eqTest{{"type", "work"}}, true},
		{`type EQ "work" AND primary eq true`, "and", []eqTest{{"type", "work"}, {"primary", true}}, true},
		{`(type eq "work") and (display eq "a b")`, "and", []eqTest{{"type", "work"}, {"display", "a b"}}, true},
		{`value eq "a" or value eq "b"`, "or", []eqTest{{"value", "a"}, {"value", "b"}}, true},
		{`value eq unquoted`, "or", []eqTest{{"value", "unquoted"}}, true},
		{`type eq "work" or type eq "home"`, "and", nil, false},
		{`type ne "work"`, "and", nil, false},
		{`type eq`, "and", nil, false},
		{`type eq "work" and`, "and", nil, false},
		{`(type eq "work"`, "and", nil, false},
		{`type eq "unterminated`, "and", nil, false},
		{`not (type eq "work")`, "and", nil, false},
		{``, "and", nil, false},
	}
	for _, tc := range tests {
		got, ok := eqList(tc.expr, tc.joiner)
		if ok != tc.ok || (ok && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("eqList(%q, %q) = %v, %v; want %v, %v", tc.expr, tc.joiner, got, ok, tc.want, tc.ok)
		}
	}
}

func TestMemberIDs(t *testing.T) {
	ids, ok := memberIDs(`value eq "a" or (Value eq "b")`)
	if !ok || !reflect.DeepEqual(ids, []string{"a", "b"}) {
		t.Fatalf("got %v %v", ids, ok)
	}
	for _, bad := range []string{`display eq "a"`, `value eq ""`, `value eq "a" and type eq "User"`, `value sw "a"`, `value eq true`} {
		if ids, ok := memberIDs(bad); ok {
			t.Errorf("memberIDs(%q) = %v, want refusal", bad, ids)
		}
	}
}
