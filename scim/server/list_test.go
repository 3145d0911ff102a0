package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/scimd/scimd/scim/schema"
	"github.com/scimd/scimd/scim/server"
)

// listNames GETs a list and returns the userName or displayName of each
// resource, sorted, after checking the ListResponse envelope.
func listNames(t *testing.T, ts *testServer, endpoint string, kv ...string) []string {
	t.Helper()
	r := expect(t, ts.list(endpoint, kv...), http.StatusOK)
	checkListResponse(t, r)
	key := "userName"
	if endpoint == "/Groups" {
		key = "displayName"
	}
	out := []string{}
	for _, m := range resources(t, r) {
		out = append(out, str(m, key))
	}
	slices.Sort(out)
	return out
}

func checkListResponse(t *testing.T, r *response) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != server.ContentType {
		t.Errorf("Content-Type %q", ct)
	}
	schemas, _ := r.JSON["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != schema.ListResponseURN {
		t.Errorf("schemas %v", r.JSON["schemas"])
	}
	list := resources(t, r)
	total := intField(t, r.JSON, "totalResults")
	if n := intField(t, r.JSON, "itemsPerPage"); n != len(list) {
		t.Errorf("itemsPerPage %d, but %d Resources", n, len(list))
	}
	intField(t, r.JSON, "startIndex")
	if total < len(list) {
		t.Errorf("totalResults %d < %d Resources", total, len(list))
	}
}

