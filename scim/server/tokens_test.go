package server_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/server"
	"github.com/scimd/scimd/scim/store"
)

func TestTokenAdminAPI(t *testing.T) {
	ts := newTestServer(t)
	admin := withToken(ts.Admin)

	// Create: the secret is returned once.
	r := expect(t, ts.do(http.MethodPost, "/api/v1/tokens", map[string]any{"name": "entra"}, admin), http.StatusCreated)
	secret := str(r.JSON, "token")
	if str(r.JSON, "name") != "entra" || !strings.HasPrefix(secret, "scimd_") {
		t.Fatalf("create response %s", r.Body)
	}
	tok, ok := ts.Store.Read().Token("entra")
	if !ok || tok.Digest != server.Digest(secret) || !slices.Equal(tok.ScopeList(), []string{server.ScopeSCIM}) {
		t.Fatalf("stored token %+v", tok)
	}
	if strings.Contains(tok.Digest, secret) {
		t.Fatal("the store keeps the secret")
	}

	// The new token works on SCIM and is the audit actor.
	u := expect(t, ts.do(http.MethodPost, "/Users", userBody("via-entra"), withToken(secret)), http.StatusCreated)
	ev := ts.auditEvents(t, store.AuditQuery{TargetID: str(u.JSON, "id")})
	if len(ev) != 1 || ev[0].Actor != (audit.Actor{Kind: "token", Name: "entra"}) {
		t.Fatalf("audit events %+v", ev)
	}

	// List: names only, never secrets or digests.
	l := expect(t, ts.do(http.MethodGet, "/api/v1/tokens", nil, admin), http.StatusOK)
	body := string(l.Body)
	for _, leak := range []string{secret, tok.Digest, server.Digest(ts.Token), ts.Token, ts.Admin, server.Digest(ts.Admin), "digest"} {
		if strings.Contains(body, leak) {
			t.Errorf("token list leaks %q: %s", leak, body)
		}
	}
	if !strings.Contains(body, `"entra"`) || !strings.Contains(body, `"okta"`) {
		t.Errorf("token list %s lacks a token", body)
	}

	errorsTests := []struct {
		name, method, path string
		body               any
		opts               []reqOpt
		status             int
	}{
		{"duplicate name", http.MethodPost, "/api/v1/tokens", map[string]any{"name": "entra"}, []reqOpt{admin}, http.StatusConflict},
		{"name of the admin token", http.MethodPost, "/api/v1/tokens", map[string]any{"name": "admin"}, []reqOpt{admin}, http.StatusConflict},
		{"invalid name", http.MethodPost, "/api/v1/tokens", map[string]any{"name": "no spaces"}, []reqOpt{admin}, http.StatusBadRequest},
		{"empty name", http.MethodPost, "/api/v1/tokens", map[string]any{}, []reqOpt{admin}, http.StatusBadRequest},
		{"invalid JSON", http.MethodPost, "/api/v1/tokens", `{"name":`, []reqOpt{admin}, http.StatusBadRequest},
		{"no token", http.MethodGet, "/api/v1/tokens", nil, []reqOpt{withToken("")}, http.StatusUnauthorized},
		{"revoke unknown", http.MethodDelete, "/api/v1/tokens/nope", nil, []reqOpt{admin}, http.StatusNotFound},
		{"revoke the admin token", http.MethodDelete, "/api/v1/tokens/admin", nil, []reqOpt{admin}, http.StatusConflict},
		{"unknown field", http.MethodPost, "/api/v1/tokens", map[string]any{"name": "x", "role": "admin"}, []reqOpt{admin}, http.StatusBadRequest},
		{"unknown scope", http.MethodPost, "/api/v1/tokens", map[string]any{"name": "x", "scopes": []string{"root"}}, []reqOpt{admin}, http.StatusBadRequest},
		{"no scopes", http.MethodPost, "/api/v1/tokens", map[string]any{"name": "x", "scopes": []string{}}, []reqOpt{admin}, http.StatusBadRequest},
		{"bad expiresIn", http.MethodPost, "/api/v1/tokens", map[string]any{"name": "x", "expiresIn": "30 days"}, []reqOpt{admin}, http.StatusBadRequest},
		{"negative expiresIn", http.MethodPost, "/api/v1/tokens", map[string]any{"name": "x", "expiresIn": "-1h"}, []reqOpt{admin}, http.StatusBadRequest},
		{"rotate unknown", http.MethodPost, "/api/v1/tokens/nope/rotate", nil, []reqOpt{admin}, http.StatusNotFound},
		{"rotate with a bad grace", http.MethodPost, "/api/v1/tokens/entra/rotate", map[string]any{"grace": "forever"}, []reqOpt{admin}, http.StatusBadRequest},
		{"rotate with an unknown field", http.MethodPost, "/api/v1/tokens/entra/rotate", map[string]any{"graceful": "1h"}, []reqOpt{admin}, http.StatusBadRequest},
	}
	for _, tc := range errorsTests {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.commit()
			r := ts.do(tc.method, tc.path, tc.body, tc.opts...)
			checkSCIMError(t, r, tc.status, "*")
			ts.unchanged(t, before)
		})
	}

	// Revoke: 204, then the token gets 401 and the others still work.
	expect(t, ts.do(http.MethodDelete, "/api/v1/tokens/entra", nil, admin), http.StatusNoContent)
	checkSCIMError(t, ts.do(http.MethodGet, "/Users", nil, withToken(secret)), http.StatusUnauthorized, "")
	checkSCIMError(t, ts.do(http.MethodPost, "/Users", userBody("after-revoke"), withToken(secret)), http.StatusUnauthorized, "")
	expect(t, ts.do(http.MethodGet, "/Users", nil), http.StatusOK)
	if _, ok := ts.Store.Read().Token("entra"); ok {
		t.Error("revoked token still stored")
	}
	// The name can be used again, with a new secret.
	r = expect(t, ts.do(http.MethodPost, "/api/v1/tokens", map[string]any{"name": "entra"}, admin), http.StatusCreated)
	if str(r.JSON, "token") == secret {
		t.Error("re-created token has the old secret")
	}
	checkSCIMError(t, ts.do(http.MethodGet, "/Users", nil, withToken(secret)), http.StatusUnauthorized, "")

	// Token events are audited with the admin as actor.
	ev = ts.auditEvents(t, store.AuditQuery{Types: []string{"token"}, TargetID: "entra"})
	var types []string
	for _, e := range ev {
		types = append(types, e.Type)
		if e.Actor.Name != "admin" || e.RequestID == "" {
			t.Errorf("token event %s: actor %+v request id %q", e.Type, e.Actor, e.RequestID)
		}
	}
	if strings.Join(types, ",") != "token.created,token.revoked,token.created" {
		t.Errorf("token events %v", types)
	}
}

