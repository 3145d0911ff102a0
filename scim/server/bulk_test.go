package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/server"
	"github.com/scimd/scimd/scim/store"
)

func bulkBody(failOnErrors int, ops ...map[string]any) map[string]any {
	list := make([]any, len(ops))
	for i, o := range ops {
		list[i] = o
	}
	b := map[string]any{"schemas": []string{server.BulkRequestURN}, "Operations": list}
	if failOnErrors > 0 {
		b["failOnErrors"] = failOnErrors
	}
	return b
}

func bulkOp(method, path, bulkID string, data any) map[string]any {
	o := map[string]any{"method": method, "path": path}
	if bulkID != "" {
		o["bulkId"] = bulkID
	}
	if data != nil {
		o["data"] = data
	}
	return o
}

// bulkResults returns the Operations of a BulkResponse.
func bulkResults(t *testing.T, r *response) []map[string]any {
	t.Helper()
	expect(t, r, http.StatusOK)
	schemas, _ := r.JSON["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != server.BulkResponseURN {
		t.Fatalf("schemas %v", r.JSON["schemas"])
	}
	raw, _ := r.JSON["Operations"].([]any)
	out := make([]map[string]any, len(raw))
	for i, e := range raw {
		out[i], _ = e.(map[string]any)
	}
	return out
}

func statuses(ops []map[string]any) string {
	var s []string
	for _, o := range ops {
		s = append(s, str(o, "status"))
	}
	return strings.Join(s, " ")
}

// TestBulk: RFC 7644 §3.7 through the real server: bulkId references
// (forward ones too), per-operation status, location, version and
// response, one audit event per operation with the token's actor.
func TestBulk(t *testing.T) {
	ts := newTestServer(t)
	cfg := expect(t, ts.do(http.MethodGet, "/ServiceProviderConfig", nil), http.StatusOK).JSON
	bulk, _ := cfg["bulk"].(map[string]any)
	if bulk["supported"] != true || bulk["maxOperations"] != float64(1000) || bulk["maxPayloadSize"] != float64(1<<20) {
		t.Fatalf("bulk config %v", bulk)
	}
	old := ts.createUser("old@example.com")
	oldID := str(old, "id")
	seq := lastSeq(t, ts)
	r := ts.do(http.MethodPost, "/Bulk", bulkBody(0,
		// The group comes first and refers to users created after it.
		bulkOp("POST", "/Groups", "g", map[string]any{"displayName": "Admins", "members": []any{
			map[string]any{"value": "bulkId:u1"}, map[string]any{"value": "bulkId:u2"}}}),
		bulkOp("POST", "/Users", "u1", userBody("u1@example.com")),
		bulkOp("POST", "/Users", "u2", userBody("u2@example.com", "title", "x")),
		bulkOp("PATCH", "/Users/bulkId:u2", "", patchBody(op("replace", "title", "Boss"))),
		bulkOp("PUT", "/Users/"+oldID, "", userBody("old@example.com", "title", "Renamed")),
		bulkOp("DELETE", "/Users/"+oldID, "", nil),
		bulkOp("POST", "/Users", "dup", userBody("U1@example.com")),
	))
	res := bulkResults(t, r)
	if got := statuses(res); got != "201 201 201 204 200 204 409" {
		t.Fatalf("statuses %s; body %s", got, r.Body)
	}
	gid := str(ts.list("/Groups", "filter", `displayName eq "Admins"`).JSON["Resources"].([]any)[0].(map[string]any), "id")
	u1 := resources(t, ts.list("/Users", "filter", `userName eq "u1@example.com"`))[0]
	u2 := resources(t, ts.list("/Users", "filter", `userName eq "u2@example.com"`))[0]
	if got := memberIDs(expect(t, ts.do(http.MethodGet, "/Groups/"+gid, nil), http.StatusOK).JSON); len(got) != 2 {
		t.Fatalf("group members %v", got)
	}
	if str(u2, "title") != "Boss" {
		t.Fatalf("PATCH by bulkId path not applied: %v", u2)
	}
	if res[0]["method"] != "POST" || res[0]["bulkId"] != "g" || str(res[0], "location") != ts.Base+"/Groups/"+gid {
		t.Fatalf("group op result %v", res[0])
	}
	if str(res[1], "location") != ts.Base+"/Users/"+str(u1, "id") || str(res[1], "version") == "" {
		t.Fatalf("user op result %v", res[1])
	}
	// The PATCH made version 2; the group, which waited for its members,
	// then made version 3 by adding u2.
	if str(res[3], "location") != ts.Base+"/Users/"+str(u2, "id") || str(res[3], "version") != `W/"2"` || str(meta(u2), "version") != `W/"3"` {
		t.Fatalf("PATCH result %v, user version %s", res[3], str(meta(u2), "version"))
	}
	resp, _ := res[6]["response"].(map[string]any)
	if resp["scimType"] != "uniqueness" || resp["status"] != "409" {
		t.Fatalf("failed op response %v", res[6])
	}
	expect(t, ts.do(http.MethodGet, "/Users/"+oldID, nil), http.StatusNotFound)
	// One audit event per successful operation, by the token.
	var types []string
	for _, e := range ts.auditEvents(t, store.AuditQuery{AfterSeq: seq}) {
		if e.Actor != (audit.Actor{Kind: "token", Name: scimTokenName}) {
			t.Errorf("actor %+v on %s", e.Actor, e.Type)
		}
		types = append(types, e.Type)
	}
	if got := strings.Join(types, " "); got != "scim.user.created scim.user.created scim.user.patched scim.user.replaced scim.user.deleted scim.group.created" {
		t.Fatalf("audit events %s", got)
	}
}

