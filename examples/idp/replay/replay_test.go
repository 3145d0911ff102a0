package replay

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testToken = "test-token"

// startFake serves f under /scim/v2 and returns the base URL.
func startFake(t *testing.T, f *fakeSCIM) string {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL + "/scim/v2"
}

func mustParse(t *testing.T, doc string) *Sequence {
	t.Helper()
	s, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

// happySequence exercises captures, substitution in paths and bodies,
// both expectStatus forms, expectBody and the final-state check.
const happySequence = `{
  "idp": "Test IdP",
  "sources": ["in-test"],
  "steps": [
    {"name": "lookup alice", "method": "GET", "path": "/Users?filter=userName eq \"alice+ops@example.com\"&startIndex=1&count=100",
     "headers": {"User-Agent": "Test SCIM Client 1.0"},
     "expectStatus": 200, "expectBody": {"totalResults": 0}},
    {"name": "create alice", "method": "POST", "path": "/Users",
     "body": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice+ops@example.com", "active": true,
              "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Support"}},
     "expectStatus": 201, "capture": {"aliceId": "id"},
     "expectBody": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.department": "Support"}},
    {"name": "create bob", "method": "POST", "path": "/Users",
     "body": {"userName": "bob@example.com"}, "expectStatus": [201], "capture": {"bobId": "id"}},
    {"name": "find bob", "method": "GET", "path": "/Users?filter=userName eq \"BOB@example.com\"",
     "expectStatus": 200, "expectBody": {"totalResults": 1, "Resources.0.id": "{{bobId}}"},
     "capture": {"bobAgain": "Resources.0.id"}},
    {"name": "create admins", "method": "POST", "path": "/Groups",
     "body": {"displayName": "Intercom Admins", "members": []}, "expectStatus": 201, "capture": {"admins": "id"}},
    {"name": "add both", "method": "PATCH", "path": "/Groups/{{admins}}",
     "body": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
              "Operations": [{"op": "Add", "path": "members", "value": [{"value": "{{aliceId}}"}, {"value": "{{bobAgain}}"}]}]},
     "expectStatus": [200, 204]},
    {"name": "members hidden", "method": "GET", "path": "/Groups/{{admins}}?excludedAttributes=members",
     "expectStatus": 200, "expectBody": {"members": null, "displayName": "Intercom Admins"}},
    {"name": "deactivate bob", "method": "PATCH", "path": "/Users/{{bobId}}",
     "body": {"Operations": [{"op": "Replace", "path": "active", "value": "False"}]}, "expectStatus": [200, 204]},
    {"name": "remove bob", "method": "PATCH", "path": "/Groups/{{admins}}",
     "body": {"Operations": [{"op": "remove", "path": "members[value eq \"{{bobId}}\"]"}]}, "expectStatus": [200, 204]},
    {"name": "bob is inactive", "method": "GET", "path": "/Users/{{bobId}}", "expectStatus": 200, "expectBody": {"active": false}}
  ],
  "expect": {
    "users": [{"userName": "alice+ops@example.com", "active": true}, {"userName": "BOB@example.com", "active": false}],
    "groups": [{"displayName": "Intercom Admins", "members": ["alice+ops@example.com"]}]
  }
}`

func TestRunHappyPath(t *testing.T) {
	f := newFake(testToken)
	base := startFake(t, f)
	s := mustParse(t, happySequence)
	if err := s.Run(context.Background(), nil, base, testToken); err != nil {
		t.Fatalf("Run: %v", err)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	first := f.requests[0]
	if first.rawPath != "/scim/v2/Users" {
		t.Errorf("path = %q", first.rawPath)
	}
	// Spaces as %20, quotes and + escaped, parameter order kept.
	wantQuery := "filter=userName%20eq%20%22alice%2Bops%40example.com%22&startIndex=1&count=100"
	if first.rawQuery != wantQuery {
		t.Errorf("query = %q, want %q", first.rawQuery, wantQuery)
	}
	if got := first.header.Get("User-Agent"); got != "Test SCIM Client 1.0" {
		t.Errorf("User-Agent = %q", got)
	}
	if got := first.header.Get("Content-Type"); got != "" {
		t.Errorf("GET without body sent Content-Type %q", got)
	}
	create := f.requests[1]
	if got := create.header.Get("Content-Type"); got != "application/scim+json" {
		t.Errorf("POST Content-Type = %q", got)
	}
	if got := create.header.Get("Authorization"); got != "Bearer "+testToken {
		t.Errorf("Authorization = %q", got)
	}
	// The add-members PATCH carries the captured ids.
	var patch map[string]any
	for _, r := range f.requests {
		if r.method == "PATCH" && strings.Contains(r.body, "Add") {
			if err := json.Unmarshal([]byte(r.body), &patch); err != nil {
				t.Fatal(err)
			}
		}
	}
	ops := patch["Operations"].([]any)
	vals := ops[0].(map[string]any)["value"].([]any)
	if vals[0].(map[string]any)["value"] != "u-001" || vals[1].(map[string]any)["value"] != "u-002" {
		t.Errorf("substituted member values = %v", vals)
	}
}

func TestRunUserAgentOmitted(t *testing.T) {
	f := newFake(testToken)
	base := startFake(t, f)
	s := mustParse(t, `{"idp": "X", "sources": ["s"], "steps": [
	  {"name": "probe", "method": "GET", "path": "/Users?filter=userName eq \"x\"", "headers": {"User-Agent": ""}, "expectStatus": 200}
	], "expect": {"users": [], "groups": []}}`)
	if err := s.Run(context.Background(), nil, base, testToken); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if ua, ok := f.requests[0].header["User-Agent"]; ok {
		t.Errorf("User-Agent sent: %q", ua)
	}
}

func TestRunStepFailures(t *testing.T) {
	const users = `{"name": "create alice", "method": "POST", "path": "/Users", "body": {"userName": "alice@example.com"}, "expectStatus": 201, "capture": {"a": "id"}}`
	cases := []struct {
		name     string
		step     string
		token    string
		wantStep string
		wantErr  string
	}{
		{
			name:     "status not in list",
			step:     `{"name": "duplicate", "method": "POST", "path": "/Users", "body": {"userName": "ALICE@example.com"}, "expectStatus": [200, 201]}`,
			wantStep: `step 2 "duplicate" (POST /Users)`,
			wantErr:  "status 409, want [200 201]",
		},
		{
			name:     "status single",
			step:     `{"name": "missing", "method": "GET", "path": "/Users/nope", "expectStatus": 200}`,
			wantStep: `step 2 "missing" (GET /Users/nope)`,
			wantErr:  "status 404, want 200",
		},
		{
			name:     "capture from empty body",
			step:     `{"name": "patch", "method": "PATCH", "path": "/Users/{{a}}", "body": {"Operations": [{"op": "replace", "path": "active", "value": false}]}, "expectStatus": [200, 204], "capture": {"x": "id"}}`,
			wantStep: `step 2 "patch" (PATCH /Users/u-001)`,
			wantErr:  "response is not JSON",
		},
		{
			name:     "capture path missing",
			step:     `{"name": "get", "method": "GET", "path": "/Users/{{a}}", "expectStatus": 200, "capture": {"x": "Resources.0.id"}}`,
			wantStep: `step 2 "get"`,
			wantErr:  "capture x: response has no Resources.0.id",
		},
		{
			name:     "capture not scalar",
			step:     `{"name": "get", "method": "GET", "path": "/Users/{{a}}", "expectStatus": 200, "capture": {"x": "active"}}`,
			wantStep: `step 2 "get"`,
			wantErr:  "capture x: active is true, not a string or number",
		},
		{
			name:     "expectBody differs",
			step:     `{"name": "get", "method": "GET", "path": "/Users/{{a}}", "expectStatus": 200, "expectBody": {"active": false}}`,
			wantStep: `step 2 "get"`,
			wantErr:  "response active = true, want false",
		},
		{
			name:     "expectBody absent wanted",
			step:     `{"name": "get", "method": "GET", "path": "/Users/{{a}}", "expectStatus": 200, "expectBody": {"userName": null}}`,
			wantStep: `step 2 "get"`,
			wantErr:  `response userName = "alice@example.com", want it absent`,
		},
		{
			name:     "bad token",
			step:     `{"name": "list", "method": "GET", "path": "/Users", "expectStatus": 200}`,
			token:    "wrong",
			wantStep: `step 1 "create alice"`,
			wantErr:  "status 401, want 201",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := startFake(t, newFake(testToken))
			s := mustParse(t, `{"idp": "X", "sources": ["s"], "steps": [`+users+`, `+tc.step+`], "expect": {"users": [], "groups": []}}`)
			token := testToken
			if tc.token != "" {
				token = tc.token
			}
			err := s.Run(context.Background(), nil, base, token)
			var se *StepError
			if !errors.As(err, &se) {
				t.Fatalf("Run error = %v, want a *StepError", err)
			}
			if !strings.Contains(err.Error(), tc.wantStep) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %q\nwant it to contain %q and %q", err, tc.wantStep, tc.wantErr)
			}
		})
	}
}

