package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scimd/scimd/scim/schema"
)

// checkMeta checks a resource's meta against its ETag header and location.
func checkMeta(t *testing.T, ts *testServer, r *response, endpoint string) {
	t.Helper()
	doc := r.JSON
	id := str(doc, "id")
	if id == "" {
		t.Fatalf("no id in %s", r.Body)
	}
	m := meta(doc)
	if m == nil {
		t.Fatalf("no meta in %s", r.Body)
	}
	wantLoc := ts.Base + endpoint + "/" + id
	if got := str(m, "location"); got != wantLoc {
		t.Errorf("meta.location %q, want %q", got, wantLoc)
	}
	if !strings.HasPrefix(str(m, "location"), "http://") {
		t.Errorf("meta.location %q is not absolute", str(m, "location"))
	}
	for _, k := range []string{"created", "lastModified"} {
		if _, err := time.Parse(time.RFC3339Nano, str(m, k)); err != nil {
			t.Errorf("meta.%s %q: %v", k, str(m, k), err)
		}
	}
	if v := str(m, "version"); v == "" || v != r.Header.Get("ETag") {
		t.Errorf("meta.version %q, ETag header %q: want equal and set", v, r.Header.Get("ETag"))
	}
	wantType := "User"
	if endpoint == "/Groups" {
		wantType = "Group"
	}
	if got := str(m, "resourceType"); got != wantType {
		t.Errorf("meta.resourceType %q, want %q", got, wantType)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/scim+json") {
		t.Errorf("Content-Type %q", ct)
	}
}

