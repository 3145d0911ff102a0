package patch

import (
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/scimd/scimd/scim/schema"
)

type applyCase struct {
	name    string
	rt      *schema.ResourceType            // default schema.UserType
	doc     func(testing.TB) map[string]any // default userDoc
	patcher *Patcher                        // default testPatcher()
	body    string                          // PatchOp body, or a bare Operations array
	want    map[string]string               // slash path → JSON, or absent
	changed bool                            // expected Result.Changed
	members MemberDelta                     // expected Result.Members
	err     string                          // expected scimType
}

func runApply(t *testing.T, tc applyCase) Result {
	t.Helper()
	rt := tc.rt
	if rt == nil {
		rt = schema.UserType
	}
	mkDoc := tc.doc
	if mkDoc == nil {
		mkDoc = userDoc
	}
	p := tc.patcher
	if p == nil {
		p = testPatcher()
	}
	ops, err := ParseRequest([]byte(wrapOps(tc.body)))
	if err != nil {
		if tc.err != "" && errType(err) == tc.err {
			return Result{}
		}
		t.Fatalf("ParseRequest: %v", err)
	}
	in := mkDoc(t)
	res, err := p.Apply(rt, in, ops)
	if !reflect.DeepEqual(in, mkDoc(t)) {
		t.Fatalf("Apply modified its input document")
	}
	if tc.err != "" {
		if err == nil {
			t.Fatalf("want %s error, got doc %v", tc.err, res.Doc)
		}
		if errType(err) != tc.err {
			t.Fatalf("error %v: scimType %q, want %q", err, errType(err), tc.err)
		}
		return res
	}
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	checkDoc(t, res.Doc, tc.want)
	if res.Changed != tc.changed {
		t.Errorf("Changed = %v, want %v", res.Changed, tc.changed)
	}
	if !reflect.DeepEqual(res.Members, tc.members) {
		t.Errorf("Members = %+v, want %+v", res.Members, tc.members)
	}
	if !res.Changed && !equalValue(in, res.Doc) {
		t.Errorf("Changed is false but the document differs")
	}
	if _, err := json.Marshal(res.Doc); err != nil {
		t.Errorf("result is not JSON: %v", err)
	}
	return res
}