// TestBulkFailures: failOnErrors, references to failed or unknown
// operations, cycles (RFC 7644 §3.7.1), If-Match via version, and the 413
// limits.
func TestBulkFailures(t *testing.T) {
	ts := newTestServer(t)
	u := ts.createUser("a@example.com")
	id := str(u, "id")

	// failOnErrors 1: the first error stops the request.
	before := ts.commit()
	res := bulkResults(t, ts.do(http.MethodPost, "/Bulk", bulkBody(1,
		bulkOp("POST", "/Users", "bad", map[string]any{"title": "no userName"}),
		bulkOp("POST", "/Users", "good", userBody("b@example.com")),
	)))
	if statuses(res) != "400" {
		t.Fatalf("failOnErrors 1: %v", res)
	}
	ts.unchanged(t, before)

	// A reference to a failed operation is 409; to no operation, 400.
	res = bulkResults(t, ts.do(http.MethodPost, "/Bulk", bulkBody(0,
		bulkOp("POST", "/Users", "bad", map[string]any{"title": "no userName"}),
		bulkOp("POST", "/Groups", "g", groupBody("G", "bulkId:bad")),
		bulkOp("POST", "/Groups", "h", groupBody("H", "bulkId:nobody")),
	)))
	if statuses(res) != "400 409 400" {
		t.Fatalf("references to failed ops: %v", res)
	}
	ts.unchanged(t, before)

	// A cycle is refused with 409; the others still run.
	res = bulkResults(t, ts.do(http.MethodPost, "/Bulk", bulkBody(0,
		bulkOp("POST", "/Groups", "a", groupBody("A", "bulkId:b")),
		bulkOp("POST", "/Groups", "b", groupBody("B", "bulkId:a")),
		bulkOp("POST", "/Groups", "self", groupBody("Self", "bulkId:self")),
		bulkOp("POST", "/Groups", "c", groupBody("C", id)),
	)))
	if statuses(res) != "409 409 409 201" {
		t.Fatalf("cycle: %v", res)
	}

	// version is If-Match.
	before = ts.commit()
	res = bulkResults(t, ts.do(http.MethodPost, "/Bulk", bulkBody(0,
		map[string]any{"method": "PUT", "path": "/Users/" + id, "version": `W/"999"`, "data": userBody("a@example.com", "title", "x")},
		bulkOp("PATCH", "/Users/nope", "", patchBody(op("replace", "title", "x"))),
		bulkOp("PUT", "/Schemas/x", "", userBody("z@example.com")),
	)))
	if statuses(res) != "412 404 400" {
		t.Fatalf("version/unknown: %v", res)
	}
	ts.unchanged(t, before)

	// Malformed requests are refused whole.
	for _, body := range []string{
		`{"Operations": {}}`,
		`{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []}`,
		`{"Operations": [{"method": "GET", "path": "/Users"}]}`,
		`{"Operations": [{"method": "POST", "path": "/Users", "data": {"userName": "x"}}]}`,
		`{"Operations": [{"method": "POST", "path": "Users", "bulkId": "1", "data": {}}]}`,
		`{"Operations": [{"method": "POST", "path": "/Users", "bulkId": "1", "data": {"userName": "x"}}, {"method": "POST", "path": "/Users", "bulkId": "1", "data": {"userName": "y"}}]}`,
		`{"Operations": [{"method": "PUT", "path": "/Users/x"}]}`,
		`{"failOnErrors": -1, "Operations": []}`,
		`{}`,
	} {
		r := ts.do(http.MethodPost, "/Bulk", body)
		if p := scimErrorProblem(r, http.StatusBadRequest, "*"); p != "" {
			t.Errorf("%s: %s (%s)", body, p, r.Body)
		}
	}
	ts.unchanged(t, before)

	// Limits: more operations than bulk.maxOperations, or a larger body than
	// maxPayloadSize, is 413.
	small := newTestServer(t, func(o *server.Options) { o.BulkMaxOperations = 2; o.MaxBodyBytes = 4096 })
	ops := []map[string]any{}
	for i := 0; i < 3; i++ {
		ops = append(ops, bulkOp("DELETE", "/Users/x", "", nil))
	}
	checkSCIMError(t, small.do(http.MethodPost, "/Bulk", bulkBody(0, ops...)), http.StatusRequestEntityTooLarge, "")
	big := bulkBody(0, bulkOp("POST", "/Users", "1", userBody("x@example.com", "title", strings.Repeat("x", 5000))))
	checkSCIMError(t, small.do(http.MethodPost, "/Bulk", big), http.StatusRequestEntityTooLarge, "")
	cfg := expect(t, small.do(http.MethodGet, "/ServiceProviderConfig", nil), http.StatusOK).JSON
	if b, _ := json.Marshal(cfg["bulk"]); string(b) != `{"maxOperations":2,"maxPayloadSize":4096,"supported":true}` {
		t.Fatalf("bulk config %s", b)
	}
}