func TestResourceLifecycle(t *testing.T) {
	ts := newTestServer(t)
	alice := ts.createUser("alice@example.com")
	aliceID := str(alice, "id")

	tests := []struct {
		name     string
		endpoint string
		create   map[string]any
		put      func(created map[string]any) map[string]any
		patch    map[string]any
		check    func(t *testing.T, after map[string]any)
	}{
		{
			name:     "user",
			endpoint: "/Users",
			create: userBody("bob@example.com", "name", map[string]any{"givenName": "Bob", "familyName": "Jones"},
				"emails", []any{map[string]any{"type": "work", "value": "bob@example.com", "primary": true}},
				"externalId", "ext-bob",
				schema.EnterpriseUserURN, map[string]any{"department": "Sales"}),
			put: func(c map[string]any) map[string]any {
				c["displayName"] = "Bobby"
				c["active"] = false
				return c
			},
			patch: patchBody(op("replace", "name.givenName", "Robert")),
			check: func(t *testing.T, after map[string]any) {
				name, _ := after["name"].(map[string]any)
				if name["givenName"] != "Robert" || name["familyName"] != "Jones" {
					t.Errorf("name after PATCH: %v", name)
				}
				if after["displayName"] != "Bobby" || after["active"] != false {
					t.Errorf("PUT values lost: displayName %v active %v", after["displayName"], after["active"])
				}
				ent, _ := after[schema.EnterpriseUserURN].(map[string]any)
				if ent["department"] != "Sales" {
					t.Errorf("enterprise extension lost: %v", after[schema.EnterpriseUserURN])
				}
				if after["externalId"] != "ext-bob" {
					t.Errorf("externalId %v", after["externalId"])
				}
			},
		},
		{
			name:     "group",
			endpoint: "/Groups",
			create:   groupBody("Engineering", aliceID),
			put: func(c map[string]any) map[string]any {
				c["displayName"] = "Engineering Team"
				return c
			},
			patch: patchBody(op("replace", "externalId", "ext-eng")),
			check: func(t *testing.T, after map[string]any) {
				if after["displayName"] != "Engineering Team" || after["externalId"] != "ext-eng" {
					t.Errorf("group after PUT+PATCH: %v", after)
				}
				if got := memberIDs(after); len(got) != 1 || got[0] != aliceID {
					t.Errorf("members %v, want [%s]", got, aliceID)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// POST: 201, Location, ETag and meta.
			r := expect(t, ts.do(http.MethodPost, tc.endpoint, tc.create), http.StatusCreated)
			checkMeta(t, ts, r, tc.endpoint)
			id := str(r.JSON, "id")
			if loc := r.Header.Get("Location"); loc != ts.Base+tc.endpoint+"/"+id {
				t.Errorf("Location %q, want %q", loc, ts.Base+tc.endpoint+"/"+id)
			}
			created := r.JSON
			if str(meta(created), "created") != str(meta(created), "lastModified") {
				t.Errorf("a new resource has created %s != lastModified %s", str(meta(created), "created"), str(meta(created), "lastModified"))
			}

			// GET returns the same representation.
			g := expect(t, ts.do(http.MethodGet, tc.endpoint+"/"+id, nil), http.StatusOK)
			checkMeta(t, ts, g, tc.endpoint)
			if fmtAny(g.JSON) != fmtAny(created) {
				t.Errorf("GET differs from the POST response:\n got %s\nwant %s", g.Body, fmtAny(created))
			}

			// PUT: 200 with the new version.
			p := expect(t, ts.do(http.MethodPut, tc.endpoint+"/"+id, tc.put(created)), http.StatusOK)
			checkMeta(t, ts, p, tc.endpoint)
			if p.Header.Get("ETag") == r.Header.Get("ETag") {
				t.Errorf("ETag unchanged by PUT: %s", p.Header.Get("ETag"))
			}
			if str(meta(p.JSON), "created") != str(meta(created), "created") {
				t.Errorf("PUT changed meta.created")
			}

			// PATCH: 204 with the new ETag.
			pa := ts.do(http.MethodPatch, tc.endpoint+"/"+id, tc.patch)
			expect(t, pa, http.StatusNoContent)
			if len(pa.Body) != 0 {
				t.Errorf("204 with a body: %s", pa.Body)
			}
			after := expect(t, ts.do(http.MethodGet, tc.endpoint+"/"+id, nil), http.StatusOK)
			checkMeta(t, ts, after, tc.endpoint)
			if pa.Header.Get("ETag") != after.Header.Get("ETag") {
				t.Errorf("PATCH ETag %q, GET ETag %q", pa.Header.Get("ETag"), after.Header.Get("ETag"))
			}
			lm0, _ := time.Parse(time.RFC3339Nano, str(meta(created), "lastModified"))
			lm1, _ := time.Parse(time.RFC3339Nano, str(meta(after.JSON), "lastModified"))
			if !lm1.After(lm0) {
				t.Errorf("lastModified %v not after %v", lm1, lm0)
			}
			tc.check(t, after.JSON)

			// DELETE: 204, then 404 on GET, PATCH, PUT and DELETE.
			d := ts.do(http.MethodDelete, tc.endpoint+"/"+id, nil)
			expect(t, d, http.StatusNoContent)
			checkSCIMError(t, ts.do(http.MethodGet, tc.endpoint+"/"+id, nil), http.StatusNotFound, "")
			checkSCIMError(t, ts.do(http.MethodDelete, tc.endpoint+"/"+id, nil), http.StatusNotFound, "")
			checkSCIMError(t, ts.do(http.MethodPatch, tc.endpoint+"/"+id, tc.patch), http.StatusNotFound, "")
			checkSCIMError(t, ts.do(http.MethodPut, tc.endpoint+"/"+id, tc.create), http.StatusNotFound, "")

			// The name is free again: re-creating gives a new id.
			again := expect(t, ts.do(http.MethodPost, tc.endpoint, tc.create), http.StatusCreated)
			if str(again.JSON, "id") == id {
				t.Errorf("re-created resource reuses the deleted id %s", id)
			}
		})
	}
}

func TestDeleteUserRemovesMembership(t *testing.T) {
	ts := newTestServer(t)
	u := str(ts.createUser("carol"), "id")
	g := ts.createGroup("Ops", u)
	gid := str(g, "id")
	before := expect(t, ts.do(http.MethodGet, "/Groups/"+gid, nil), http.StatusOK)
	expect(t, ts.do(http.MethodDelete, "/Users/"+u, nil), http.StatusNoContent)
	after := expect(t, ts.do(http.MethodGet, "/Groups/"+gid, nil), http.StatusOK)
	if got := memberIDs(after.JSON); len(got) != 0 {
		t.Fatalf("members after deleting the user: %v", got)
	}
	if before.Header.Get("ETag") == after.Header.Get("ETag") {
		t.Errorf("group ETag %s unchanged although its members changed", after.Header.Get("ETag"))
	}
}

func TestUserGroupsAttribute(t *testing.T) {
	ts := newTestServer(t)
	u := str(ts.createUser("dave"), "id")
	g := str(ts.createGroup("Support", u), "id")
	doc := expect(t, ts.do(http.MethodGet, "/Users/"+u, nil), http.StatusOK).JSON
	groups, _ := doc["groups"].([]any)
	if len(groups) != 1 {
		t.Fatalf("groups %v, want one", doc["groups"])
	}
	g0, _ := groups[0].(map[string]any)
	if g0["value"] != g || g0["display"] != "Support" || g0["$ref"] != ts.Base+"/Groups/"+g {
		t.Errorf("groups[0] %v", g0)
	}
	// groups is readOnly: a client cannot set it.
	r := expect(t, ts.do(http.MethodPost, "/Users", userBody("erin", "groups", []any{map[string]any{"value": g}})), http.StatusCreated)
	if _, ok := r.JSON["groups"]; ok {
		t.Errorf("a client set the readOnly groups attribute: %s", r.Body)
	}
}

func TestIfMatch(t *testing.T) {
	ts := newTestServer(t)
	u := ts.createUser("frank")
	id := str(u, "id")
	etag := str(meta(u), "version")
	tests := []struct {
		name    string
		method  string
		body    any
		ifMatch string
		want    int
	}{
		{"PATCH stale", http.MethodPatch, patchBody(op("replace", "displayName", "F")), `W/"999"`, http.StatusPreconditionFailed},
		{"PUT stale", http.MethodPut, userBody("frank", "displayName", "F"), `W/"999"`, http.StatusPreconditionFailed},
		{"DELETE stale", http.MethodDelete, nil, `W/"999"`, http.StatusPreconditionFailed},
		{"PATCH current", http.MethodPatch, patchBody(op("replace", "displayName", "F")), etag, http.StatusNoContent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.commit()
			r := ts.do(tc.method, "/Users/"+id, tc.body, withHeader("If-Match", tc.ifMatch))
			if tc.want >= 400 {
				checkSCIMError(t, r, tc.want, "")
				ts.unchanged(t, before)
				return
			}
			expect(t, r, tc.want)
		})
	}
	// The version moved on: the old ETag no longer matches, the new one does.
	cur := expect(t, ts.do(http.MethodGet, "/Users/"+id, nil), http.StatusOK)
	checkSCIMError(t, ts.do(http.MethodPut, "/Users/"+id, userBody("frank"), withHeader("If-Match", etag)), http.StatusPreconditionFailed, "")
	expect(t, ts.do(http.MethodPut, "/Users/"+id, userBody("frank"), withHeader("If-Match", cur.Header.Get("ETag"))), http.StatusOK)
	// If-None-Match with the current ETag: 304.
	cur = expect(t, ts.do(http.MethodGet, "/Users/"+id, nil), http.StatusOK)
	expect(t, ts.do(http.MethodGet, "/Users/"+id, nil, withHeader("If-None-Match", cur.Header.Get("ETag"))), http.StatusNotModified)
}