// TestApplyUser covers add/replace/remove on Users, one case per rule, with
// the payloads identity providers send.
func TestApplyUser(t *testing.T) {
	tests := []applyCase{
		// --- replace ---------------------------------------------------
		{
			name:    "Okta P1 path-less replace deactivates",
			body:    `[{"op":"replace","value":{"active":false}}]`,
			want:    map[string]string{"active": `false`},
			changed: true,
		},
		{
			name:    "Entra P2 replace active with a boolean",
			body:    `[{"op":"replace","path":"active","value":false}]`,
			want:    map[string]string{"active": `false`},
			changed: true,
		},
		{
			name:    "Entra P3 string boolean False",
			body:    `[{"op":"Replace","path":"active","value":"False"}]`,
			want:    map[string]string{"active": `false`},
			changed: true,
		},
		{
			name:    "string boolean in any case",
			body:    `[{"op":"replace","path":"active","value":" fAlSe "}]`,
			want:    map[string]string{"active": `false`},
			changed: true,
		},
		{
			name: "string boolean that is not a boolean",
			body: `[{"op":"replace","path":"active","value":"{$user.active}"}]`,
			err:  InvalidValue,
		},
		{
			name:    "Entra periodic re-send of an unchanged value is a no-op",
			body:    `[{"op":"Replace","path":"active","value":"True"}]`,
			want:    map[string]string{"active": `true`},
			changed: false,
		},
		{
			name:    "Entra P15 replace userName and externalId",
			body:    `[{"op":"Replace","path":"userName","value":"ryan3"},{"op":"Replace","path":"externalId","value":"ryan3-ext"}]`,
			want:    map[string]string{"userName": `"ryan3"`, "externalId": `"ryan3-ext"`},
			changed: true,
		},
		{
			name:    "replace singular complex merges sub-attributes",
			body:    `[{"op":"replace","path":"name","value":{"givenName":"Babs","middleName":"J"}}]`,
			want:    map[string]string{"name": `{"familyName":"Jensen","givenName":"Babs","middleName":"J"}`},
			changed: true,
		},
		{
			name:    "replace sub-attribute of a singular complex",
			body:    `[{"op":"replace","path":"name.familyName","value":"Smith"}]`,
			want:    map[string]string{"name": `{"familyName":"Smith","givenName":"Barbara"}`},
			changed: true,
		},
		{
			name:    "replace whole multi-valued attribute",
			body:    `[{"op":"replace","path":"emails","value":[{"value":"new@example.com","type":"work","primary":"True"}]}]`,
			want:    map[string]string{"emails": `[{"value":"new@example.com","type":"work","primary":true}]`},
			changed: true,
		},
		{
			name:    "replace multi-valued with an empty array clears it",
			body:    `[{"op":"replace","path":"emails","value":[]}]`,
			want:    map[string]string{"emails": absent},
			changed: true,
		},
		{
			name:    "Entra P5 replace emails[type eq work].value",
			body:    `[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"barbara@example.com"}]`,
			want:    map[string]string{"emails/0": `{"value":"barbara@example.com","type":"work","primary":true}`, "emails/1/value": `"babs@jensen.org"`},
			changed: true,
		},
		{
			name:    "Entra P6 filtered replace with no element creates it",
			doc:     bareUserDoc,
			body:    `[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"Test_User_ab6490ee@contoso.com"}]`,
			want:    map[string]string{"emails": `[{"type":"work","value":"Test_User_ab6490ee@contoso.com"}]`},
			changed: true,
		},
		{
			name:    "Entra filtered add with no element creates it, with every equality value",
			doc:     bareUserDoc,
			body:    `[{"op":"Add","path":"phoneNumbers[type eq \"mobile\" and primary eq \"True\"].value","value":"+1 555 0100"}]`,
			want:    map[string]string{"phoneNumbers": `[{"type":"mobile","primary":true,"value":"+1 555 0100"}]`},
			changed: true,
		},
		{
			name:    "filtered replace without sub-attribute and no match creates the element",
			body:    `[{"op":"replace","path":"addresses[type eq \"work\"]","value":{"streetAddress":"1 Main St","locality":"Springfield"}}]`,
			want:    map[string]string{"addresses": `[{"type":"work","streetAddress":"1 Main St","locality":"Springfield"}]`},
			changed: true,
		},
		{
			name:    "filtered replace without sub-attribute replaces the matching element",
			body:    `[{"op":"replace","path":"emails[type eq \"home\"]","value":{"value":"b@home.example"}}]`,
			want:    map[string]string{"emails/1": `{"type":"home","value":"b@home.example"}`, "emails/0/value": `"bjensen@example.com"`},
			changed: true,
		},
		{
			name: "filtered replace with no match and a non-equality filter is noTarget",
			doc:  bareUserDoc,
			body: `[{"op":"replace","path":"emails[type eq \"work\" or type eq \"home\"].value","value":"x@example.com"}]`,
			patcher: &Patcher{ValueFilterParser: func(string) (ValueMatcher, error) {
				return MatchFunc(func(*schema.ResourceType, string, any) bool { return false }), nil
			}},
			err: NoTarget,
		},
		{
			name:    "filtered replace with an empty value and no match does nothing",
			doc:     bareUserDoc,
			body:    `[{"op":"replace","path":"emails[type eq \"work\"].value","value":""}]`,
			want:    map[string]string{"emails": absent},
			changed: false,
		},
		{
			name:    "filtered replace with null removes the matching elements",
			body:    `[{"op":"replace","path":"emails[type eq \"home\"]","value":null}]`,
			want:    map[string]string{"emails": `[{"value":"bjensen@example.com","type":"work","primary":true}]`},
			changed: true,
		},
		{
			name:    "filtered primary replace keeps a single primary",
			body:    `[{"op":"replace","path":"emails[type eq \"home\"].primary","value":true}]`,
			want:    map[string]string{"emails/0/primary": `false`, "emails/1/primary": `true`},
			changed: true,
		},
		{
			name:    "Microsoft case-insensitive attribute names are written canonically",
			body:    `[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:Department","value":"Sales"},{"op":"Replace","path":"NAME.GIVENNAME","value":"B"},{"op":"replace","path":"DisplayName","value":"D"}]`,
			want:    map[string]string{entURN + "/department": `"Sales"`, "name/givenName": `"B"`, "displayName": `"D"`, "DisplayName": absent},
			changed: true,
		},
		{
			name: "attribute stored in a non-canonical case is rewritten once",
			doc: func(t testing.TB) map[string]any {
				d := userDoc(t)
				d["NickName"] = "old"
				return d
			},
			body:    `[{"op":"replace","path":"nickName","value":"new"}]`,
			want:    map[string]string{"nickName": `"new"`, "NickName": absent},
			changed: true,
		},
		{
			name:    "schema-qualified core attribute",
			body:    `[{"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:userName","value":"babs"}]`,
			want:    map[string]string{"userName": `"babs"`},
			changed: true,
		},
		// --- path-less values --------------------------------------------
		{
			name: "Entra P7 path-less replace with dotted and URN-qualified keys",
			body: `[{"op":"replace","value":{
			          "displayName":"Babs J",
			          "name.givenName":"Kim",
			          "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"A42",
			          "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"Eng"}}]`,
			want: map[string]string{
				"displayName": `"Babs J"`, "name": `{"familyName":"Jensen","givenName":"Kim"}`,
				entURN + "/employeeNumber": `"A42"`, entURN + "/department": `"Eng"`,
				"name.givenName": absent,
			},
			changed: true,
		},
		{
			name:    "Entra path-less URN-qualified manager as a bare string",
			body:    `[{"op":"replace","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager":"mgrid"}}]`,
			want:    map[string]string{entURN + "/manager": `{"value":"mgrid"}`},
			changed: true,
		},
		{
			name:    "path-less value with an extension object",
			doc:     bareUserDoc,
			body:    `[{"op":"add","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Eng","manager":{"value":"m1","displayName":"ignored"}}}}]`,
			want:    map[string]string{entURN: `{"department":"Eng","manager":{"value":"m1"}}`, "schemas": `["urn:ietf:params:scim:schemas:core:2.0:User","` + entURN + `"]`},
			changed: true,
		},
		{
			name:    "Okta path-less replace ignores id, schemas, meta and groups",
			body:    `[{"op":"replace","value":{"id":"other","schemas":["x"],"meta":{"version":"1"},"groups":[{"value":"g"}],"displayName":"Babs Jensen"}}]`,
			want:    map[string]string{"id": `"2819c223-7f76-453a-919d-413861904646"`, "meta/version": `"W/\"3694e05e9dff590\""`, "displayName": `"Babs Jensen"`},
			changed: false,
		},
		{
			name:    "Microsoft path-less misspelled attribute is dropped",
			body:    `[{"op":"add","value":{"adreses":[{"type":"work"}],"nickName":"Babs"}}]`,
			want:    map[string]string{"adreses": absent, "nickName": `"Babs"`},
			changed: true,
		},
		{
			name:    "path-less keys under an unknown schema are ignored",
			body:    `[{"op":"replace","value":{"urn:okta:custom:1.0:User:shoeSize":"9","urn:okta:custom:1.0:User":{"x":1},"http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/User":{"x":1}}}]`,
			changed: false,
		},
		{
			name: "path-less value must be an object",
			body: `[{"op":"replace","value":"active"}]`,
			err:  InvalidValue,
		},
		{
			name:    "Entra string boolean inside a path-less value",
			body:    `[{"op":"Replace","value":{"active":"False"}}]`,
			want:    map[string]string{"active": `false`},
			changed: true,
		},
		{
			name:    "SailPoint path-less add of active",
			body:    `[{"op":"add","value":{"active":false}}]`,
			want:    map[string]string{"active": `false`},
			changed: true,
		},
		// --- add ---------------------------------------------------------
		{
			name:    "Entra P4 add on a singular attribute replaces it",
			body:    `[{"op":"Add","path":"title","value":"Chief Guide"}]`,
			want:    map[string]string{"title": `"Chief Guide"`},
			changed: true,
		},
		{
			name:    "add appends new values to a multi-valued attribute",
			body:    `[{"op":"add","path":"emails","value":[{"value":"b@other.example","type":"other"}]}]`,
			want:    map[string]string{"emails/2": `{"value":"b@other.example","type":"other"}`},
			changed: true,
		},
		{
			name:    "repeating an add is a no-op",
			body:    `[{"op":"add","path":"emails","value":[{"value":"BJensen@example.com","type":"work"}]}]`,
			want:    map[string]string{"emails/2": absent},
			changed: false,
		},
		{
			name:    "duplicates inside one add are added once",
			doc:     bareUserDoc,
			body:    `[{"op":"add","path":"emails","value":[{"value":"a@example.com"},{"value":"A@example.com"}]}]`,
			want:    map[string]string{"emails": `[{"value":"a@example.com"}]`},
			changed: true,
		},
		{
			name:    "add of a single object where an array is expected",
			body:    `[{"op":"add","path":"emails","value":{"value":"b@other.example","type":"other"}}]`,
			want:    map[string]string{"emails/2/value": `"b@other.example"`},
			changed: true,
		},
		{
			name:    "added primary value takes primary from the others",
			body:    `[{"op":"add","path":"emails","value":[{"value":"new@example.com","type":"work","primary":true}]}]`,
			want:    map[string]string{"emails/0/primary": `false`, "emails/2/primary": `true`},
			changed: true,
		},
		{
			name:    "Entra P8 manager as a bare string",
			body:    `[{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"271"}]`,
			want:    map[string]string{entURN + "/manager": `{"value":"271"}`},
			changed: true,
		},
		{
			name:    "Microsoft Manager.Value path",
			body:    `[{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:Manager.Value","value":"m9"}]`,
			want:    map[string]string{entURN + "/manager": `{"value":"m9"}`},
			changed: true,
		},
		{
			name: "Entra P9 roles with stringified JSON are kept as strings",
			doc:  bareUserDoc,
			body: `[{"op":"Add","path":"roles","value":[{"value":"{\"id\":\"06b07648-ecfe-589f-9d2f-6325724a46ee\",\"value\":\"Admin\",\"displayName\":\"Admin\"}","primary":"True"}]}]`,
			want: map[string]string{
				"roles": `[{"value":"{\"id\":\"06b07648-ecfe-589f-9d2f-6325724a46ee\",\"value\":\"Admin\",\"displayName\":\"Admin\"}","primary":true}]`,
			},
			changed: true,
		},
		{
			name:    "add to an extension the user does not have yet lists the schema",
			doc:     bareUserDoc,
			body:    `[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Eng"}]`,
			want:    map[string]string{entURN: `{"department":"Eng"}`, "schemas": `["urn:ietf:params:scim:schemas:core:2.0:User","` + entURN + `"]`},
			changed: true,
		},
		{
			name:    "add with the extension URN as path",
			body:    `[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","value":{"costCenter":"CC1"}}]`,
			want:    map[string]string{entURN + "/costCenter": `"CC1"`, entURN + "/department": `"Tour Operations"`},
			changed: true,
		},
		{
			name:    "sub-attribute path on an empty multi-valued attribute creates an element",
			doc:     bareUserDoc,
			body:    `[{"op":"add","path":"phoneNumbers.value","value":"+1 555 0100"}]`,
			want:    map[string]string{"phoneNumbers": `[{"value":"+1 555 0100"}]`},
			changed: true,
		},
		{
			name:    "number sent for a string attribute is kept as text",
			body:    `[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber","value":42}]`,
			want:    map[string]string{entURN + "/employeeNumber": `"42"`},
			changed: true,
		},
		{
			name:    "unknown sub-attributes inside a complex value are dropped",
			body:    `[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":{"managerId":"x","value":"m2"}}]`,
			want:    map[string]string{entURN + "/manager": `{"value":"m2"}`},
			changed: true,
		},
		{
			name: "object for a string attribute",
			body: `[{"op":"replace","path":"title","value":{"x":1}}]`,
			err:  InvalidValue,
		},
		{
			name: "string for a complex attribute without a value sub-attribute",
			body: `[{"op":"replace","path":"name","value":"Barbara"}]`,
			err:  InvalidValue,
		},
		// --- null / empty -------------------------------------------------
		{
			name:    "Entra null update clears an attribute",
			body:    `[{"op":"Replace","path":"title","value":""}]`,
			want:    map[string]string{"title": absent},
			changed: true,
		},
		{
			name:    "Entra manager removal by Replace with empty",
			body:    `[{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":""}]`,
			want:    map[string]string{entURN + "/manager": absent, entURN + "/department": `"Tour Operations"`},
			changed: true,
		},
		{
			name:    "null sub-attribute in a merge clears it",
			body:    `[{"op":"replace","path":"name","value":{"givenName":null}}]`,
			want:    map[string]string{"name": `{"familyName":"Jensen"}`},
			changed: true,
		},
		// --- remove ------------------------------------------------------
		{
			name:    "remove a singular attribute",
			body:    `[{"op":"remove","path":"title"}]`,
			want:    map[string]string{"title": absent},
			changed: true,
		},
		{
			name:    "remove an absent attribute is a no-op",
			body:    `[{"op":"remove","path":"nickName"}]`,
			changed: false,
		},
		{
			name:    "remove a sub-attribute",
			body:    `[{"op":"remove","path":"name.givenName"}]`,
			want:    map[string]string{"name": `{"familyName":"Jensen"}`},
			changed: true,
		},
		{
			name:    "remove elements selected by a filter",
			body:    `[{"op":"remove","path":"emails[type eq \"home\"]"}]`,
			want:    map[string]string{"emails": `[{"value":"bjensen@example.com","type":"work","primary":true}]`},
			changed: true,
		},
		{
			name:    "remove a sub-attribute of filtered elements",
			body:    `[{"op":"remove","path":"emails[type eq \"work\"].primary"}]`,
			want:    map[string]string{"emails/0": `{"value":"bjensen@example.com","type":"work"}`},
			changed: true,
		},
		{
			name:    "remove with a filter matching nothing is a no-op",
			body:    `[{"op":"remove","path":"emails[type eq \"other\"]"}]`,
			changed: false,
		},
		{
			name:    "remove the last element unassigns the attribute",
			body:    `[{"op":"remove","path":"emails[type eq \"home\"]"},{"op":"remove","path":"emails[type eq \"work\"]"}]`,
			want:    map[string]string{"emails": absent},
			changed: true,
		},
		{
			name:    "Entra-style remove with a value array removes only those values",
			body:    `[{"op":"Remove","path":"emails","value":[{"value":"babs@jensen.org"}]}]`,
			want:    map[string]string{"emails": `[{"value":"bjensen@example.com","type":"work","primary":true}]`},
			changed: true,
		},
		{
			name:    "remove with an empty value array removes nothing",
			body:    `[{"op":"remove","path":"emails","value":[]}]`,
			want:    map[string]string{"emails/1/value": `"babs@jensen.org"`},
			changed: false,
		},
		{
			name:    "remove a whole multi-valued attribute",
			body:    `[{"op":"remove","path":"emails"}]`,
			want:    map[string]string{"emails": absent},
			changed: true,
		},
		{
			name: "remove the last extension attribute drops the extension",
			body: `[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"},
			        {"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"},
			        {"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}]`,
			want:    map[string]string{entURN: absent, "schemas": `["urn:ietf:params:scim:schemas:core:2.0:User"]`},
			changed: true,
		},
		{
			name:    "remove the extension by its URN",
			body:    `[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}]`,
			want:    map[string]string{entURN: absent, "schemas": `["urn:ietf:params:scim:schemas:core:2.0:User"]`},
			changed: true,
		},
		{
			name: "remove a required attribute",
			body: `[{"op":"remove","path":"userName"}]`,
			err:  InvalidValue,
		},
		{
			name: "replace a required attribute with empty",
			body: `[{"op":"replace","value":{"userName":""}}]`,
			err:  InvalidValue,
		},
		// --- paths that are refused or ignored --------------------------
		{name: "unknown core attribute in a path", body: `[{"op":"replace","path":"shoeSize","value":"9"}]`, err: InvalidPath},
		{name: "unknown sub-attribute in a path", body: `[{"op":"replace","path":"name.nick","value":"9"}]`, err: InvalidPath},
		{name: "sub-attribute of a simple attribute", body: `[{"op":"replace","path":"title.value","value":"9"}]`, err: InvalidPath},
		{name: "unknown attribute of a known extension", body: `[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:shoeSize","value":"9"}]`, err: InvalidPath},
		{name: "filter on a singular attribute", body: `[{"op":"replace","path":"name[givenName eq \"x\"].familyName","value":"9"}]`, err: InvalidPath},
		{name: "members on a user", body: `[{"op":"add","path":"members","value":[{"value":"x"}]}]`, err: InvalidPath},
		{
			name:    "attribute under an unknown schema URN is ignored",
			body:    `[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:acme:2.0:User:badge","value":"9"}]`,
			changed: false,
		},
		{
			name:    "a client writing schemas is ignored",
			body:    `[{"op":"add","path":"schemas","value":["urn:x"]}]`,
			want:    map[string]string{"schemas/1": `"` + entURN + `"`, "schemas/2": absent},
			changed: false,
		},
		{name: "read-only id in a path", body: `[{"op":"replace","path":"id","value":"x"}]`, err: Mutability},
		{name: "read-only meta in a path", body: `[{"op":"replace","path":"meta.lastModified","value":"2020-01-01T00:00:00Z"}]`, err: Mutability},
		{name: "read-only groups in a path", body: `[{"op":"add","path":"groups","value":[{"value":"g"}]}]`, err: Mutability},
		{name: "read-only manager.displayName in a path", body: `[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName","value":"x"}]`, err: Mutability},
		{name: "remove the core schema", body: `[{"op":"remove","path":"urn:ietf:params:scim:schemas:core:2.0:User"}]`, err: InvalidPath},
		{
			name:    "value filter without a configured parser",
			patcher: &Patcher{},
			body:    `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"x"}]`,
			err:     InvalidPath,
		},
		{
			name: "value filter the parser refuses",
			body: `[{"op":"replace","path":"emails[type sw \"w\"].value","value":"x"}]`,
			err:  InvalidPath,
		},
		{
			name: "parser returning a nil matcher",
			patcher: &Patcher{ValueFilterParser: func(string) (ValueMatcher, error) {
				return nil, nil
			}},
			body: `[{"op":"remove","path":"emails[type eq \"work\"]"}]`,
			err:  InvalidPath,
		},
		{
			name: "parser error of type *Error passes through",
			patcher: &Patcher{ValueFilterParser: func(string) (ValueMatcher, error) {
				return nil, &Error{ScimType: "invalidFilter", Detail: "bad"}
			}},
			body: `[{"op":"remove","path":"emails[type eq \"work\"]"}]`,
			err:  "invalidFilter",
		},
		{
			name: "one failing operation rejects the whole request",
			body: `[{"op":"replace","path":"title","value":"x"},{"op":"replace","path":"id","value":"x"}]`,
			err:  Mutability,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runApply(t, tc) })
	}
}

