package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/internal/httpstack"
	"github.com/scimd/scimd/scim/schema"
	"github.com/scimd/scimd/scim/server"
	"github.com/scimd/scimd/scim/store"
	"github.com/scimd/scimd/scim/store/sqlite"
)

// scimTokenName is the name of the SCIM token every test server creates.
const scimTokenName = "okta"

// testServer is a real scimd SCIM server: the sqlite-backed store, the
// handlers registered on a gorilla/mux router wrapped with CanonicalPaths,
// served over loopback HTTP.
type testServer struct {
	t       testing.TB
	URL     string // origin, e.g. http://127.0.0.1:1234
	Base    string // SCIM base URL (URL + /scim/v2)
	Store   *store.Store
	Server  *server.Server
	Handler http.Handler
	Admin   string // admin token secret
	Token   string // SCIM token secret, named scimTokenName
	client  *http.Client
}

// newTestServer starts a server. opts may adjust the server options
// (MaxBodyBytes, MaxResults, RateLimit…) before it is built.
func newTestServer(t testing.TB, opts ...func(*server.Options)) *testServer {
	t.Helper()
	ts := newInProcessServer(t, opts...)
	srv := httptest.NewServer(ts.Handler)
	t.Cleanup(srv.Close) // runs before the store is closed
	ts.URL = srv.URL
	ts.Base = srv.URL + server.BasePath
	ts.client = srv.Client()
	ts.client.Timeout = 60 * time.Second
	return ts
}

// newInProcessServer builds the same server without a listener, for fuzz
// tests and benchmarks that call the handler directly.
func newInProcessServer(t testing.TB, opts ...func(*server.Options)) *testServer {
	t.Helper()
	ctx := context.Background()
	backend, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	logger := slog.New(slog.DiscardHandler)
	st, err := store.Open(ctx, store.Options{Backend: backend, Logger: logger, Records: server.Records()})
	if err != nil {
		backend.Close()
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	admin, err := server.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.EnsureAdminToken(ctx, st, admin); err != nil {
		t.Fatalf("EnsureAdminToken: %v", err)
	}
	tok, err := server.CreateToken(ctx, st, scimTokenName, store.TokenRoleSCIM, audit.Actor{Kind: "system", Name: "test"})
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	o := server.Options{Store: st, Logger: logger}
	for _, f := range opts {
		f(&o)
	}
	router := mux.NewRouter()
	router.Use(httpstack.RouteLabel)
	srv := server.New(o)
	srv.Register(router)
	stack := httpstack.New(httpstack.Options{Logger: logger, MaxBodyBytes: o.MaxBodyBytes})
	return &testServer{t: t, Store: st, Server: srv, Handler: stack.Wrap(server.CanonicalPaths(router)), Admin: admin, Token: tok,
		Base: "http://example.test" + server.BasePath}
}

// response is a decoded HTTP response.
type response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any // nil unless the body is a JSON object
}

func (r *response) String() string {
	return strconv.Itoa(r.Status) + " " + string(r.Body)
}

// reqOpt adjusts a request.
type reqOpt func(*http.Request)

func withToken(secret string) reqOpt {
	return func(r *http.Request) {
		if secret == "" {
			r.Header.Del("Authorization")
			return
		}
		r.Header.Set("Authorization", "Bearer "+secret)
	}
}

func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

// newRequest builds a request to path (relative to the origin when it
// starts with /api, else to the SCIM base URL). body is sent as is when it
// is a string or []byte and JSON-encoded otherwise.
func (ts *testServer) newRequest(method, path string, body any, opts ...reqOpt) *http.Request {
	ts.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(data)
	}
	target := ts.Base + path
	if strings.HasPrefix(path, "/api/") {
		target = strings.TrimSuffix(ts.Base, server.BasePath) + path
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		ts.t.Fatalf("new request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	req.Header.Set("Authorization", "Bearer "+ts.Token)
	for _, o := range opts {
		o(req)
	}
	return req
}

// do sends a request over HTTP and reads the whole response.
func (ts *testServer) do(method, path string, body any, opts ...reqOpt) *response {
	ts.t.Helper()
	req := ts.newRequest(method, path, body, opts...)
	res, err := ts.client.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		ts.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return decodeResponse(res.StatusCode, res.Header, data)
}

// serve calls the handler in-process.
func (ts *testServer) serve(method, path string, body any, opts ...reqOpt) *response {
	ts.t.Helper()
	req := ts.newRequest(method, path, body, opts...)
	rec := httptest.NewRecorder()
	ts.Handler.ServeHTTP(rec, req)
	return decodeResponse(rec.Code, rec.Header(), rec.Body.Bytes())
}

func decodeResponse(status int, h http.Header, data []byte) *response {
	r := &response{Status: status, Header: h, Body: data}
	var m map[string]any
	if json.Unmarshal(data, &m) == nil {
		r.JSON = m
	}
	return r
}

// expect fails the test unless the response has the status.
func expect(t testing.TB, r *response, status int) *response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body: %s", r.Status, status, r.Body)
	}
	return r
}

// checkSCIMError checks a SCIM error response (RFC 7644 §3.12). scimType ""
// means the response must not carry one.
func checkSCIMError(t testing.TB, r *response, status int, scimType string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body: %s", r.Status, status, r.Body)
	}
	if err := scimErrorProblem(r, status, scimType); err != "" {
		t.Fatalf("%s; body: %s", err, r.Body)
	}
}

