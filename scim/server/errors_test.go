package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/scimd/scimd/scim/server"
)

func TestErrors(t *testing.T) {
	ts := newTestServer(t, func(o *server.Options) { o.MaxBodyBytes = 4096 })
	taken := ts.createUser("Taken@Example.com")
	takenID := str(taken, "id")
	ts.createGroup("Admins")
	bigName := strings.Repeat("x", 5000)

	tests := []struct {
		name     string
		method   string
		path     string
		body     any
		opts     []reqOpt
		status   int
		scimType string
	}{
		{"invalid JSON", http.MethodPost, "/Users", `{"userName": "a",`, nil, 400, "invalidSyntax"},
		{"JSON array", http.MethodPost, "/Users", `[{"userName": "a"}]`, nil, 400, "invalidSyntax"},
		{"JSON null", http.MethodPost, "/Users", `null`, nil, 400, "invalidSyntax"},
		{"trailing data", http.MethodPost, "/Users", `{"userName": "a"} {}`, nil, 400, "invalidSyntax"},
		{"empty body", http.MethodPost, "/Users", ``, nil, 400, "invalidSyntax"},
		{"missing userName", http.MethodPost, "/Users", map[string]any{"displayName": "No Name"}, nil, 400, "invalidValue"},
		{"blank userName", http.MethodPost, "/Users", userBody("   "), nil, 400, "invalidValue"},
		{"userName not a string", http.MethodPost, "/Users", map[string]any{"userName": map[string]any{"a": 1}}, nil, 400, "invalidValue"},
		{"active not a boolean", http.MethodPost, "/Users", userBody("h", "active", "maybe"), nil, 400, "invalidValue"},
		{"missing displayName", http.MethodPost, "/Groups", map[string]any{"members": []any{}}, nil, 400, "invalidValue"},
		{"duplicate userName, other case", http.MethodPost, "/Users", userBody("taken@example.COM"), nil, 409, "uniqueness"},
		{"duplicate displayName", http.MethodPost, "/Groups", groupBody("admins"), nil, 409, "uniqueness"},
		{"PUT to a taken userName", http.MethodPut, "/Users/" + takenID, userBody("Taken@Example.com", "displayName", "ok"), nil, 200, ""},
		{"unknown user", http.MethodGet, "/Users/does-not-exist", nil, nil, 404, ""},
		{"unknown group", http.MethodGet, "/Groups/does-not-exist", nil, nil, 404, ""},
		{"PUT unknown user", http.MethodPut, "/Users/does-not-exist", userBody("x"), nil, 404, ""},
		{"PATCH unknown group", http.MethodPatch, "/Groups/does-not-exist", patchBody(op("replace", "displayName", "x")), nil, 404, ""},
		{"DELETE unknown user", http.MethodDelete, "/Users/does-not-exist", nil, nil, 404, ""},
		{"missing token", http.MethodGet, "/Users", nil, []reqOpt{withToken("")}, 401, ""},
		{"bad token", http.MethodGet, "/Users", nil, []reqOpt{withToken("scimd_wrong")}, 401, ""},
		{"basic auth", http.MethodGet, "/Users", nil, []reqOpt{withHeader("Authorization", "Basic "+ts.Token)}, 401, ""},
		{"bad token on write", http.MethodPost, "/Users", userBody("intruder"), []reqOpt{withToken("scimd_wrong")}, 401, ""},
		{"invalid filter", http.MethodGet, "/Users?filter=" + urlq(`userName eq`), nil, nil, 400, "invalidFilter"},
		{"invalid filter operator", http.MethodGet, "/Users?filter=" + urlq(`userName xx "a"`), nil, nil, 400, "invalidFilter"},
		{"unbalanced filter", http.MethodGet, "/Groups?filter=" + urlq(`(displayName eq "a"`), nil, nil, 400, "invalidFilter"},
		{"bare-word filter", http.MethodGet, "/Users?filter=ALICE", nil, nil, 400, "invalidFilter"},
		{"startIndex not a number", http.MethodGet, "/Users?startIndex=one", nil, nil, 400, "invalidValue"},
		{"count not a number", http.MethodGet, "/Users?count=many", nil, nil, 400, "invalidValue"},
		{"body too large", http.MethodPost, "/Users", userBody(bigName), nil, 413, ""},
		{"PATCH body too large", http.MethodPatch, "/Users/" + takenID, patchBody(op("replace", "displayName", bigName)), nil, 413, ""},
		{"PUT body too large", http.MethodPut, "/Users/" + takenID, userBody(bigName), nil, 413, ""},
		{"PATCH invalid JSON", http.MethodPatch, "/Users/" + takenID, `{"Operations":[`, nil, 400, "invalidSyntax"},
		{"PATCH without Operations", http.MethodPatch, "/Users/" + takenID, `{"schemas":[]}`, nil, 400, "invalidSyntax"},
		{"PATCH unknown op", http.MethodPatch, "/Users/" + takenID, patchBody(op("merge", "displayName", "x")), nil, 400, "*"},
		{"PATCH remove without path", http.MethodPatch, "/Users/" + takenID, patchBody(op("remove", "", nil)), nil, 400, "noTarget"},
		{"PATCH bad path", http.MethodPatch, "/Users/" + takenID, patchBody(op("replace", "emails[type eq", "x")), nil, 400, "invalidPath"},
		{"PATCH removes userName", http.MethodPatch, "/Users/" + takenID, patchBody(op("remove", "userName", nil)), nil, 400, "*"},
		{"POST ServiceProviderConfig", http.MethodPost, "/ServiceProviderConfig", `{}`, nil, 405, ""},
		{"POST ResourceTypes", http.MethodPost, "/ResourceTypes", `{}`, nil, 405, ""},
		{"POST Schemas", http.MethodPost, "/Schemas", `{}`, nil, 405, ""},
		{"PUT Schemas", http.MethodPut, "/Schemas", `{}`, nil, 405, ""},
		{"DELETE ServiceProviderConfig", http.MethodDelete, "/ServiceProviderConfig", nil, nil, 405, ""},
		{"GET Me", http.MethodGet, "/Me", nil, nil, 501, ""},
		{"DELETE the collection", http.MethodDelete, "/Users", nil, nil, 405, ""},
		{"PATCH the collection", http.MethodPatch, "/Groups", patchBody(op("replace", "displayName", "x")), nil, 405, ""},
		{"POST to a user", http.MethodPost, "/Users/" + takenID, userBody("x"), nil, 405, ""},
		{"HEAD a user", http.MethodHead, "/Users/" + takenID, nil, nil, 405, ""},
		{"PUT the collection with a slash", http.MethodPut, "/Users/", userBody("x"), nil, 405, ""},
		{"unknown endpoint", http.MethodGet, "/Widgets", nil, nil, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.commit()
			r := ts.do(tc.method, tc.path, tc.body, tc.opts...)
			if tc.status < 400 {
				expect(t, r, tc.status)
				return
			}
			if tc.method == http.MethodHead {
				// No body: only the status and the Allow header.
				expect(t, r, tc.status)
				if r.Header.Get("Allow") == "" {
					t.Errorf("405 without Allow")
				}
				ts.unchanged(t, before)
				return
			}
			checkSCIMError(t, r, tc.status, tc.scimType)
			if tc.status == http.StatusMethodNotAllowed && r.Header.Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
			if tc.status == http.StatusUnauthorized && r.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			ts.unchanged(t, before)
		})
	}

	// Nothing the bad requests sent exists.
	list := resources(t, expect(t, ts.list("/Users"), http.StatusOK))
	if len(list) != 1 || str(list[0], "id") != takenID || str(list[0], "userName") != "Taken@Example.com" {
		t.Errorf("users after the bad requests: %v", list)
	}
	groups := resources(t, expect(t, ts.list("/Groups"), http.StatusOK))
	if len(groups) != 1 {
		t.Errorf("groups after the bad requests: %v", groups)
	}
}

