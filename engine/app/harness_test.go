package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scimd/scimd/engine/app"
)

const adminToken = "e2e-admin-token"

// tb is what the harness needs of a test or benchmark.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	TempDir() string
	Cleanup(func())
}

// env is a real scimd (store on disk, real policy files, real watcher,
// reconciler, HTTP on loopback) for one test.
type env struct {
	t        tb
	app      *app.App
	srv      *httptest.Server
	scim     string
	token    string
	data     string
	policies string
}

// copyPolicies copies the repository's default policy into a temp dir.
func copyPolicies(t tb) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join("..", "..", "policies")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, d.Name()), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func newEnv(t *testing.T) *env { return newTBEnv(t) }

// newBenchEnv is newEnv for benchmarks.
func newBenchEnv(b *testing.B) *env { return newTBEnv(b) }

func newTBEnv(t tb) *env {
	t.Helper()
	e := &env{t: t, data: t.TempDir(), policies: copyPolicies(t)}
	e.start()
	e.token = e.createToken("okta")
	return e
}

func (e *env) start() {
	e.t.Helper()
	a, err := app.Open(context.Background(), app.Config{
		Data: e.data, Policies: e.policies, AdminToken: adminToken, PolicyDebounce: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		e.t.Fatalf("open app: %v", err)
	}
	e.app = a
	e.srv = httptest.NewServer(a.Handler)
	e.scim = e.srv.URL + "/scim/v2"
	e.t.Cleanup(e.stop)
	e.idle()
}

func (e *env) stop() {
	if e.srv != nil {
		e.srv.Close()
		e.srv = nil
	}
	if e.app != nil {
		_ = e.app.Close()
		e.app = nil
	}
}

func (e *env) restart() {
	e.t.Helper()
	e.stop()
	e.start()
}

// idle waits until the reconciler has processed everything enqueued.
func (e *env) idle() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.app.Reconciler.WaitIdle(ctx); err != nil {
		e.t.Fatalf("reconciler did not settle: %v", err)
	}
}

func (e *env) do(method, url, token string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *env) mustDo(method, url, token string, body any, want ...int) []byte {
	e.t.Helper()
	status, b := e.do(method, url, token, body)
	for _, w := range want {
		if status == w {
			return b
		}
	}
	e.t.Fatalf("%s %s = %d %s, want %v", method, url, status, b, want)
	return nil
}

func (e *env) createToken(name string) string {
	var out struct{ Token string }
	b := e.mustDo(http.MethodPost, e.srv.URL+"/api/v1/tokens", adminToken, map[string]string{"name": name}, http.StatusCreated)
	_ = json.Unmarshal(b, &out)
	return out.Token
}

func (e *env) createUser(userName string, extra map[string]any) string {
	e.t.Helper()
	body := map[string]any{"userName": userName, "active": true}
	for k, v := range extra {
		body[k] = v
	}
	var out struct{ ID string }
	_ = json.Unmarshal(e.mustDo(http.MethodPost, e.scim+"/Users", e.token, body, http.StatusCreated), &out)
	e.idle()
	return out.ID
}

func (e *env) createGroup(name string, members ...string) string {
	e.t.Helper()
	list := []any{}
	for _, m := range members {
		list = append(list, map[string]any{"value": m})
	}
	var out struct{ ID string }
	_ = json.Unmarshal(e.mustDo(http.MethodPost, e.scim+"/Groups", e.token,
		map[string]any{"displayName": name, "members": list}, http.StatusCreated), &out)
	e.idle()
	return out.ID
}

func patchOp(ops ...map[string]any) map[string]any {
	list := make([]any, len(ops))
	for i, o := range ops {
		list[i] = o
	}
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": list}
}

func memberValues(ids ...string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = map[string]any{"value": id}
	}
	return out
}

func (e *env) addMembers(group string, ids ...string) {
	e.t.Helper()
	e.mustDo(http.MethodPatch, e.scim+"/Groups/"+group, e.token,
		patchOp(map[string]any{"op": "add", "path": "members", "value": memberValues(ids...)}), 200, 204)
	e.idle()
}

