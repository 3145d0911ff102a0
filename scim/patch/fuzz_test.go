package patch

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/scimd/scimd/scim/schema"
)

// fuzzSeeds are PatchOp bodies as identity providers send them; more seeds
// live in testdata/fuzz.
var fuzzSeeds = []string{
	`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`,
	`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
	`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"x@example.com"}]}`,
	`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"displayName":"B","name.givenName":"K","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"A"}}]}`,
	`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"271"}]}`,
	`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"roles","value":[{"value":"{\"id\":\"1\",\"value\":\"Admin\"}","primary":"True"}]}]}`,
	`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"$ref":null,"value":"id1"},{"value":"id2"}]}]}`,
	`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"value":"u1091"}]}]}`,
	`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"u1\"]"},{"op":"add","path":"members","value":[{"value":"u2","display":"Bob"}]}]}`,
	`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"members","value":[]}]}`,
	`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"id":"g","displayName":"New"}}]}`,
	`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[]}`,
	`{"operations":[{"op":"remove","path":"emails[type eq \"home\"]"}]}`,
	`{"id":"g","Operations":[{"op":"add","path":"members","value":"string id 1"}],"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}`,
	`{"Operations":[{"op":"remove","path":"members"}]}`,
	`{"Operations":[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","value":{"department":"Eng","manager":{"value":"m"}}}]}`,
	`{"Operations":[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}]}`,
	`{"Operations":[{"op":"add","path":"phoneNumbers[type eq \"mobile\" and primary eq true].value","value":"+1"}]}`,
	`{"Operations":[{"op":"replace","path":"name","value":{"givenName":null,"familyName":"J"}}]}`,
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ops, err := ParseRequest(body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e == nil || e.ScimType == "" {
				t.Fatalf("error is not a *Error with a scimType: %#v", err)
			}
			if ops != nil {
				t.Fatalf("operations returned with an error")
			}
			return
		}
		for _, op := range ops {
			switch op.Op {
			case OpAdd, OpReplace:
			case OpRemove:
				if op.Path == "" {
					t.Fatalf("remove without path accepted")
				}
			default:
				t.Fatalf("op %q not normalised", op.Op)
			}
			if op.Path != "" {
				if _, err := ParsePath(op.Path); err != nil {
					t.Fatalf("accepted path %q does not parse: %v", op.Path, err)
				}
			}
		}
	})
}

func FuzzApply(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	type fixture struct {
		rt   *schema.ResourceType
		doc  map[string]any
		json string
	}
	var fixtures []fixture
	for _, fx := range []struct {
		rt  *schema.ResourceType
		doc map[string]any
	}{
		{schema.UserType, userDoc(f)},
		{schema.UserType, bareUserDoc(f)},
		{schema.GroupType, groupDoc(f)},
	} {
		b, err := json.Marshal(fx.doc)
		if err != nil {
			f.Fatal(err)
		}
		fixtures = append(fixtures, fixture{fx.rt, fx.doc, string(b)})
	}
	p := testPatcher()
	checkErr := func(t *testing.T, err error) {
		var e *Error
		if !errors.As(err, &e) || e == nil || e.ScimType == "" {
			t.Fatalf("error is not a *Error with a scimType: %#v", err)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ops, err := ParseRequest(body)
		if err != nil {
			checkErr(t, err)
			return
		}
		for _, fx := range fixtures {
			res, err := p.Apply(fx.rt, fx.doc, ops)
			if b, _ := json.Marshal(fx.doc); string(b) != fx.json {
				t.Fatalf("input document modified")
			}
			if err != nil {
				checkErr(t, err)
				continue
			}
			if _, err := json.Marshal(res.Doc); err != nil {
				t.Fatalf("result is not JSON: %v", err)
			}
			if !res.Changed && !equalValue(fx.doc, res.Doc) {
				t.Fatalf("Changed is false but the document differs")
			}
			checkDelta(t, res.Members)
			// Apply again to the result: more states, same guarantees.
			if _, err := p.Apply(fx.rt, res.Doc, ops); err != nil {
				checkErr(t, err)
			}
		}
	})
}

// checkDelta verifies the MemberDelta invariants documented on the type.
func checkDelta(t *testing.T, d MemberDelta) {
	t.Helper()
	if d.Replace && d.RemoveAll {
		t.Fatalf("both Replace and RemoveAll: %+v", d)
	}
	seen := map[string]bool{}
	for _, m := range d.Add {
		if m.Value == "" || seen[m.Value] {
			t.Fatalf("empty or duplicate member in Add: %+v", d)
		}
		seen[m.Value] = true
	}
	removed := map[string]bool{}
	for _, id := range d.Remove {
		if id == "" || seen[id] || removed[id] {
			t.Fatalf("Remove overlaps Add or repeats: %+v", d)
		}
		removed[id] = true
	}
	if (d.Replace || d.RemoveAll) && len(d.Remove) > 0 {
		t.Fatalf("Remove with Replace/RemoveAll: %+v", d)
	}
}