// FuzzBulkBody POSTs arbitrary bodies to /Bulk. The handler must never
// fail with a 5xx or panic; a refused request writes nothing; an answered
// one is a BulkResponse whose every operation has a method and a status
// (a SCIM error body when it failed), never a 5xx.
func FuzzBulkBody(f *testing.F) {
	// Seeds are in testdata/fuzz/FuzzBulkBody.
	ts := newInProcessServer(f, func(o *server.Options) { o.BulkMaxOperations = 20 })
	f.Fuzz(func(t *testing.T, body []byte) {
		ts := ts.with(t)
		before := ts.commit()
		r := ts.serve(http.MethodPost, "/Bulk", body)
		if !checkFuzzResponse(t, ts, r, before, http.StatusOK) {
			return
		}
		var br struct {
			Schemas    []string
			Operations []struct {
				Method, Status string
				Response       json.RawMessage
			}
		}
		if err := json.Unmarshal(r.Body, &br); err != nil || len(br.Schemas) != 1 || br.Schemas[0] != server.BulkResponseURN || br.Operations == nil {
			t.Fatalf("not a BulkResponse: %s", r.Body)
		}
		for _, op := range br.Operations {
			if op.Method == "" || len(op.Status) != 3 || op.Status[0] == '5' {
				t.Fatalf("operation %+v in %s", op, r.Body)
			}
			if op.Status[0] == '4' {
				res := decodeResponse(http.StatusBadRequest, http.Header{"Content-Type": {server.ContentType}}, op.Response)
				res.Status = atoiStatus(op.Status)
				if p := scimErrorProblem(res, -1, "*"); p != "" {
					t.Fatalf("failed operation's response: %s: %s", p, op.Response)
				}
			}
		}
	})
}

func atoiStatus(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