// TestApplyGroup covers group PATCHes: displayName and the member delta.
func TestApplyGroup(t *testing.T) {
	g := func(tc applyCase) applyCase {
		tc.rt = schema.GroupType
		tc.doc = groupDoc
		return tc
	}
	tests := []applyCase{
		g(applyCase{
			name:    "Entra P10 multi-member add with $ref null and no type",
			body:    `[{"op":"Add","path":"members","value":[{"$ref":null,"value":"id1"},{"value":"id2"}]}]`,
			members: MemberDelta{Add: []Member{{Value: "id1"}, {Value: "id2"}}},
			want:    map[string]string{"members": absent},
		}),
		g(applyCase{
			name:    "Entra P11 remove with a value array removes exactly those members",
			body:    `[{"op":"Remove","path":"members","value":[{"value":"u1091"}]}]`,
			members: MemberDelta{Remove: []string{"u1091"}},
		}),
		g(applyCase{
			name:    "Entra P11 remove with an empty value array removes nobody",
			body:    `[{"op":"Remove","path":"members","value":[]}]`,
			members: MemberDelta{},
		}),
		g(applyCase{
			name:    "Okta P12 remove members[value eq id]",
			body:    `[{"op":"remove","path":"members[value eq \"2819c223-7f76-453a-919d-413861904646\"]"}]`,
			members: MemberDelta{Remove: []string{"2819c223-7f76-453a-919d-413861904646"}},
		}),
		g(applyCase{
			name:    "members filter with or",
			body:    `[{"op":"remove","path":"members[value eq \"a\" or value eq \"b\"]"}]`,
			members: MemberDelta{Remove: []string{"a", "b"}},
		}),
		g(applyCase{
			name:    "Okta P13 replace members is a full sync",
			body:    `[{"op":"replace","path":"members","value":[{"value":"u1","display":"Ann"},{"value":"u2","display":"Bob"}]}]`,
			members: MemberDelta{Replace: true, Add: []Member{{Value: "u1", Display: "Ann"}, {Value: "u2", Display: "Bob"}}},
		}),
		g(applyCase{
			name:    "Okta P13 replace members [] empties the group",
			body:    `[{"op":"replace","path":"members","value":[]}]`,
			members: MemberDelta{Replace: true},
		}),
		g(applyCase{
			name:    "RFC remove members without value removes all",
			body:    `[{"op":"remove","path":"members"}]`,
			members: MemberDelta{RemoveAll: true},
		}),
		g(applyCase{
			name:    "Microsoft P18 member added as a bare string",
			body:    `[{"op":"add","path":"members","value":"string id 1"}]`,
			members: MemberDelta{Add: []Member{{Value: "string id 1"}}},
		}),
		g(applyCase{
			name:    "Microsoft member object with displayName",
			body:    `[{"name":"addMember","op":"add","path":"members","value":[{"displayName":"new User","value":"id4"}]}]`,
			members: MemberDelta{Add: []Member{{Value: "id4", Display: "new User"}}},
		}),
		g(applyCase{
			name:    "member type is kept when given",
			body:    `[{"op":"add","path":"members","value":[{"value":"g2","type":"Group"}]}]`,
			members: MemberDelta{Add: []Member{{Value: "g2", Type: "Group"}}},
		}),
		g(applyCase{
			name:    "Okta membership change in one request: remove then add",
			body:    `[{"op":"remove","path":"members[value eq \"u1\"]"},{"op":"add","path":"members","value":[{"value":"u2","display":"Bob"}]}]`,
			members: MemberDelta{Add: []Member{{Value: "u2", Display: "Bob"}}, Remove: []string{"u1"}},
		}),
		g(applyCase{
			name:    "add then remove of the same member leaves it removed",
			body:    `[{"op":"add","path":"members","value":[{"value":"u1"}]},{"op":"remove","path":"members[value eq \"u1\"]"}]`,
			members: MemberDelta{Remove: []string{"u1"}},
		}),
		g(applyCase{
			name:    "remove then add of the same member leaves it added",
			body:    `[{"op":"remove","path":"members","value":[{"value":"u1"}]},{"op":"add","path":"members","value":[{"value":"u1"}]}]`,
			members: MemberDelta{Add: []Member{{Value: "u1"}}},
		}),
		g(applyCase{
			name:    "duplicate members in one add are merged",
			body:    `[{"op":"add","path":"members","value":[{"value":"u1"},{"value":"u1","display":"Ann"},"u1"]}]`,
			members: MemberDelta{Add: []Member{{Value: "u1", Display: "Ann"}}},
		}),
		g(applyCase{
			name:    "remove all then add",
			body:    `[{"op":"remove","path":"members"},{"op":"add","path":"members","value":[{"value":"u3"}]}]`,
			members: MemberDelta{RemoveAll: true, Add: []Member{{Value: "u3"}}},
		}),
		g(applyCase{
			name:    "replace then remove keeps the exact set",
			body:    `[{"op":"replace","path":"members","value":[{"value":"u1"},{"value":"u2"}]},{"op":"remove","path":"members[value eq \"u1\"]"}]`,
			members: MemberDelta{Replace: true, Add: []Member{{Value: "u2"}}},
		}),
		g(applyCase{
			name:    "path-less replace with members",
			body:    `[{"op":"replace","value":{"members":[{"value":"u1"}]}}]`,
			members: MemberDelta{Replace: true, Add: []Member{{Value: "u1"}}},
		}),
		g(applyCase{
			name:    "path-less add with members",
			body:    `[{"op":"add","value":{"members":[{"value":"u1"}]}}]`,
			members: MemberDelta{Add: []Member{{Value: "u1"}}},
		}),
		g(applyCase{
			name:    "Okta P14 rename sent with every membership update, same name",
			body:    `[{"op":"replace","value":{"id":"e9e30dba-f08f-4109-8486-d5c6a331660a","displayName":"Tour Guides"}}]`,
			changed: false,
			members: MemberDelta{},
		}),
		g(applyCase{
			name:    "Okta P14 rename with a new name never touches members",
			body:    `[{"op":"replace","value":{"id":"e9e30dba-f08f-4109-8486-d5c6a331660a","displayName":"Guides"}}]`,
			want:    map[string]string{"displayName": `"Guides"`, "id": `"e9e30dba-f08f-4109-8486-d5c6a331660a"`},
			changed: true,
			members: MemberDelta{},
		}),
		g(applyCase{
			name:    "Entra P15 replace displayName",
			body:    `[{"op":"Replace","path":"displayName","value":"1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}]`,
			want:    map[string]string{"displayName": `"1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"`},
			changed: true,
		}),
		g(applyCase{
			name:    "replace members[value eq x] swaps the member",
			body:    `[{"op":"replace","path":"members[value eq \"u1\"]","value":{"value":"u9"}}]`,
			members: MemberDelta{Add: []Member{{Value: "u9"}}, Remove: []string{"u1"}},
		}),
		g(applyCase{
			name:    "add members[value eq x] without value adds x",
			body:    `[{"op":"add","path":"members[value eq \"u1\"]","value":null}]`,
			members: MemberDelta{Add: []Member{{Value: "u1"}}},
		}),
		g(applyCase{
			name:    "members case-insensitive path",
			body:    `[{"op":"add","path":"Members","value":[{"Value":"u1","Display":"Ann","Type":"User"}]}]`,
			members: MemberDelta{Add: []Member{{Value: "u1", Display: "Ann", Type: "User"}}},
		}),
		g(applyCase{
			name: "unsupported members filter",
			body: `[{"op":"remove","path":"members[display eq \"Ann\"]"}]`,
			err:  InvalidPath,
		}),
		g(applyCase{
			name: "member sub-attribute path",
			body: `[{"op":"replace","path":"members[value eq \"u1\"].display","value":"x"}]`,
			err:  Mutability,
		}),
		g(applyCase{
			name: "member without value",
			body: `[{"op":"add","path":"members","value":[{"display":"Ann"}]}]`,
			err:  InvalidValue,
		}),
		g(applyCase{
			name: "member value of the wrong type",
			body: `[{"op":"add","path":"members","value":[{"value":{"id":"x"}}]}]`,
			err:  InvalidValue,
		}),
		g(applyCase{
			name: "member as a number in an array of garbage",
			body: `[{"op":"add","path":"members","value":[true]}]`,
			err:  InvalidValue,
		}),
		g(applyCase{
			name: "remove the group's displayName",
			body: `[{"op":"remove","path":"displayName"}]`,
			err:  InvalidValue,
		}),
		g(applyCase{
			name: "a failed member op rejects the whole request",
			body: `[{"op":"add","path":"members","value":[{"value":"u1"}]},{"op":"replace","path":"id","value":"x"}]`,
			err:  Mutability,
		}),
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runApply(t, tc) })
	}
}

