package patch

import (
	"fmt"
	"strings"
	"testing"

	"github.com/scimd/scimd/scim/schema"
)

// BenchmarkApplyUserReplace applies an Entra-style update: a path-less
// replace with dotted and URN-qualified keys, a string boolean and a
// filtered e-mail replace.
func BenchmarkApplyUserReplace(b *testing.B) {
	body := wrapOps(`[
	  {"op":"replace","value":{"displayName":"Babs J","name.givenName":"Kim",
	    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"Eng",
	    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager":"m2"}},
	  {"op":"Replace","path":"active","value":"False"},
	  {"op":"Replace","path":"emails[type eq \"work\"].value","value":"babs@example.com"}]`)
	ops, err := ParseRequest([]byte(body))
	if err != nil {
		b.Fatal(err)
	}
	doc := userDoc(b)
	p := testPatcher()
	b.ReportAllocs()
	for b.Loop() {
		res, err := p.Apply(schema.UserType, doc, ops)
		if err != nil || !res.Changed {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyGroupMembers applies one PATCH adding 100 members, Okta's
// default batch size.
func BenchmarkApplyGroupMembers(b *testing.B) {
	var vals []string
	for i := range 100 {
		vals = append(vals, fmt.Sprintf(`{"value":"00u%017d","display":"user%d@example.com"}`, i, i))
	}
	body := wrapOps(`[{"op":"add","path":"members","value":[` + strings.Join(vals, ",") + `]}]`)
	ops, err := ParseRequest([]byte(body))
	if err != nil {
		b.Fatal(err)
	}
	doc := groupDoc(b)
	p := testPatcher()
	b.ReportAllocs()
	for b.Loop() {
		res, err := p.Apply(schema.GroupType, doc, ops)
		if err != nil || len(res.Members.Add) != 100 {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseRequest parses the 100-member PATCH body.
func BenchmarkParseRequest(b *testing.B) {
	var vals []string
	for i := range 100 {
		vals = append(vals, fmt.Sprintf(`{"value":"00u%017d","display":"user%d@example.com"}`, i, i))
	}
	body := []byte(wrapOps(`[{"op":"add","path":"members","value":[` + strings.Join(vals, ",") + `]}]`))
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}