func (e *env) removeMembers(group string, ids ...string) {
	e.t.Helper()
	e.mustDo(http.MethodPatch, e.scim+"/Groups/"+group, e.token,
		patchOp(map[string]any{"op": "remove", "path": "members", "value": memberValues(ids...)}), 200, 204)
	e.idle()
}

func (e *env) setActive(user string, active bool) {
	e.t.Helper()
	e.mustDo(http.MethodPatch, e.scim+"/Users/"+user, e.token,
		patchOp(map[string]any{"op": "replace", "value": map[string]any{"active": active}}), 200, 204)
	e.idle()
}

type teammate struct {
	ID       string
	UserName string
	Role     *string
	Access   bool
	Excluded bool
	Reasons  []string
	Manual   map[string]any
}

func (tm teammate) role() string {
	if tm.Role == nil {
		return ""
	}
	return *tm.Role
}

func (e *env) teammate(id string) teammate {
	e.t.Helper()
	var tm teammate
	_ = json.Unmarshal(e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/teammates/"+id, adminToken, nil, 200), &tm)
	return tm
}

// expect checks a teammate's role and access.
func (e *env) expect(id, role string, access bool) teammate {
	e.t.Helper()
	tm := e.teammate(id)
	if tm.role() != role || tm.Access != access {
		e.t.Fatalf("teammate %s (%s): role %q access %v, want role %q access %v (reasons %v)",
			id, tm.UserName, tm.role(), tm.Access, role, access, tm.Reasons)
	}
	return tm
}

type group struct {
	ID          string
	DisplayName string
	Active      bool
	Role        string
	Members     []string
}

func (e *env) group(id string) group {
	e.t.Helper()
	var out struct{ Groups []group }
	_ = json.Unmarshal(e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/groups", adminToken, nil, 200), &out)
	for _, g := range out.Groups {
		if g.ID == id {
			return g
		}
	}
	e.t.Fatalf("group %s not listed", id)
	return group{}
}

type event struct {
	Seq      uint64
	Type     string
	Actor    struct{ Kind, Name string }
	Target   struct{ Type, ID, Name string }
	Reasons  []string
	Details  map[string]any
	Change   map[string]any
	PrevHash string
	Hash     string
}

func (e *env) audit(query string) []event {
	e.t.Helper()
	var out struct{ Events []event }
	_ = json.Unmarshal(e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/audit?limit=10000&"+query, adminToken, nil, 200), &out)
	return out.Events
}

func (e *env) policyRevision() string {
	e.t.Helper()
	var st struct{ Revision string }
	_ = json.Unmarshal(e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/policy", adminToken, nil, 200), &st)
	return st.Revision
}

// editPolicy rewrites a policy file and waits for the watcher to activate
// the new revision and the reconciler to apply it.
func (e *env) editPolicy(file string, edit func(string) string) {
	e.t.Helper()
	before := e.policyRevision()
	path := filepath.Join(e.policies, file)
	b, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	next := edit(string(b))
	if next == string(b) {
		e.t.Fatalf("edit of %s changed nothing", file)
	}
	if err := os.WriteFile(path, []byte(next), 0o644); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	rev := before
	for rev == before {
		if time.Now().After(deadline) {
			st := e.mustDo(http.MethodGet, e.srv.URL+"/api/v1/policy", adminToken, nil, 200)
			e.t.Fatalf("policy edit of %s was not activated; status %s", file, st)
		}
		time.Sleep(20 * time.Millisecond)
		rev = e.policyRevision()
	}
	// The reconciler re-evaluates everyone and records a summary event for
	// the revision.
	for len(e.audit("type=decision.summary&teammate="+rev)) == 0 {
		if time.Now().After(deadline) {
			e.t.Fatalf("revision %s was not applied by the reconciler", rev)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mapGroup adds a group → role line to the default policy's table.
func mapGroup(name, role string) func(string) string {
	return func(src string) string {
		return strings.Replace(src, "group_roles := {\n", fmt.Sprintf("group_roles := {\n\t%q: %q,\n", name, role), 1)
	}
}