func TestFilters(t *testing.T) {
	ts := newTestServer(t)
	mk := func(userName, extID string, extra ...any) string {
		t.Helper()
		return str(ts.createUser(userName, append([]any{"externalId", extID}, extra...)...), "id")
	}
	alice := mk("Alice@Example.com", "EXT-a",
		"emails", []any{map[string]any{"type": "work", "value": "alice@x.org", "primary": true}, map[string]any{"type": "home", "value": "alice@home.net"}},
		"name", map[string]any{"familyName": "Smith", "givenName": "Alice"},
		schema.EnterpriseUserURN, map[string]any{"department": "Sales", "manager": map[string]any{"value": "boss"}})
	bob := mk("bob@example.com", "ext-b",
		"emails", []any{map[string]any{"type": "home", "value": "bob@x.org"}, map[string]any{"type": "work", "value": "bob@corp.com"}},
		"name", map[string]any{"familyName": "Jones", "givenName": "Bob"},
		schema.EnterpriseUserURN, map[string]any{"department": "Support"})
	// Separate the creation times so time comparisons have something to split
	// (meta.created: joining the groups below changes every lastModified).
	mid := time.Now().UTC()
	waitUntilAfter(t, mid)
	carol := mk("carol@other.org", "ext-c", "active", false, "title", "CTO")
	carolDoc := expect(t, ts.do(http.MethodGet, "/Users/"+carol, nil), http.StatusOK).JSON
	carolCreated := str(meta(carolDoc), "created")

	eng := str(ts.createGroup("Engineering", alice, bob), "id")
	ts.createGroup("Sales", bob)
	ts.createGroup("Empty")
	_ = eng

	tests := []struct {
		name     string
		endpoint string
		filter   string
		want     []string
	}{
		{"userName eq, other case", "/Users", `userName eq "ALICE@example.COM"`, []string{"Alice@Example.com"}},
		{"userName eq, keyword case", "/Users", `UserName EQ "bob@example.com"`, []string{"bob@example.com"}},
		{"userName eq URN-qualified", "/Users", `urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob@example.com"`, []string{"bob@example.com"}},
		{"externalId eq exact", "/Users", `externalId eq "EXT-a"`, []string{"Alice@Example.com"}},
		{"externalId eq is caseExact", "/Users", `externalId eq "ext-a"`, []string{}},
		{"id eq", "/Users", `id eq "` + bob + `"`, []string{"bob@example.com"}},
		{"displayName eq group", "/Groups", `displayName eq "engineering"`, []string{"Engineering"}},
		{"members[value eq]", "/Groups", `members[value eq "` + bob + `"]`, []string{"Engineering", "Sales"}},
		{"members.value eq", "/Groups", `members.value eq "` + alice + `"`, []string{"Engineering"}},
		{"members eq", "/Groups", `members eq "` + alice + `"`, []string{"Engineering"}},
		{"members pr", "/Groups", `members pr`, []string{"Engineering", "Sales"}},
		{"not members pr", "/Groups", `not (members pr)`, []string{"Empty"}},
		{"displayName and members", "/Groups", `displayName eq "Sales" and members[value eq "` + bob + `"]`, []string{"Sales"}},
		{"co", "/Users", `userName co "EXAMPLE"`, []string{"Alice@Example.com", "bob@example.com"}},
		{"sw", "/Users", `userName sw "b"`, []string{"bob@example.com"}},
		{"ew", "/Users", `userName ew ".org"`, []string{"carol@other.org"}},
		{"pr", "/Users", `title pr`, []string{"carol@other.org"}},
		{"ne", "/Users", `userName ne "bob@example.com"`, []string{"Alice@Example.com", "carol@other.org"}},
		{"active eq false", "/Users", `active eq false`, []string{"carol@other.org"}},
		{"meta.lastModified pr", "/Users", `meta.lastModified pr`, []string{"Alice@Example.com", "bob@example.com", "carol@other.org"}},
		{"meta.created gt", "/Users", `meta.created gt "` + mid.Format(time.RFC3339Nano) + `"`, []string{"carol@other.org"}},
		{"meta.created ge", "/Users", `meta.created ge "` + carolCreated + `"`, []string{"carol@other.org"}},
		{"meta.created lt", "/Users", `meta.created lt "` + mid.Format(time.RFC3339Nano) + `"`, []string{"Alice@Example.com", "bob@example.com"}},
		{"meta.created le", "/Users", `meta.created le "` + carolCreated + `"`, []string{"Alice@Example.com", "bob@example.com", "carol@other.org"}},
		{"meta.created gt in another zone", "/Users", `meta.created gt "` + mid.In(time.FixedZone("X", 5*3600)).Format(time.RFC3339Nano) + `"`, []string{"carol@other.org"}},
		{"meta.lastModified sw year", "/Users", `meta.lastModified sw "` + strconv.Itoa(mid.Year()) + `"`, []string{"Alice@Example.com", "bob@example.com", "carol@other.org"}},
		{"and", "/Users", `userName co "example" and name.familyName eq "Jones"`, []string{"bob@example.com"}},
		{"or", "/Users", `userName eq "carol@other.org" or externalId eq "ext-b"`, []string{"bob@example.com", "carol@other.org"}},
		{"not", "/Users", `not (userName co "example")`, []string{"carol@other.org"}},
		{"grouping", "/Users", `(userName sw "a" or userName sw "c") and not (active eq false)`, []string{"Alice@Example.com"}},
		{"precedence: and binds tighter", "/Users", `userName sw "c" or userName sw "a" and active eq false`, []string{"carol@other.org"}},
		{"value path and", "/Users", `emails[type eq "work" and value co "@x"]`, []string{"Alice@Example.com"}},
		{"value path or", "/Users", `emails[type eq "home" and value co "@x"] or emails[value ew "corp.com"]`, []string{"bob@example.com"}},
		{"emails.value co", "/Users", `emails.value co "@x.org"`, []string{"Alice@Example.com", "bob@example.com"}},
		{"Entra value path with sub-attribute", "/Users", `emails[type eq "work"].value eq "bob@corp.com"`, []string{"bob@example.com"}},
		{"enterprise URN attribute", "/Users", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "sales"`, []string{"Alice@Example.com"}},
		{"enterprise manager.value", "/Users", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "boss"`, []string{"Alice@Example.com"}},
		{"matches nothing (indexed)", "/Users", `userName eq "nobody@example.com"`, []string{}},
		{"matches nothing (scan)", "/Users", `title eq "Pope"`, []string{}},
		{"matches nothing (groups)", "/Groups", `displayName eq "Nope"`, []string{}},
		{"unknown attribute matches nothing", "/Users", `favouriteColour eq "blue"`, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := listNames(t, ts, tc.endpoint, "filter", tc.filter)
			if !slices.Equal(got, tc.want) {
				t.Errorf("filter %s: got %q, want %q", tc.filter, got, tc.want)
			}
		})
	}

	t.Run("no match is an empty array", func(t *testing.T) {
		r := expect(t, ts.list("/Users", "filter", `userName eq "ghost"`), http.StatusOK)
		if string(mustRaw(t, r, "Resources")) != "[]" {
			t.Errorf("Resources %s, want []", mustRaw(t, r, "Resources"))
		}
		if n := intField(t, r.JSON, "totalResults"); n != 0 {
			t.Errorf("totalResults %d", n)
		}
	})
}