// TestRejectedRenameChangesNothing: a PUT or PATCH that would take another
// resource's name is refused with 409 and leaves both resources alone.
func TestRejectedRenameChangesNothing(t *testing.T) {
	ts := newTestServer(t)
	a := ts.createUser("ann")
	b := ts.createUser("ben")
	ga := ts.createGroup("Alpha", str(a, "id"))
	ts.createGroup("Beta")
	tests := []struct {
		name, method, path string
		body               any
	}{
		{"PUT user", http.MethodPut, "/Users/" + str(b, "id"), userBody("ANN")},
		{"PATCH user", http.MethodPatch, "/Users/" + str(b, "id"), patchBody(op("replace", "userName", "Ann"))},
		{"PATCH user path-less", http.MethodPatch, "/Users/" + str(b, "id"), patchBody(op("replace", "", map[string]any{"userName": "ann"}))},
		{"PUT group", http.MethodPut, "/Groups/" + str(ga, "id"), groupBody("beta")},
		{"PATCH group with members", http.MethodPatch, "/Groups/" + str(ga, "id"), patchBody(
			op("add", "members", []any{map[string]any{"value": str(b, "id")}}),
			op("replace", "displayName", "BETA"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.commit()
			checkSCIMError(t, ts.do(tc.method, tc.path, tc.body), http.StatusConflict, "uniqueness")
			ts.unchanged(t, before)
		})
	}
	g := expect(t, ts.do(http.MethodGet, "/Groups/"+str(ga, "id"), nil), http.StatusOK)
	if got := memberIDs(g.JSON); len(got) != 1 || got[0] != str(a, "id") {
		t.Errorf("members after a refused PATCH: %v", got)
	}
}

func TestContentTypes(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		name, contentType string
	}{
		{"application/json", "application/json"},
		{"scim+json with charset", "application/scim+json; charset=utf-8"},
		{"none", ""},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "ct" + string(rune('a'+i))
			r := ts.do(http.MethodPost, "/Users", userBody(name), func(r *http.Request) {
				if tc.contentType == "" {
					r.Header.Del("Content-Type")
				} else {
					r.Header.Set("Content-Type", tc.contentType)
				}
			})
			expect(t, r, http.StatusCreated)
			if ct := r.Header.Get("Content-Type"); ct != server.ContentType {
				t.Errorf("response Content-Type %q", ct)
			}
			id := str(r.JSON, "id")
			pr := ts.do(http.MethodPatch, "/Users/"+id, patchBody(op("replace", "active", false)), withHeader("Content-Type", tc.contentType))
			expect(t, pr, http.StatusNoContent)
		})
	}
}