// TestApplyDoesNotShareValues checks that the result shares no maps or
// slices with the input document or the operations.
func TestApplyDoesNotShareValues(t *testing.T) {
	doc := userDoc(t)
	ops, err := ParseRequest([]byte(wrapOps(`[{"op":"add","path":"emails","value":[{"value":"x@example.com"}]},{"op":"replace","path":"name","value":{"givenName":"B"}}]`)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := testPatcher().Apply(schema.UserType, doc, ops)
	if err != nil {
		t.Fatal(err)
	}
	res.Doc["emails"].([]any)[0].(map[string]any)["value"] = "mutated"
	res.Doc["name"].(map[string]any)["familyName"] = "mutated"
	res.Doc[entURN].(map[string]any)["department"] = "mutated"
	if !reflect.DeepEqual(doc, userDoc(t)) {
		t.Fatal("result shares values with the input")
	}
	again, err := testPatcher().Apply(schema.UserType, userDoc(t), ops)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Doc["name"].(map[string]any)["givenName"]; got != "B" {
		t.Fatalf("operations were modified: %v", got)
	}
}

// TestApplyTypedDocument checks documents built in Go with []string and
// map[string]string values.
func TestApplyTypedDocument(t *testing.T) {
	doc := map[string]any{
		"schemas":  []string{schema.UserURN},
		"id":       "u1",
		"userName": "a",
		"name":     map[string]string{"givenName": "A"},
	}
	ops := []Operation{{Op: "replace", Path: "name.givenName", Value: "A"}}
	res, err := testPatcher().Apply(schema.UserType, doc, ops)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed {
		t.Fatal("no-op reported as a change")
	}
	ops = []Operation{{Op: "add", Path: entURN + ":department", Value: "Eng"}}
	res, err = testPatcher().Apply(schema.UserType, doc, ops)
	if err != nil {
		t.Fatal(err)
	}
	checkDoc(t, res.Doc, map[string]string{"schemas": `["` + schema.UserURN + `","` + entURN + `"]`})
	if len(doc["schemas"].([]string)) != 1 {
		t.Fatal("input modified")
	}
}

func TestApplyNilInputs(t *testing.T) {
	if _, err := testPatcher().Apply(nil, nil, nil); errType(err) != InvalidValue {
		t.Fatalf("nil resource type: %v", err)
	}
	var p *Patcher
	res, err := p.Apply(schema.GroupType, nil, []Operation{{Op: "add", Path: "displayName", Value: "G"}})
	if err != nil || !res.Changed || res.Doc["displayName"] != "G" {
		t.Fatalf("nil patcher on nil doc: %+v, %v", res, err)
	}
	res, err = p.Apply(schema.GroupType, nil, nil)
	if err != nil || res.Changed || res.Doc == nil {
		t.Fatalf("no ops: %+v, %v", res, err)
	}
}

// TestApplyConcurrent shares one Patcher, one input document and one
// operation list between goroutines (run with -race).
func TestApplyConcurrent(t *testing.T) {
	p := testPatcher()
	doc := userDoc(t)
	ops, err := ParseRequest([]byte(wrapOps(`[{"op":"replace","value":{"name.givenName":"K","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager":"m"}},{"op":"add","path":"emails[type eq \"other\"].value","value":"o@example.com"},{"op":"remove","path":"emails[type eq \"home\"]"}]`)))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				res, err := p.Apply(schema.UserType, doc, ops)
				if err != nil || !res.Changed {
					t.Errorf("Apply: %v", err)
					return
				}
				res.Doc["title"] = "mine"
			}
		})
	}
	wg.Wait()
	if !reflect.DeepEqual(doc, userDoc(t)) {
		t.Fatal("input modified")
	}
}

// TestApplyHandBuiltOperations checks operations not produced by
// ParseRequest.
func TestApplyHandBuiltOperations(t *testing.T) {
	p := testPatcher()
	for _, op := range []Operation{
		{Op: "remove"},
		{Op: "remove", Path: "emails["},
		{Op: "move", Path: "title", Value: "x"},
	} {
		_, err := p.Apply(schema.UserType, userDoc(t), []Operation{op})
		if err == nil {
			t.Errorf("%+v: no error", op)
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%+v: %T", op, err)
		}
	}
}

// TestErrorInterface checks the error's methods.
func TestErrorInterface(t *testing.T) {
	_, err := ParseRequest([]byte(`{`))
	var e *Error
	if !errors.As(err, &e) || e.Status() != 400 || e.Error() == "" {
		t.Fatalf("bad error: %#v", err)
	}
}