func TestRunStateDifferences(t *testing.T) {
	f := newFake(testToken)
	f.activeAsString = true
	f.keepDeletedInGroups = true
	base := startFake(t, f)
	s := mustParse(t, `{"idp": "X", "sources": ["s"], "steps": [
	  {"name": "alice", "method": "POST", "path": "/Users", "body": {"userName": "alice@example.com"}, "expectStatus": 201, "capture": {"a": "id"}},
	  {"name": "bob", "method": "POST", "path": "/Users", "body": {"userName": "bob@example.com"}, "expectStatus": 201, "capture": {"b": "id"}},
	  {"name": "carol", "method": "POST", "path": "/Users", "body": {"userName": "carol@example.com"}, "expectStatus": 201, "capture": {"c": "id"}},
	  {"name": "support", "method": "POST", "path": "/Groups", "body": {"displayName": "Intercom Support", "members": [{"value": "{{a}}"}, {"value": "{{c}}"}]}, "expectStatus": 201},
	  {"name": "extra", "method": "POST", "path": "/Groups", "body": {"displayName": "Stray"}, "expectStatus": 201},
	  {"name": "disable alice", "method": "PATCH", "path": "/Users/{{a}}", "body": {"Operations": [{"op": "Replace", "path": "active", "value": "False"}]}, "expectStatus": 204},
	  {"name": "delete carol", "method": "DELETE", "path": "/Users/{{c}}", "expectStatus": 204}
	], "expect": {
	  "users": [{"userName": "alice@example.com", "active": false}, {"userName": "dave@example.com", "active": true}],
	  "groups": [{"displayName": "Intercom Support", "members": ["alice@example.com", "dave@example.com"]}, {"displayName": "Intercom Admins", "members": []}]
	}}`)
	err := s.Run(context.Background(), nil, base, testToken)
	var se *StateError
	if !errors.As(err, &se) {
		t.Fatalf("Run error = %v, want a *StateError", err)
	}
	want := []string{
		`user "alice@example.com": active = "False", want false`,
		`user "dave@example.com" is missing`,
		`user "bob@example.com" exists but is not expected`,
		`group "Intercom Support": member "u-003" is not a User on the server`,
		`group "Intercom Support": members [alice@example.com], want [alice@example.com dave@example.com]`,
		`group "Intercom Admins" is missing`,
		`group "Stray" exists but is not expected`,
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if len(se.Diffs) != len(want) {
		t.Errorf("got %d diffs, want %d:\n%v", len(se.Diffs), len(want), err)
	}
}

func TestRunPagesAndReadsGroupsWithoutMembers(t *testing.T) {
	old := listPageSize
	listPageSize = 2
	t.Cleanup(func() { listPageSize = old })

	f := newFake(testToken)
	f.omitMembersInList = true
	base := startFake(t, f)
	var steps, users []string
	for _, n := range []string{"u1", "u2", "u3", "u4", "u5"} {
		steps = append(steps, `{"name": "`+n+`", "method": "POST", "path": "/Users", "body": {"userName": "`+n+`@example.com"}, "expectStatus": 201, "capture": {"`+n+`": "id"}}`)
		users = append(users, `{"userName": "`+n+`@example.com", "active": true}`)
	}
	var groups []string
	for _, g := range []string{"g1", "g2", "g3"} {
		steps = append(steps, `{"name": "`+g+`", "method": "POST", "path": "/Groups", "body": {"displayName": "`+g+`", "members": [{"value": "{{u5}}"}]}, "expectStatus": 201}`)
		groups = append(groups, `{"displayName": "`+g+`", "members": ["u5@example.com"]}`)
	}
	s := mustParse(t, `{"idp": "X", "sources": ["s"], "steps": [`+strings.Join(steps, ",")+`],
	  "expect": {"users": [`+strings.Join(users, ",")+`], "groups": [`+strings.Join(groups, ",")+`]}}`)
	if err := s.Run(context.Background(), nil, base, testToken); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var pages, groupReads int
	for _, r := range f.requests {
		if r.method == "GET" && strings.Contains(r.rawQuery, "count=2") {
			pages++
		}
		if r.method == "GET" && strings.HasPrefix(r.rawPath, "/scim/v2/Groups/") {
			groupReads++
		}
	}
	// 5 users in pages of 2 → 3 pages; 3 groups → 2 pages.
	if pages != 5 {
		t.Errorf("list pages read = %d, want 5", pages)
	}
	if groupReads != 3 {
		t.Errorf("single-group reads = %d, want 3", groupReads)
	}
}

func TestStatusSetJSON(t *testing.T) {
	for in, want := range map[string]string{`201`: "201", `[200, 204]`: "[200 204]", `[404]`: "404"} {
		var s StatusSet
		if err := json.Unmarshal([]byte(in), &s); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if s.String() != want {
			t.Errorf("%s → %s, want %s", in, s, want)
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back StatusSet
		if err := json.Unmarshal(out, &back); err != nil || back.String() != want {
			t.Errorf("round trip of %s: %s, %v", in, out, err)
		}
	}
	for _, bad := range []string{`"201"`, `{"code": 201}`, `[200, "204"]`} {
		var s StatusSet
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("%s decoded to %v, want an error", bad, s)
		}
	}
	if !(StatusSet{200, 204}).Contains(204) || (StatusSet{200, 204}).Contains(201) {
		t.Error("Contains is wrong")
	}
}

func TestSubstitute(t *testing.T) {
	vars := map[string]string{"id": "abc 123", "g": "G1"}
	got, err := substitute(`/Groups/{{g}}/x?filter=members[value eq "{{ id }}"]`, vars)
	if err != nil || got != `/Groups/G1/x?filter=members[value eq "abc 123"]` {
		t.Errorf("substitute = %q, %v", got, err)
	}
	if _, err := substitute("/Users/{{nope}}/{{g}}/{{other}}", vars); err == nil || !strings.Contains(err.Error(), "{{nope}}, {{other}}") {
		t.Errorf("missing vars error = %v", err)
	}
	v, err := substituteIn(map[string]any{"{{g}}": []any{"{{id}}", 3.0, true, nil}}, vars)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	if string(b) != `{"G1":["abc 123",3,true,null]}` {
		t.Errorf("substituteIn = %s", b)
	}
}

func TestLookup(t *testing.T) {
	var doc any
	err := json.Unmarshal([]byte(`{
	  "id": "u1", "Active": false,
	  "name": {"givenName": "Carol"},
	  "name.givenName": "wrong: a literal dotted key",
	  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "E7", "manager": {"value": "u9"}},
	  "Resources": [{"id": "r0"}, {"id": "r1"}]
	}`), &doc)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]any{
		"id":             "u1",
		"active":         false,
		"name.givenName": "Carol",
		"Resources.1.id": "r1",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.employeeNumber": "E7",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager.value":  "u9",
	}
	for path, want := range cases {
		got, ok := lookup(doc, path)
		if !ok || got != want {
			t.Errorf("lookup(%q) = %v, %v; want %v", path, got, ok, want)
		}
	}
	for _, path := range []string{"nope", "Resources.2.id", "Resources.-1.id", "Resources.01.id", "Resources.x", "id.x", "name.familyName"} {
		if got, ok := lookup(doc, path); ok {
			t.Errorf("lookup(%q) = %v, want not found", path, got)
		}
	}
}