// TestUnknownQueryParameters: Entra appends ?aadOptscim062020.
func TestUnknownQueryParameters(t *testing.T) {
	ts := newTestServer(t)
	expect(t, ts.do(http.MethodPost, "/Users?aadOptscim062020", userBody("q")), http.StatusCreated)
	r := expect(t, ts.do(http.MethodGet, "/Users?aadOptscim062020&filter="+urlq(`userName eq "q"`), nil), http.StatusOK)
	if n := intField(t, r.JSON, "totalResults"); n != 1 {
		t.Errorf("totalResults %d", n)
	}
}

// TestCoreURNQualifiedKeys: a key qualified with the core schema URN is the
// same attribute as the plain key, members and externalId included.
func TestCoreURNQualifiedKeys(t *testing.T) {
	ts := newTestServer(t)
	const userURN = "urn:ietf:params:scim:schemas:core:2.0:User:"
	const groupURN = "urn:ietf:params:scim:schemas:core:2.0:Group:"
	u := expect(t, ts.do(http.MethodPost, "/Users", map[string]any{
		userURN + "userName": "qualified", userURN + "externalId": "q-ext", userURN + "displayName": "Q"}), http.StatusCreated)
	want(t, []any{u.JSON["userName"], u.JSON["externalId"], u.JSON["displayName"]}, []any{"qualified", "q-ext", "Q"})
	uid := str(u.JSON, "id")

	g := expect(t, ts.do(http.MethodPost, "/Groups", map[string]any{
		groupURN + "displayName": "QG", groupURN + "members": []any{map[string]any{"value": uid}}}), http.StatusCreated)
	gid := str(g.JSON, "id")
	if got := memberIDs(g.JSON); len(got) != 1 || got[0] != uid {
		t.Fatalf("members %v, want [%s]", got, uid)
	}
	if m := ts.Store.Read().Members(gid); len(m) != 1 {
		t.Fatalf("store has %d memberships", len(m))
	}
	if res, _ := ts.Store.Read().Resource("Group", gid); res != nil && res.Attrs["members"] != nil {
		t.Errorf("members stored as an attribute: %v", res.Attrs)
	}
	// PUT with a qualified members key replaces the members.
	put := expect(t, ts.do(http.MethodPut, "/Groups/"+gid, map[string]any{"displayName": "QG", groupURN + "members": []any{}}), http.StatusOK)
	if got := memberIDs(put.JSON); len(got) != 0 {
		t.Errorf("members after PUT %v, want none", got)
	}
}
