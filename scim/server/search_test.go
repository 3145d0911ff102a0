package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/scimd/scimd/scim/server"
)

// TestSearchMatchesGET: POST /Users/.search and /Groups/.search with a
// SearchRequest body answer exactly what the GET list answers with the same
// parameters (RFC 7644 §3.4.3).
func TestSearchMatchesGET(t *testing.T) {
	ts := newTestServer(t)
	a := str(ts.createUser("alice@example.com", "title", "Engineer", "name", map[string]any{"familyName": "Zed"}), "id")
	b := str(ts.createUser("bob@example.com", "title", "Manager", "active", false), "id")
	ts.createUser("carol@example.com", "title", "Engineer")
	ts.createGroup("Admins", a)
	ts.createGroup("Readers", a, b)
	for _, c := range []struct {
		endpoint string
		params   map[string]any
	}{
		{"/Users", map[string]any{}},
		{"/Users", map[string]any{"filter": `title eq "Engineer"`}},
		{"/Users", map[string]any{"filter": `active eq true`, "attributes": []any{"userName", "title"}}},
		{"/Users", map[string]any{"excludedAttributes": []any{"groups", "meta"}, "startIndex": 2, "count": 1}},
		{"/Users", map[string]any{"sortBy": "name.familyName", "sortOrder": "descending"}},
		{"/Users", map[string]any{"sortBy": "userName", "count": 0}},
		{"/Groups", map[string]any{"filter": `members[value eq "` + b + `"]`, "attributes": []any{"displayName"}}},
		{"/Groups", map[string]any{"excludedAttributes": []any{"members"}, "sortBy": "displayName", "sortOrder": "descending"}},
	} {
		t.Run(c.endpoint+" "+fmtAny(c.params), func(t *testing.T) {
			ts := ts.with(t)
			q := url.Values{}
			for k, v := range c.params {
				switch v := v.(type) {
				case string:
					q.Set(k, v)
				case int:
					q.Set(k, strconv.Itoa(v))
				case []any:
					parts := []string{}
					for _, p := range v {
						parts = append(parts, p.(string))
					}
					q.Set(k, strings.Join(parts, ","))
				}
			}
			get := expect(t, ts.do(http.MethodGet, c.endpoint+"?"+q.Encode(), nil), http.StatusOK)
			body := map[string]any{"schemas": []string{server.SearchRequestURN}}
			for k, v := range c.params {
				body[k] = v
			}
			post := expect(t, ts.do(http.MethodPost, c.endpoint+"/.search", body), http.StatusOK)
			if string(get.Body) != string(post.Body) {
				t.Fatalf("GET answered\n%s\nPOST .search answered\n%s", get.Body, post.Body)
			}
			if ct := post.Header.Get("Content-Type"); ct != server.ContentType {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
	// Errors are the GET form's errors.
	for _, body := range []string{
		`{"filter": "title eq"}`,
		`{"filter": "active gt true"}`,
		`{"sortBy": "nothing"}`,
		`{"count": "many"}`,
		`{"count": 1.5}`,
		`{"attributes": "userName", "filter": 5}`,
		`{"attributes": [1]}`,
		`{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}`,
		`[]`,
		`{"filter": "userName eq \"a\""} x`,
	} {
		r := ts.do(http.MethodPost, "/Users/.search", body)
		if r.Status != http.StatusBadRequest {
			t.Errorf("POST .search %s: %d, want 400", body, r.Status)
		}
		if p := scimErrorProblem(r, http.StatusBadRequest, "*"); p != "" {
			t.Errorf("POST .search %s: %s", body, p)
		}
	}
}

// TestRootSearch: POST /.search searches Users and Groups together.
func TestRootSearch(t *testing.T) {
	ts := newTestServer(t)
	a := str(ts.createUser("alice@example.com"), "id")
	ts.createUser("bob@example.com")
	ts.createGroup("Admins", a)
	r := expect(t, ts.do(http.MethodPost, "/.search", map[string]any{"schemas": []string{server.SearchRequestURN}}), http.StatusOK)
	if got := intField(t, r.JSON, "totalResults"); got != 3 {
		t.Fatalf("totalResults %d, want 3: %s", got, r.Body)
	}
	kinds := map[string]int{}
	for _, res := range resources(t, r) {
		kinds[str(meta(res), "resourceType")]++
	}
	if kinds["User"] != 2 || kinds["Group"] != 1 {
		t.Fatalf("resource types %v", kinds)
	}
	// A filter on an attribute both types have; sorted across the types.
	r = expect(t, ts.do(http.MethodPost, "/.search", map[string]any{
		"filter": `meta.created pr`, "sortBy": "meta.resourceType", "sortOrder": "descending", "count": 2, "attributes": []string{"id"},
	}), http.StatusOK)
	if got := intField(t, r.JSON, "totalResults"); got != 3 || len(resources(t, r)) != 2 {
		t.Fatalf("filtered root search: %s", r.Body)
	}
	for _, res := range resources(t, r) {
		if _, ok := res["userName"]; ok {
			t.Fatalf("attributes [id] returned userName: %s", r.Body)
		}
	}
	r = expect(t, ts.do(http.MethodPost, "/.search", map[string]any{"filter": `displayName eq "Admins"`}), http.StatusOK)
	if got := intField(t, r.JSON, "totalResults"); got != 1 {
		t.Fatalf("displayName eq Admins matched %d: %s", got, r.Body)
	}
	checkSCIMError(t, ts.do(http.MethodPost, "/.search", map[string]any{"filter": `active lt true`}), http.StatusBadRequest, "invalidFilter")
	checkSCIMError(t, ts.do(http.MethodGet, "/.search", nil), http.StatusMethodNotAllowed, "")
}

// FuzzSearchBody POSTs arbitrary SearchRequest bodies to /Users/.search,
// /Groups/.search and /.search. The handler must never fail with a 5xx or
// panic, never write, and answer either a ListResponse whose Resources
// are at most count or a SCIM error.
func FuzzSearchBody(f *testing.F) {
	// Seeds are in testdata/fuzz/FuzzSearchBody.
	ts := newInProcessServer(f)
	a := ts.serve(http.MethodPost, "/Users", userBody("alice@example.com", "emails", []any{map[string]any{"value": "a@example.com", "primary": true}}))
	ts.serve(http.MethodPost, "/Groups", groupBody("Admins", str(a.JSON, "id")))
	f.Fuzz(func(t *testing.T, body []byte) {
		ts := ts.with(t)
		before := ts.commit()
		for _, path := range []string{"/Users/.search", "/Groups/.search", "/.search"} {
			r := ts.serve(http.MethodPost, path, body)
			if !checkFuzzResponse(t, ts, r, before, http.StatusOK) {
				continue
			}
			ts.unchanged(t, before)
			var lr struct {
				TotalResults *int
				Resources    []json.RawMessage
			}
			if err := json.Unmarshal(r.Body, &lr); err != nil || lr.TotalResults == nil || lr.Resources == nil {
				t.Fatalf("%s: not a ListResponse: %s", path, r.Body)
			}
			if len(lr.Resources) > *lr.TotalResults {
				t.Fatalf("%s: %d Resources but totalResults %d", path, len(lr.Resources), *lr.TotalResults)
			}
		}
	})
}
