package app_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/scimd/scimd/scim/schema"
)

// TestTeammateExtensionOverSCIM: a user's decided role, access, exclusion,
// reasons and policy revision are readable on its SCIM User in the
// read-only Teammate extension, listed in /Schemas and /ResourceTypes,
// filterable, and ignored when a client writes it.
func TestTeammateExtensionOverSCIM(t *testing.T) {
	e := newEnv(t)
	admins := e.createGroup("Intercom Admins")
	bob := e.createUser("bob@example.com", nil)
	carol := e.createUser("carol@example.com", nil)
	e.addMembers(admins, bob)
	e.idle()
	e.expect(bob, "admin", true)

	getUser := func(id string) map[string]any {
		var u map[string]any
		_ = json.Unmarshal(e.mustDo(http.MethodGet, e.scim+"/Users/"+id, e.token, nil, 200), &u)
		return u
	}
	u := getUser(bob)
	ext, _ := u[schema.TeammateURN].(map[string]any)
	if ext["role"] != "admin" || ext["access"] != true || ext["excluded"] != false || ext["policyRevision"] != e.policyRevision() {
		t.Fatalf("Teammate extension %v (revision %s)", ext, e.policyRevision())
	}
	if r, _ := ext["reasons"].([]any); len(r) == 0 || !strings.Contains(r[0].(string), "Intercom Admins") {
		t.Fatalf("reasons %v", ext["reasons"])
	}
	if !strings.Contains(fmtJSON(u["schemas"]), schema.TeammateURN) {
		t.Fatalf("schemas %v lack the extension", u["schemas"])
	}
	if c := getUser(carol)[schema.TeammateURN].(map[string]any); c["access"] != false || c["role"] != nil {
		t.Fatalf("carol's extension %v", c)
	}

	// Filterable, with and without the URN.
	for _, f := range []string{schema.TeammateURN + `:role eq "admin"`, schema.TeammateURN + `:access eq true`} {
		var list struct {
			TotalResults int
			Resources    []struct{ ID string }
		}
		_ = json.Unmarshal(e.mustDo(http.MethodGet, e.scim+"/Users?filter="+url.QueryEscape(f), e.token, nil, 200), &list)
		if list.TotalResults != 1 || list.Resources[0].ID != bob {
			t.Fatalf("filter %s: %+v", f, list)
		}
	}
	// Listed in /Schemas and /ResourceTypes.
	if b := string(e.mustDo(http.MethodGet, e.scim+"/Schemas/"+schema.TeammateURN, e.token, nil, 200)); !strings.Contains(b, `"policyRevision"`) || !strings.Contains(b, `"readOnly"`) {
		t.Fatalf("/Schemas: %s", b)
	}
	if b := string(e.mustDo(http.MethodGet, e.scim+"/ResourceTypes/User", e.token, nil, 200)); !strings.Contains(b, schema.TeammateURN) {
		t.Fatalf("/ResourceTypes/User: %s", b)
	}

	// Writes of the extension are ignored: PUT (an IdP echoing the whole
	// representation), POST and PATCH.
	u[schema.TeammateURN] = map[string]any{"role": "viewer", "access": false}
	e.mustDo(http.MethodPut, e.scim+"/Users/"+bob, e.token, u, 200)
	e.mustDo(http.MethodPatch, e.scim+"/Users/"+bob, e.token, patchOp(map[string]any{"op": "replace",
		"value": map[string]any{"title": "x", schema.TeammateURN: map[string]any{"role": "viewer"}, schema.TeammateURN + ":access": false}}), 200, 204)
	// A PATCH path naming a read-only attribute is 400 mutability (RFC 7644
	// §3.5.2).
	e.mustDo(http.MethodPatch, e.scim+"/Users/"+bob, e.token, patchOp(map[string]any{"op": "replace", "path": schema.TeammateURN + ":role", "value": "viewer"}), 400)
	e.idle()
	if ext := getUser(bob)[schema.TeammateURN].(map[string]any); ext["role"] != "admin" {
		t.Fatalf("a client write changed the extension: %v", ext)
	}
	e.expect(bob, "admin", true)
	created := e.mustDo(http.MethodPost, e.scim+"/Users", e.token, map[string]any{
		"userName": "dave@example.com", schema.TeammateURN: map[string]any{"role": "admin", "access": true}}, 201)
	var d map[string]any
	_ = json.Unmarshal(created, &d)
	e.idle()
	if ext := getUser(d["id"].(string))[schema.TeammateURN].(map[string]any); ext["role"] != nil || ext["access"] != false {
		t.Fatalf("POST set the extension: %v", ext)
	}
}

func fmtJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
