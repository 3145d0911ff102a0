package server_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/server"
	"github.com/scimd/scimd/scim/store"
)

// clock is a settable time source for token expiry.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newClockedServer(t *testing.T) (*testServer, *clock) {
	c := &clock{now: time.Now()}
	ts := newTestServer(t, func(o *server.Options) { o.Now = c.Now })
	return ts, c
}

func createToken(t *testing.T, ts *testServer, body map[string]any) map[string]any {
	t.Helper()
	return expect(t, ts.do(http.MethodPost, "/api/v1/tokens", body, withToken(ts.Admin)), http.StatusCreated).JSON
}

func TestScopeRefusedWith403(t *testing.T) {
	ts := newTestServer(t)
	read := str(createToken(t, ts, map[string]any{"name": "viewer", "scopes": []string{"read"}}), "token")
	cases := []struct {
		name, method, path, token, scope, actor string
	}{
		{"admin token on SCIM", http.MethodGet, "/Users", ts.Admin, "scim", "admin"},
		{"read token on SCIM", http.MethodPost, "/Users", read, "scim", "viewer"},
		{"SCIM token lists tokens", http.MethodGet, "/api/v1/tokens", ts.Token, "admin", "okta"},
		{"read token creates tokens", http.MethodPost, "/api/v1/tokens", read, "admin", "viewer"},
		{"SCIM token revokes tokens", http.MethodDelete, "/api/v1/tokens/viewer", ts.Token, "admin", "okta"},
		{"SCIM token rotates tokens", http.MethodPost, "/api/v1/tokens/okta/rotate", ts.Token, "admin", "okta"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.method == http.MethodPost && strings.HasSuffix(tc.path, "Users") {
				body = userBody("refused")
			}
			r := ts.do(tc.method, tc.path, body, withToken(tc.token))
			checkSCIMError(t, r, http.StatusForbidden, "")
			if !strings.Contains(str(r.JSON, "detail"), `"`+tc.scope+`" scope`) {
				t.Errorf("403 body does not name the scope %q: %s", tc.scope, r.Body)
			}
			if h := r.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_scope"`) || !strings.Contains(h, `scope="`+tc.scope+`"`) {
				t.Errorf("WWW-Authenticate %q", h)
			}
			ev := ts.auditEvents(t, store.AuditQuery{Types: []string{audit.TypeAccessDenied}})
			last := ev[len(ev)-1]
			if last.Actor.Name != tc.actor || last.Details["scope"] != tc.scope || last.Target.ID != tc.method+" /scim/v2"+strings.TrimPrefix(tc.path, "") && last.Target.ID != tc.method+" "+tc.path {
				t.Errorf("access.denied event %+v", last)
			}
		})
	}
	if got := len(ts.auditEvents(t, store.AuditQuery{Types: []string{audit.TypeAccessDenied}})); got != len(cases) {
		t.Errorf("%d access.denied events for %d refusals", got, len(cases))
	}
}

