package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/scimd/scimd/scim/schema"
	"github.com/scimd/scimd/scim/store"
)

// TestNormalizationRules sends, for each tolerance rule of POST and PUT
// bodies (normalize.go), the payload the IdP that needs it sends, through
// the HTTP handler, and checks what was stored. Removing a rule makes its
// case fail.
func TestNormalizationRules(t *testing.T) {
	const ent = schema.EnterpriseUserURN
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, ts *testServer, stored *store.Resource)
	}{
		{
			name: "ignoreServerAttributes: Okta full-object body with id, meta, groups",
			body: `{"schemas":["` + schema.UserURN + `"],"id":"not-mine","userName":"okta1@example.com",
				"meta":{"resourceType":"User","created":"2001-01-01T00:00:00Z"},"groups":[],"active":true}`,
			check: func(t *testing.T, _ *testServer, r *store.Resource) {
				if r.ID == "not-mine" || r.Created.Year() == 2001 {
					t.Fatalf("client id/meta were stored: %+v", r)
				}
				if _, ok := r.Attrs["groups"]; ok {
					t.Fatal("read-only groups stored")
				}
			},
		},
		{
			name: "dropWriteOnlyPassword: Okta sends a password on create",
			body: `{"userName":"okta2@example.com","password":"hunter2","active":true}`,
			check: func(t *testing.T, ts *testServer, r *store.Resource) {
				if _, ok := r.Attrs["password"]; ok {
					t.Fatal("password stored")
				}
				got := ts.do(http.MethodGet, "/Users/"+r.ID, nil)
				if strings.Contains(string(got.Body), "hunter2") {
					t.Fatal("password returned")
				}
			},
		},
		{
			name: "entraStringBooleans: \"False\" and \"True\" for booleans",
			body: `{"userName":"entra1@example.com","active":"False","emails":[{"value":"e@example.com","primary":"True"}]}`,
			check: func(t *testing.T, _ *testServer, r *store.Resource) {
				if r.Attrs["active"] != false {
					t.Fatalf("active = %#v", r.Attrs["active"])
				}
				email := r.Attrs["emails"].([]any)[0].(map[string]any)
				if email["primary"] != true {
					t.Fatalf("primary = %#v", email["primary"])
				}
			},
		},
		{
			name: "entraManagerAsString: manager given as a bare id",
			body: `{"userName":"entra2@example.com","` + ent + `":{"manager":"mgr-123","department":"Support"}}`,
			check: func(t *testing.T, _ *testServer, r *store.Resource) {
				ext := r.Attrs[ent].(map[string]any)
				m, ok := ext["manager"].(map[string]any)
				if !ok || m["value"] != "mgr-123" {
					t.Fatalf("manager = %#v", ext["manager"])
				}
			},
		},
		{
			name: "singleValueForMultiValued: an object where an array is expected",
			body: `{"userName":"single@example.com","emails":{"value":"s@example.com","type":"work"}}`,
			check: func(t *testing.T, _ *testServer, r *store.Resource) {
				list, ok := r.Attrs["emails"].([]any)
				if !ok || len(list) != 1 || list[0].(map[string]any)["value"] != "s@example.com" {
					t.Fatalf("emails = %#v", r.Attrs["emails"])
				}
			},
		},
		{
			name: "ignoreUnknownAttributes: unknown attributes and Entra's ADSCIM extension",
			body: `{"schemas":["` + schema.UserURN + `","urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"],
				"userName":"unknown@example.com","adreses":[{"country":"DE"}],
				"urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User":{"x":"y"}}`,
			check: func(t *testing.T, _ *testServer, r *store.Resource) {
				for k := range r.Attrs {
					if k == "adreses" || strings.Contains(k, "CustomExtensionName") {
						t.Fatalf("unknown attribute %q stored", k)
					}
				}
			},
		},
		{
			name: "urnQualifiedAttributes: extension attribute as a top-level URN key",
			body: `{"userName":"urn@example.com","` + ent + `:department":"Support"}`,
			check: func(t *testing.T, _ *testServer, r *store.Resource) {
				ext, _ := r.Attrs[ent].(map[string]any)
				if ext["department"] != "Support" {
					t.Fatalf("enterprise extension = %#v", r.Attrs[ent])
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t)
			r := expect(t, ts.do(http.MethodPost, "/Users", json.RawMessage(tc.body)), http.StatusCreated)
			id, _ := r.JSON["id"].(string)
			stored, ok := ts.Store.Read().Resource(store.KindUser, id)
			if !ok {
				t.Fatalf("user %s not stored", id)
			}
			tc.check(t, ts, stored)
			// The same body through PUT is normalised the same way.
			expect(t, ts.do(http.MethodPut, "/Users/"+id, json.RawMessage(tc.body)), http.StatusOK)
			stored, _ = ts.Store.Read().Resource(store.KindUser, id)
			tc.check(t, ts, stored)
		})
	}
}

// TestBareMemberIDs: Microsoft's test collection sends group members as
// plain id strings and "displayName" instead of "display"; Entra sends
// "$ref": null and no type.
func TestBareMemberIDs(t *testing.T) {
	ts := newTestServer(t)
	u1, _ := ts.createUser("m1@example.com")["id"].(string)
	u2, _ := ts.createUser("m2@example.com")["id"].(string)
	u3, _ := ts.createUser("m3@example.com")["id"].(string)
	body := `{"displayName":"G","members":["` + u1 + `",{"value":"` + u2 + `","displayName":"Second"},{"value":"` + u3 + `","$ref":null}]}`
	r := expect(t, ts.do(http.MethodPost, "/Groups", json.RawMessage(body)), http.StatusCreated)
	gid, _ := r.JSON["id"].(string)
	members := ts.Store.Read().Members(gid)
	if len(members) != 3 {
		t.Fatalf("members = %d, want 3", len(members))
	}
	for _, m := range members {
		if m.MemberID == u2 && m.Display != "Second" {
			t.Fatalf("display of %s = %q", u2, m.Display)
		}
	}
}