// scimErrorProblem describes what is wrong with a SCIM error response, or
// returns "". A negative status accepts any 4xx.
func scimErrorProblem(r *response, status int, scimType string) string {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, server.ContentType) {
		return "Content-Type " + ct + ", want " + server.ContentType
	}
	if r.JSON == nil {
		return "error body is not a JSON object"
	}
	schemas, _ := r.JSON["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != schema.ErrorURN {
		return "schemas is not [" + schema.ErrorURN + "]"
	}
	st, ok := r.JSON["status"].(string)
	if !ok {
		return "status is not a string"
	}
	if st != strconv.Itoa(r.Status) {
		return "status " + st + " does not match the HTTP status " + strconv.Itoa(r.Status)
	}
	if status > 0 && st != strconv.Itoa(status) {
		return "status " + st + ", want " + strconv.Itoa(status)
	}
	if d, _ := r.JSON["detail"].(string); d == "" {
		return "detail is missing"
	}
	got, has := r.JSON["scimType"]
	switch {
	case scimType == "*":
	case scimType == "" && has:
		return "unexpected scimType " + fmtAny(got)
	case scimType != "" && got != scimType:
		return "scimType " + fmtAny(got) + ", want " + scimType
	}
	return ""
}

func fmtAny(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// commit returns the number of the last durable write: it changes exactly
// when something was written.
func (ts *testServer) commit() uint64 { return ts.Store.Read().Commit }

// unchanged fails the test if anything was written since before.
func (ts *testServer) unchanged(t testing.TB, before uint64) {
	t.Helper()
	if got := ts.commit(); got != before {
		t.Fatalf("store changed: commit %d → %d", before, got)
	}
}

func userBody(userName string, extra ...any) map[string]any {
	b := map[string]any{"schemas": []string{schema.UserURN}, "userName": userName, "active": true}
	for i := 0; i+1 < len(extra); i += 2 {
		b[extra[i].(string)] = extra[i+1]
	}
	return b
}

func groupBody(displayName string, members ...string) map[string]any {
	b := map[string]any{"schemas": []string{schema.GroupURN}, "displayName": displayName}
	if members != nil {
		list := []any{}
		for _, m := range members {
			list = append(list, map[string]any{"value": m})
		}
		b["members"] = list
	}
	return b
}

// createUser creates a user and returns its representation.
func (ts *testServer) createUser(userName string, extra ...any) map[string]any {
	ts.t.Helper()
	r := ts.do(http.MethodPost, "/Users", userBody(userName, extra...))
	expect(ts.t, r, http.StatusCreated)
	return r.JSON
}

func (ts *testServer) createGroup(displayName string, members ...string) map[string]any {
	ts.t.Helper()
	r := ts.do(http.MethodPost, "/Groups", groupBody(displayName, members...))
	expect(ts.t, r, http.StatusCreated)
	return r.JSON
}

func patchBody(ops ...map[string]any) map[string]any {
	list := make([]any, len(ops))
	for i, o := range ops {
		list[i] = o
	}
	return map[string]any{"schemas": []string{schema.PatchOpURN}, "Operations": list}
}

func op(name, path string, value any) map[string]any {
	o := map[string]any{"op": name}
	if path != "" {
		o["path"] = path
	}
	if value != nil {
		o["value"] = value
	}
	return o
}

// list GETs a list endpoint with query parameters given as key, value pairs.
func (ts *testServer) list(endpoint string, kv ...string) *response {
	ts.t.Helper()
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	path := endpoint
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return ts.do(http.MethodGet, path, nil)
}

// resources returns the Resources of a list response, failing the test if
// it is not a JSON array.
func resources(t testing.TB, r *response) []map[string]any {
	t.Helper()
	raw, ok := r.JSON["Resources"].([]any)
	if !ok {
		t.Fatalf("Resources is %s, want an array; body: %s", fmtAny(r.JSON["Resources"]), r.Body)
	}
	out := make([]map[string]any, len(raw))
	for i, e := range raw {
		out[i], _ = e.(map[string]any)
	}
	return out
}

func ids(list []map[string]any) []string {
	out := make([]string, len(list))
	for i, m := range list {
		out[i], _ = m["id"].(string)
	}
	return out
}

// intField returns a JSON number field that must be an integer.
func intField(t testing.TB, m map[string]any, key string) int {
	t.Helper()
	f, ok := m[key].(float64)
	if !ok || f != float64(int(f)) {
		t.Fatalf("%s is %s, want an integer", key, fmtAny(m[key]))
	}
	return int(f)
}

func memberIDs(doc map[string]any) []string {
	list, _ := doc["members"].([]any)
	out := []string{}
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			s, _ := m["value"].(string)
			out = append(out, s)
		}
	}
	return out
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func meta(m map[string]any) map[string]any {
	mm, _ := m["meta"].(map[string]any)
	return mm
}

// auditEvents returns every audit event in sequence order.
func (ts *testServer) auditEvents(t testing.TB, q store.AuditQuery) []audit.Event {
	t.Helper()
	ev, err := ts.Store.AuditEvents(context.Background(), q)
	if err != nil {
		t.Fatalf("AuditEvents: %v", err)
	}
	return ev
}

func lastSeq(t testing.TB, ts *testServer) uint64 {
	t.Helper()
	ev := ts.auditEvents(t, store.AuditQuery{})
	if len(ev) == 0 {
		return 0
	}
	return ev[len(ev)-1].Seq
}

// urlq escapes a query parameter value.
func urlq(s string) string { return url.QueryEscape(s) }

// rawFields returns the top-level members of a JSON object, undecoded.
func rawFields(body []byte) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(body, &m)
	return m
}

// with returns a copy of ts that reports failures to t (a subtest or a
// fuzz target's T).
func (ts *testServer) with(t testing.TB) *testServer {
	c := *ts
	c.t = t
	return &c
}