func TestTokenExpiry(t *testing.T) {
	ts, c := newClockedServer(t)
	out := createToken(t, ts, map[string]any{"name": "short", "scopes": []string{"scim"}, "expiresIn": "1h"})
	secret := str(out, "token")
	if out["expires"] == nil {
		t.Fatalf("create response has no expiry: %v", out)
	}
	expect(t, ts.do(http.MethodGet, "/Users", nil, withToken(secret)), http.StatusOK)
	c.Advance(59 * time.Minute)
	expect(t, ts.do(http.MethodGet, "/Users", nil, withToken(secret)), http.StatusOK)
	c.Advance(time.Minute)
	r := ts.do(http.MethodGet, "/Users", nil, withToken(secret))
	checkSCIMError(t, r, http.StatusUnauthorized, "")
	if !strings.Contains(str(r.JSON, "detail"), "expired") || !strings.Contains(r.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("expired token answer: %s %v", r.Body, r.Header)
	}
	// The sweep audits the expiry once.
	for range 2 {
		if err := ts.Server.SweepTokens(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	ev := ts.auditEvents(t, store.AuditQuery{Types: []string{audit.TypeTokenExpired}})
	if len(ev) != 1 || ev[0].Target.ID != "short" || ev[0].Actor.Kind != "system" {
		t.Fatalf("token.expired events %+v", ev)
	}
	l := expect(t, ts.do(http.MethodGet, "/api/v1/tokens", nil, withToken(ts.Admin)), http.StatusOK)
	if !strings.Contains(string(l.Body), `"expired":true`) {
		t.Errorf("token list does not show the expiry: %s", l.Body)
	}
}

func TestTokenRotation(t *testing.T) {
	ts, c := newClockedServer(t)
	old := str(createToken(t, ts, map[string]any{"name": "ci", "scopes": []string{"scim"}}), "token")
	r := expect(t, ts.do(http.MethodPost, "/api/v1/tokens/ci/rotate", map[string]any{"grace": "2h"}, withToken(ts.Admin)), http.StatusOK)
	fresh := str(r.JSON, "token")
	if fresh == "" || fresh == old || r.JSON["previousSecretExpires"] == nil {
		t.Fatalf("rotate response %s", r.Body)
	}
	// Both secrets work during the grace period, both as actor "ci".
	for i, secret := range []string{old, fresh} {
		u := expect(t, ts.do(http.MethodPost, "/Users", userBody("rot"+string(rune('a'+i))), withToken(secret)), http.StatusCreated)
		ev := ts.auditEvents(t, store.AuditQuery{TargetID: str(u.JSON, "id")})
		if ev[0].Actor != (audit.Actor{Kind: "token", Name: "ci"}) {
			t.Errorf("actor with secret %d: %+v", i, ev[0].Actor)
		}
	}
	l := expect(t, ts.do(http.MethodGet, "/api/v1/tokens", nil, withToken(ts.Admin)), http.StatusOK)
	if strings.Contains(string(l.Body), "~previous") || !strings.Contains(string(l.Body), "previousSecretExpires") {
		t.Errorf("token list during the grace period: %s", l.Body)
	}
	c.Advance(2 * time.Hour)
	checkSCIMError(t, ts.do(http.MethodGet, "/Users", nil, withToken(old)), http.StatusUnauthorized, "")
	expect(t, ts.do(http.MethodGet, "/Users", nil, withToken(fresh)), http.StatusOK)
	if err := ts.Server.SweepTokens(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := ts.Store.Read().Token("ci~previous"); ok {
		t.Error("the expired previous secret is still stored")
	}
	var types []string
	for _, e := range ts.auditEvents(t, store.AuditQuery{TargetID: "ci"}) {
		types = append(types, e.Type)
	}
	if got := strings.Join(types, ","); got != "token.created,token.rotated,token.expired" {
		t.Errorf("token events %s", got)
	}
	// A rotation with no grace ends the old secret at once.
	expect(t, ts.do(http.MethodPost, "/api/v1/tokens/ci/rotate", map[string]any{"grace": "0s"}, withToken(ts.Admin)), http.StatusOK)
	checkSCIMError(t, ts.do(http.MethodGet, "/Users", nil, withToken(fresh)), http.StatusUnauthorized, "")
	// Revoking a token revokes its previous secret too.
	expect(t, ts.do(http.MethodPost, "/api/v1/tokens/okta/rotate", nil, withToken(ts.Admin)), http.StatusOK)
	expect(t, ts.do(http.MethodDelete, "/api/v1/tokens/okta", nil, withToken(ts.Admin)), http.StatusNoContent)
	checkSCIMError(t, ts.do(http.MethodGet, "/Users", nil, withToken(ts.Token)), http.StatusUnauthorized, "")
}

func TestTokenLastUsedIsStored(t *testing.T) {
	ts := newTestServer(t)
	expect(t, ts.do(http.MethodGet, "/Users", nil), http.StatusOK)
	l := expect(t, ts.do(http.MethodGet, "/api/v1/tokens", nil, withToken(ts.Admin)), http.StatusOK)
	if !strings.Contains(string(l.Body), `"lastUsed":"`) {
		t.Fatalf("token list has no last-used time: %s", l.Body)
	}
	if err := ts.Server.SweepTokens(t.Context()); err != nil {
		t.Fatal(err)
	}
	tok, _ := ts.Store.Read().Token(scimTokenName)
	if tok.LastUsed.IsZero() {
		t.Fatal("last-used time not stored by the sweep")
	}
}