func TestValidate(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"unknown field", `{"idp": "X", "sources": ["s"], "steps": [{"name": "a", "method": "GET", "path": "/Users", "expectStatus": 200, "expectStatuss": 201}], "expect": {}}`, `unknown field "expectStatuss"`},
		{"trailing data", `{"idp": "X", "sources": ["s"], "steps": [{"name": "a", "method": "GET", "path": "/Users", "expectStatus": 200}], "expect": {}} {}`, "trailing data"},
		{"no idp", `{"sources": ["s"], "steps": [{"name": "a", "method": "GET", "path": "/Users", "expectStatus": 200}], "expect": {}}`, `"idp" is empty`},
		{"no sources", `{"idp": "X", "steps": [{"name": "a", "method": "GET", "path": "/Users", "expectStatus": 200}], "expect": {}}`, `"sources" is empty`},
		{"var before capture", `{"idp": "X", "sources": ["s"], "steps": [
		  {"name": "a", "method": "PATCH", "path": "/Users/{{id}}", "body": {"x": 1}, "expectStatus": 204},
		  {"name": "b", "method": "POST", "path": "/Users", "body": {"userName": "u"}, "expectStatus": 201, "capture": {"id": "id"}}], "expect": {}}`,
			`step 1 "a": uses {{id}}, which no earlier step captures`},
		{"var used by capturing step", `{"idp": "X", "sources": ["s"], "steps": [
		  {"name": "a", "method": "POST", "path": "/Users", "body": {"userName": "{{id}}"}, "expectStatus": 201, "capture": {"id": "id"}}], "expect": {}}`,
			`uses {{id}}`},
		{"var in expectBody", `{"idp": "X", "sources": ["s"], "steps": [
		  {"name": "a", "method": "GET", "path": "/Users", "expectStatus": 200, "expectBody": {"Resources.0.id": "{{x}}"}}], "expect": {}}`,
			`uses {{x}}`},
		{"duplicate step name", `{"idp": "X", "sources": ["s"], "steps": [
		  {"name": "a", "method": "GET", "path": "/Users", "expectStatus": 200},
		  {"name": "a", "method": "GET", "path": "/Groups", "expectStatus": 200}], "expect": {}}`, "name is used by an earlier step"},
		{"bad method", `{"idp": "X", "sources": ["s"], "steps": [{"name": "a", "method": "get", "path": "/Users", "expectStatus": 200}], "expect": {}}`, `method "get"`},
		{"relative path", `{"idp": "X", "sources": ["s"], "steps": [{"name": "a", "method": "GET", "path": "Users", "expectStatus": 200}], "expect": {}}`, "does not start with /"},
		{"escaped path", `{"idp": "X", "sources": ["s"], "steps": [{"name": "a", "method": "GET", "path": "/Users?filter=userName%20eq%20x", "expectStatus": 200}], "expect": {}}`, "write it unescaped"},
		{"no status", `{"idp": "X", "sources": ["s"], "steps": [{"name": "a", "method": "GET", "path": "/Users"}], "expect": {}}`, "expectStatus is missing"},
		{"status out of range", `{"idp": "X", "sources": ["s"], "steps": [{"name": "a", "method": "GET", "path": "/Users", "expectStatus": [200, 2040]}], "expect": {}}`, "2040 is not an HTTP status"},
		{"GET with body", `{"idp": "X", "sources": ["s"], "steps": [{"name": "a", "method": "GET", "path": "/Users", "body": {}, "expectStatus": 200}], "expect": {}}`, "GET request has a body"},
		{"PATCH without body", `{"idp": "X", "sources": ["s"], "steps": [{"name": "a", "method": "PATCH", "path": "/Users/1", "expectStatus": 204}], "expect": {}}`, "PATCH request has no body"},
		{"capture from 204", `{"idp": "X", "sources": ["s"], "steps": [{"name": "a", "method": "DELETE", "path": "/Users/1", "expectStatus": 204, "capture": {"x": "id"}}], "expect": {}}`, "204 No Content"},
		{"bad capture name", `{"idp": "X", "sources": ["s"], "steps": [{"name": "a", "method": "GET", "path": "/Users/1", "expectStatus": 200, "capture": {"x-y": "id"}}], "expect": {}}`, "not an identifier"},
		{"member not a user", `{"idp": "X", "sources": ["s"], "steps": [{"name": "a", "method": "GET", "path": "/Users", "expectStatus": 200}],
		  "expect": {"users": [{"userName": "a@example.com"}], "groups": [{"displayName": "G", "members": ["A@example.com", "b@example.com"]}]}}`, `member "b@example.com" is not in expect.users`},
		{"duplicate user", `{"idp": "X", "sources": ["s"], "steps": [{"name": "a", "method": "GET", "path": "/Users", "expectStatus": 200}],
		  "expect": {"users": [{"userName": "a@example.com"}, {"userName": "A@example.com"}]}}`, "listed twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadReportsPath(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sequence.json")
	if err := os.WriteFile(p, []byte(`{"idp": ""}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("Load error = %v, want it to name %s", err, p)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}
