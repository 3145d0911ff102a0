package console_test

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
	"testing"
	"time"

	"github.com/scimd/scimd/engine/app"
	"github.com/scimd/scimd/engine/console"
	"github.com/scimd/scimd/scim/server"
	"github.com/scimd/scimd/scim/store"
)

const adminSecret = "console-admin-token"

// env is a real scimd (store on disk, the repository's policy, reconciler,
// HTTP on loopback) with the console mounted as scimd serve mounts it.
type env struct {
	t       testing.TB
	app     *app.App
	console *console.Console
	srv     *httptest.Server
	scim    string // SCIM token
}

func copyPolicies(t testing.TB) string {
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

func newEnv(t testing.TB, tlsServer bool) *env {
	t.Helper()
	a, err := app.Open(context.Background(), app.Config{
		Data: t.TempDir(), Policies: copyPolicies(t), AdminToken: adminSecret, PolicyDebounce: 50 * time.Millisecond,
		// A loaded test machine must not time a decision out: the tests
		// count the teammates of a held change.
		EvalTimeout: time.Minute,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("open app: %v", err)
	}
	c, err := console.New(console.Options{Store: a.Store, Reconciler: a.Reconciler, Policies: a.Policies,
		Gatherer: a.Registry, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("console: %v", err)
	}
	e := &env{t: t, app: a, console: c}
	if tlsServer {
		e.srv = httptest.NewTLSServer(c.Mount(a.Handler))
	} else {
		e.srv = httptest.NewServer(c.Mount(a.Handler))
	}
	t.Cleanup(func() {
		e.srv.Close()
		c.Close()
		_ = a.Close()
	})
	e.scim = e.token("okta", server.ScopeSCIM)
	return e
}

// token stores a token with the given scopes and returns its secret.
func (e *env) token(name string, scopes ...string) string {
	return e.tokenExpiring(name, time.Time{}, scopes...)
}

// tokenExpiring stores a token that expires at expires (zero: never).
func (e *env) tokenExpiring(name string, expires time.Time, scopes ...string) string {
	e.t.Helper()
	secret, err := server.NewSecret()
	if err != nil {
		e.t.Fatal(err)
	}
	err = e.app.Store.Write(context.Background(), func(tx *store.WriteTxn) error {
		return tx.PutToken(&store.Token{Name: name, Digest: server.Digest(secret), Scopes: scopes, Created: time.Now(), Expires: expires})
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

func (e *env) idle() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.app.Reconciler.WaitIdle(ctx); err != nil {
		e.t.Fatalf("reconciler did not settle: %v", err)
	}
}

// do sends a JSON request with a bearer token and decodes the answer.
func (e *env) do(method, path, token string, body, out any, want int) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// user creates a SCIM user and returns its id.
func (e *env) user(name string) string {
	e.t.Helper()
	var out struct{ ID string }
	e.do(http.MethodPost, "/scim/v2/Users", e.scim, map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": name, "active": true,
		"emails": []map[string]any{{"value": name + "@example.com", "primary": true}},
	}, &out, http.StatusCreated)
	return out.ID
}

// group creates a SCIM group with members and returns its id.
func (e *env) group(name, externalID string, members []string) string {
	e.t.Helper()
	var ms []map[string]string
	for _, m := range members {
		ms = append(ms, map[string]string{"value": m})
	}
	body := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": name, "members": ms}
	if externalID != "" {
		body["externalId"] = externalID
	}
	var out struct{ ID string }
	e.do(http.MethodPost, "/scim/v2/Groups", e.scim, body, &out, http.StatusCreated)
	return out.ID
}

// seed creates teammates in mapped and unmapped groups, and returns the
// id of the support group (12 members: deleting it is held by the guard).
func (e *env) seed() (supportGroup string, users map[string]string) {
	e.t.Helper()
	users = map[string]string{}
	var support, viewers []string
	for i := range 12 {
		name := fmt.Sprintf("support%02d", i)
		users[name] = e.user(name)
		support = append(support, users[name])
	}
	for _, name := range []string{"alice", "bob", "carol"} {
		users[name] = e.user(name)
		viewers = append(viewers, users[name])
	}
	users["dave"] = e.user("dave")
	supportGroup = e.group("Intercom Support", "", support)
	e.group("Intercom Viewers", "okta-viewers-1", viewers)
	e.group("Intercom Admins", "", []string{users["alice"]})
	e.group("Marketing", "", []string{users["dave"], users["bob"]})
	e.idle()
	return supportGroup, users
}

// holdChange deletes the support group: 12 teammates would lose access,
// which the guard holds. It returns the change's id.
func (e *env) holdChange(group string) string {
	e.t.Helper()
	e.do(http.MethodDelete, "/scim/v2/Groups/"+group, e.scim, nil, nil, http.StatusNoContent)
	e.idle()
	var out struct {
		Changes []struct {
			ID      string
			Changes []any
		}
	}
	e.do(http.MethodGet, "/api/v1/changes", adminSecret, nil, &out, http.StatusOK)
	if len(out.Changes) != 1 || len(out.Changes[0].Changes) != 12 {
		e.t.Fatalf("pending changes = %+v, want one of 12 teammates", out.Changes)
	}
	return out.Changes[0].ID
}