func TestEnsureAdminToken(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	// The same secret again changes nothing.
	before := ts.commit()
	if got, err := server.EnsureAdminToken(ctx, ts.Store, ts.Admin); err != nil || got != "" {
		t.Fatalf("EnsureAdminToken = %q, %v", got, err)
	}
	ts.unchanged(t, before)
	// An empty secret with an existing admin token: nothing generated.
	if got, err := server.EnsureAdminToken(ctx, ts.Store, ""); err != nil || got != "" {
		t.Fatalf("EnsureAdminToken(\"\") = %q, %v", got, err)
	}
	// A new secret replaces the old one.
	next, _ := server.NewSecret()
	if _, err := server.EnsureAdminToken(ctx, ts.Store, next); err != nil {
		t.Fatal(err)
	}
	checkSCIMError(t, ts.do(http.MethodGet, "/api/v1/tokens", nil, withToken(ts.Admin)), http.StatusUnauthorized, "")
	expect(t, ts.do(http.MethodGet, "/api/v1/tokens", nil, withToken(next)), http.StatusOK)
}

func TestEnsureAdminTokenGenerates(t *testing.T) {
	ts := newInProcessServer(t)
	// Remove the admin token the helper made, then let EnsureAdminToken make one.
	if err := ts.Store.Write(t.Context(), func(w *store.WriteTxn) error { return w.DeleteToken("admin") }); err != nil {
		t.Fatal(err)
	}
	secret, err := server.EnsureAdminToken(t.Context(), ts.Store, "")
	if err != nil || !strings.HasPrefix(secret, "scimd_") {
		t.Fatalf("EnsureAdminToken = %q, %v", secret, err)
	}
	expect(t, ts.serve(http.MethodGet, "/api/v1/tokens", nil, withToken(secret)), http.StatusOK)
}