// waitUntilAfter polls the clock until it is past t (the store's
// timestamps have microsecond precision).
func waitUntilAfter(tb testing.TB, t time.Time) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !time.Now().UTC().Truncate(time.Microsecond).After(t) {
		if time.Now().After(deadline) {
			tb.Fatal("clock does not advance")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPaging(t *testing.T) {
	const n = 23
	ts := newTestServer(t, func(o *server.Options) { o.MaxResults = 10 })
	want := []string{}
	for i := range n {
		want = append(want, str(ts.createUser(fmt.Sprintf("user%02d", i)), "id"))
	}
	slices.Sort(want)

	tests := []struct {
		name  string
		count int
	}{
		{"count 1", 1},
		{"count 5", 5},
		{"count 7", 7},
		{"count MaxResults", 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var seen []string
			for start := 1; start <= n; start += tc.count {
				r := expect(t, ts.list("/Users", "startIndex", strconv.Itoa(start), "count", strconv.Itoa(tc.count)), http.StatusOK)
				checkListResponse(t, r)
				if got := intField(t, r.JSON, "totalResults"); got != n {
					t.Fatalf("totalResults %d, want %d", got, n)
				}
				if got := intField(t, r.JSON, "startIndex"); got != start {
					t.Fatalf("startIndex %d, want %d", got, start)
				}
				page := ids(resources(t, r))
				if wantLen := min(tc.count, n-start+1); len(page) != wantLen {
					t.Fatalf("page at %d has %d resources, want %d", start, len(page), wantLen)
				}
				seen = append(seen, page...)
			}
			sorted := slices.Clone(seen)
			slices.Sort(sorted)
			if !slices.Equal(sorted, want) {
				t.Fatalf("pages cover %d ids %v, want each of the %d once", len(seen), seen, n)
			}
			// The same page twice gives the same order.
			a := ids(resources(t, ts.list("/Users", "startIndex", "2", "count", strconv.Itoa(tc.count))))
			b := ids(resources(t, ts.list("/Users", "startIndex", "2", "count", strconv.Itoa(tc.count))))
			if !slices.Equal(a, b) {
				t.Errorf("unstable order: %v then %v", a, b)
			}
		})
	}

	t.Run("filtered pages", func(t *testing.T) {
		var seen []string
		for start := 1; start <= 20; start += 3 {
			r := expect(t, ts.list("/Users", "filter", `userName sw "user1"`, "startIndex", strconv.Itoa(start), "count", "3"), http.StatusOK)
			if got := intField(t, r.JSON, "totalResults"); got != 10 {
				t.Fatalf("totalResults %d, want 10", got)
			}
			seen = append(seen, ids(resources(t, r))...)
		}
		if len(seen) != 10 || len(slices.Compact(slices.Sorted(slices.Values(seen)))) != 10 {
			t.Errorf("filtered pages returned %v", seen)
		}
	})

	edge := []struct {
		name                  string
		kv                    []string
		wantItems, wantStart  int
		wantTotal             int
		wantResourcesNotEmpty bool
	}{
		{"count=0 gives only the total", []string{"count", "0"}, 0, 1, n, false},
		{"count above MaxResults is clamped", []string{"count", "500"}, 10, 1, n, true},
		{"no count uses MaxResults", nil, 10, 1, n, true},
		{"negative count is 0", []string{"count", "-3"}, 0, 1, n, false},
		{"startIndex 0 is 1", []string{"startIndex", "0", "count", "2"}, 2, 1, n, true},
		{"startIndex past the end", []string{"startIndex", "100"}, 0, 100, n, false},
		{"last partial page", []string{"startIndex", "21", "count", "5"}, 3, 21, n, true},
		{"filter with count=0", []string{"filter", `userName sw "user0"`, "count", "0"}, 0, 1, 10, false},
	}
	for _, tc := range edge {
		t.Run(tc.name, func(t *testing.T) {
			r := expect(t, ts.list("/Users", tc.kv...), http.StatusOK)
			checkListResponse(t, r)
			if got := intField(t, r.JSON, "itemsPerPage"); got != tc.wantItems {
				t.Errorf("itemsPerPage %d, want %d", got, tc.wantItems)
			}
			if got := intField(t, r.JSON, "startIndex"); got != tc.wantStart {
				t.Errorf("startIndex %d, want %d", got, tc.wantStart)
			}
			if got := intField(t, r.JSON, "totalResults"); got != tc.wantTotal {
				t.Errorf("totalResults %d, want %d", got, tc.wantTotal)
			}
			if !tc.wantResourcesNotEmpty && string(mustRaw(t, r, "Resources")) != "[]" {
				t.Errorf("Resources %s, want []", mustRaw(t, r, "Resources"))
			}
		})
	}
}

func TestProjection(t *testing.T) {
	ts := newTestServer(t)
	u := ts.createUser("proj@example.com",
		"name", map[string]any{"givenName": "Pro", "familyName": "Jection"},
		"emails", []any{map[string]any{"type": "work", "value": "proj@example.com"}, map[string]any{"type": "home", "value": "p@home"}},
		schema.EnterpriseUserURN, map[string]any{"department": "R&D", "costCenter": "42"})
	uid := str(u, "id")
	g := ts.createGroup("Projected", uid)
	gid := str(g, "id")

	keys := func(m map[string]any) []string {
		out := []string{}
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name     string
		path     string
		kv       []string
		wantKeys []string
		check    func(t *testing.T, doc map[string]any)
	}{
		{"attributes=userName keeps id and schemas", "/Users/" + uid, []string{"attributes", "userName"},
			[]string{"id", "schemas", "userName"}, nil},
		{"attributes are case-insensitive", "/Users/" + uid, []string{"attributes", "USERNAME,Name.GivenName"},
			[]string{"id", "name", "schemas", "userName"}, func(t *testing.T, doc map[string]any) {
				if nm, _ := doc["name"].(map[string]any); len(nm) != 1 || nm["givenName"] != "Pro" {
					t.Errorf("name %v, want only givenName", doc["name"])
				}
			}},
		{"attributes=emails.value", "/Users/" + uid, []string{"attributes", "emails.value"},
			[]string{"emails", "id", "schemas"}, func(t *testing.T, doc map[string]any) {
				if fmtAny(doc["emails"]) != `[{"value":"proj@example.com"},{"value":"p@home"}]` {
					t.Errorf("emails %s", fmtAny(doc["emails"]))
				}
			}},
		{"attributes=enterprise attribute", "/Users/" + uid, []string{"attributes", schema.EnterpriseUserURN + ":department"},
			[]string{"id", "schemas", schema.EnterpriseUserURN}, func(t *testing.T, doc map[string]any) {
				if fmtAny(doc[schema.EnterpriseUserURN]) != `{"department":"R\u0026D"}` {
					t.Errorf("extension %s", fmtAny(doc[schema.EnterpriseUserURN]))
				}
			}},
		{"excludedAttributes=emails,name", "/Users/" + uid, []string{"excludedAttributes", "emails,name"},
			nil, func(t *testing.T, doc map[string]any) {
				if _, ok := doc["emails"]; ok {
					t.Error("emails not excluded")
				}
				if _, ok := doc["name"]; ok {
					t.Error("name not excluded")
				}
				if doc["userName"] != "proj@example.com" || doc["id"] != uid {
					t.Errorf("excluding dropped too much: %v", doc)
				}
			}},
		{"excludedAttributes cannot drop id", "/Users/" + uid, []string{"excludedAttributes", "id,schemas"},
			nil, func(t *testing.T, doc map[string]any) {
				if doc["id"] != uid || doc["schemas"] == nil {
					t.Errorf("id or schemas dropped: %v", doc)
				}
			}},
		{"group excludedAttributes=members", "/Groups/" + gid, []string{"excludedAttributes", "members"},
			[]string{"displayName", "id", "meta", "schemas"}, nil},
		{"group attributes=members", "/Groups/" + gid, []string{"attributes", "members.value"},
			[]string{"id", "members", "schemas"}, func(t *testing.T, doc map[string]any) {
				if fmtAny(doc["members"]) != `[{"value":"`+uid+`"}]` {
					t.Errorf("members %s", fmtAny(doc["members"]))
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, via := range []string{"get", "list"} {
				var doc map[string]any
				if via == "get" {
					q := ""
					for i := 0; i+1 < len(tc.kv); i += 2 {
						q += "&" + tc.kv[i] + "=" + urlq(tc.kv[i+1])
					}
					doc = expect(t, ts.do(http.MethodGet, tc.path+"?"+q[1:], nil), http.StatusOK).JSON
				} else {
					endpoint, id := "/Users", uid
					if tc.path == "/Groups/"+gid {
						endpoint, id = "/Groups", gid
					}
					list := resources(t, expect(t, ts.list(endpoint, append([]string{"filter", `id eq "` + id + `"`}, tc.kv...)...), http.StatusOK))
					if len(list) != 1 {
						t.Fatalf("list: %d resources", len(list))
					}
					doc = list[0]
				}
				if tc.wantKeys != nil && !slices.Equal(keys(doc), tc.wantKeys) {
					t.Errorf("%s: keys %v, want %v", via, keys(doc), tc.wantKeys)
				}
				if tc.check != nil {
					tc.check(t, doc)
				}
			}
		})
	}

	t.Run("Entra group lookup", func(t *testing.T) {
		r := expect(t, ts.list("/Groups", "filter", `displayName eq "Projected"`, "excludedAttributes", "members"), http.StatusOK)
		list := resources(t, r)
		if len(list) != 1 || str(list[0], "id") != gid {
			t.Fatalf("got %v", list)
		}
		if _, ok := list[0]["members"]; ok {
			t.Errorf("members returned despite excludedAttributes=members")
		}
		// Filtering on members still works when they are excluded from the output.
		r = expect(t, ts.list("/Groups", "filter", `members[value eq "`+uid+`"]`, "excludedAttributes", "members"), http.StatusOK)
		if list := resources(t, r); len(list) != 1 || list[0]["members"] != nil {
			t.Errorf("got %v", list)
		}
	})
}

func mustRaw(t *testing.T, r *response, key string) []byte {
	t.Helper()
	raw, ok := rawFields(r.Body)[key]
	if !ok {
		t.Fatalf("no %s in %s", key, r.Body)
	}
	return raw
}

// TestUserNameFoldingConsistency: userName is caseExact=false, so the
// uniqueness check, the indexed userName eq lookup and the filter must
// agree on which names are equal. They do not for letters whose lower case
// is not their case fold: "ſam" (U+017F, long s) and "sam" are equal to
// the filter (strings.EqualFold) but not to the store's name index
// (strings.ToLower), so both can be created, and `userName eq "sam"` finds
// one of them through the index but both through a scan.
func TestUserNameFoldingConsistency(t *testing.T) {
	ts := newTestServer(t)
	ts.createUser("sam")
	r := ts.do(http.MethodPost, "/Users", userBody("ſam"))
	if r.Status != http.StatusConflict {
		t.Errorf("creating ſam next to sam: status %d, want 409", r.Status)
	}
	indexed := listNames(t, ts, "/Users", "filter", `userName eq "sam"`)
	scanned := listNames(t, ts, "/Users", "filter", `userName eq "sam" or userName eq "nobody"`)
	if !slices.Equal(indexed, scanned) {
		t.Errorf("userName eq \"sam\": index finds %q, a scan finds %q", indexed, scanned)
	}
}