// TestGroupVersionFollowsMembers checks that a membership change is a
// change of the group: a client holding the old ETag must not be able to
// overwrite the members with If-Match.
func TestGroupVersionFollowsMembers(t *testing.T) {
	ts := newTestServer(t)
	u1 := str(ts.createUser("m1"), "id")
	u2 := str(ts.createUser("m2"), "id")
	g := ts.createGroup("Versioned", u1)
	gid := str(g, "id")
	old := str(meta(g), "version")
	oldLM := str(meta(g), "lastModified")

	expect(t, ts.do(http.MethodPatch, "/Groups/"+gid, patchBody(op("add", "members", []any{map[string]any{"value": u2}}))), http.StatusNoContent)
	cur := expect(t, ts.do(http.MethodGet, "/Groups/"+gid, nil), http.StatusOK)
	if str(meta(cur.JSON), "version") == old {
		t.Errorf("meta.version %s unchanged by a member add", old)
	}
	if str(meta(cur.JSON), "lastModified") == oldLM {
		t.Errorf("meta.lastModified %s unchanged by a member add", oldLM)
	}
	// A stale full-object PUT is refused and loses nobody.
	before := ts.commit()
	r := ts.do(http.MethodPut, "/Groups/"+gid, groupBody("Versioned", u1), withHeader("If-Match", old))
	checkSCIMError(t, r, http.StatusPreconditionFailed, "")
	ts.unchanged(t, before)

	// A PUT that changes only the members bumps the version too.
	put := expect(t, ts.do(http.MethodPut, "/Groups/"+gid, groupBody("Versioned", u1), withHeader("If-Match", cur.Header.Get("ETag"))), http.StatusOK)
	if put.Header.Get("ETag") == cur.Header.Get("ETag") {
		t.Errorf("PUT changing only members kept ETag %s", put.Header.Get("ETag"))
	}
	if got := memberIDs(put.JSON); len(got) != 1 || got[0] != u1 {
		t.Errorf("members after PUT %v, want [%s]", got, u1)
	}
}

func TestDiscoveryEndpoints(t *testing.T) {
	ts := newTestServer(t)
	for _, p := range []string{"/ServiceProviderConfig", "/ResourceTypes", "/Schemas", "/ResourceTypes/User", "/Schemas/" + schema.UserURN} {
		t.Run("GET "+p, func(t *testing.T) {
			r := expect(t, ts.do(http.MethodGet, p, nil), http.StatusOK)
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/scim+json") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	spc := ts.do(http.MethodGet, "/ServiceProviderConfig", nil).JSON
	f, _ := spc["filter"].(map[string]any)
	if f["maxResults"] != float64(1000) {
		t.Errorf("filter.maxResults %v, want 1000", f["maxResults"])
	}
}

// TestCaseInsensitiveEndpoints: Microsoft's collection requests /users.
func TestCaseInsensitiveEndpoints(t *testing.T) {
	ts := newTestServer(t)
	id := str(ts.createUser("gina"), "id")
	expect(t, ts.do(http.MethodGet, "/users/"+id, nil), http.StatusOK)
	expect(t, ts.do(http.MethodGet, "/users?filter="+`userName%20eq%20"gina"`, nil), http.StatusOK)
	expect(t, ts.do(http.MethodPost, "/groups", groupBody("lower")), http.StatusCreated)
}
