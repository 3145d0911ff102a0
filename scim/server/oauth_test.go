package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/server"
	"github.com/scimd/scimd/scim/store"
)

// tokenRequest posts a form to /oauth/token, with HTTP Basic when user is
// not empty.
func tokenRequest(t *testing.T, ts *testServer, form url.Values, user, pass string, header map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	return resp.StatusCode, resp.Header, body
}

func createClient(t *testing.T, ts *testServer, name string, scopes ...string) (id, secret string) {
	t.Helper()
	r := expect(t, ts.do(http.MethodPost, "/api/v1/clients", map[string]any{"name": name, "scopes": scopes}, withToken(ts.Admin)), http.StatusCreated)
	return str(r.JSON, "clientId"), str(r.JSON, "clientSecret")
}

func TestOAuthClientCredentials(t *testing.T) {
	c := &clock{now: time.Now()}
	ts := newTestServer(t, func(o *server.Options) { o.Now = c.Now; o.OAuthTokenTTL = 10 * time.Minute })
	id, secret := createClient(t, ts, "entra", "scim")
	_, readSecret := createClient(t, ts, "reader", "read", "scim")

	// Both client authentication methods work and give a Bearer token.
	for name, req := range map[string]struct {
		form       url.Values
		user, pass string
	}{
		"basic": {url.Values{"grant_type": {"client_credentials"}}, id, secret},
		"form":  {url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}, "", ""},
	} {
		status, h, body := tokenRequest(t, ts, req.form, req.user, req.pass, nil)
		if status != http.StatusOK || body["token_type"] != "Bearer" || body["expires_in"] != float64(600) || body["scope"] != "scim" {
			t.Fatalf("%s: %d %v", name, status, body)
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: token answer is cacheable: %v", name, h)
		}
		access := body["access_token"].(string)
		u := expect(t, ts.do(http.MethodPost, "/Users", userBody("oauth-"+name), withToken(access)), http.StatusCreated)
		ev := ts.auditEvents(t, store.AuditQuery{TargetID: str(u.JSON, "id")})
		if ev[0].Actor != (audit.Actor{Kind: "client", Name: "entra"}) {
			t.Errorf("%s: actor %+v", name, ev[0].Actor)
		}
		checkSCIMError(t, ts.do(http.MethodGet, "/api/v1/tokens", nil, withToken(access)), http.StatusForbidden, "")
	}

	// Every RFC 6749 §5.2 error a client credentials request can get.
	cc := url.Values{"grant_type": {"client_credentials"}}
	errs := []struct {
		name       string
		form       url.Values
		user, pass string
		header     map[string]string
		status     int
		code       string
	}{
		{"no grant_type", url.Values{}, id, secret, nil, 400, "invalid_request"},
		{"grant_type twice", url.Values{"grant_type": {"client_credentials", "client_credentials"}}, id, secret, nil, 400, "invalid_request"},
		{"two authentication methods", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}, id, secret, nil, 400, "invalid_request"},
		{"not a form", cc, id, secret, map[string]string{"Content-Type": "application/json"}, 400, "invalid_request"},
		{"no client authentication", cc, "", "", nil, 401, "invalid_client"},
		{"wrong secret", cc, id, "scimd_wrong", nil, 401, "invalid_client"},
		{"unknown client", cc, "client_nope", secret, nil, 401, "invalid_client"},
		{"another client's secret", cc, id, readSecret, nil, 401, "invalid_client"},
		{"password grant", url.Values{"grant_type": {"password"}, "username": {"a"}, "password": {"b"}}, id, secret, nil, 400, "unsupported_grant_type"},
		{"authorization code grant", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, id, secret, nil, 400, "unsupported_grant_type"},
		{"scope not granted", url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}, id, secret, nil, 400, "invalid_scope"},
		{"unknown scope", url.Values{"grant_type": {"client_credentials"}, "scope": {"scim everything"}}, id, secret, nil, 400, "invalid_scope"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := tokenRequest(t, ts, tc.form, tc.user, tc.pass, tc.header)
			if status != tc.status || body["error"] != tc.code || body["error_description"] == "" {
				t.Fatalf("%d %v, want %d %s", status, body, tc.status, tc.code)
			}
			if status == 401 && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("401 without WWW-Authenticate: %v", h)
			}
		})
	}

	// A narrower scope than the client's is granted.
	_, _, body := tokenRequest(t, ts, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"},
		"client_id": {clientIDByName(t, ts, "reader")}, "client_secret": {readSecret}}, "", "", nil)
	if body["scope"] != "read" {
		t.Fatalf("narrowed scope: %v", body)
	}
	checkSCIMError(t, ts.do(http.MethodGet, "/Users", nil, withToken(body["access_token"].(string))), http.StatusForbidden, "")

	// Tokens expire after the TTL.
	_, _, body = tokenRequest(t, ts, cc, id, secret, nil)
	access := body["access_token"].(string)
	c.Advance(10 * time.Minute)
	checkSCIMError(t, ts.do(http.MethodGet, "/Users", nil, withToken(access)), http.StatusUnauthorized, "")
	if err := ts.Server.SweepTokens(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, tok := range ts.Store.Read().Tokens() {
		if tok.Client != "" && !c.Now().Before(tok.Expires) {
			t.Errorf("expired access token %s still stored", tok.Name)
		}
	}
	for _, tok := range ts.Store.Read().Tokens() {
		if strings.Contains(tok.Digest, access) {
			t.Fatal("an access token is stored in clear")
		}
	}
}

func clientIDByName(t *testing.T, ts *testServer, name string) string {
	t.Helper()
	r := expect(t, ts.do(http.MethodGet, "/api/v1/clients", nil, withToken(ts.Admin)), http.StatusOK)
	for _, c := range r.JSON["clients"].([]any) {
		if m := c.(map[string]any); m["name"] == name {
			return m["clientId"].(string)
		}
	}
	t.Fatalf("no client %s", name)
	return ""
}

func TestOAuthClientSecretsAndRevocation(t *testing.T) {
	ts := newTestServer(t)
	id, first := createClient(t, ts, "okta", "scim")
	admin := withToken(ts.Admin)
	r := expect(t, ts.do(http.MethodPost, "/api/v1/clients/"+id+"/secrets", nil, admin), http.StatusCreated)
	second, secondID := str(r.JSON, "clientSecret"), str(r.JSON, "secretId")
	// Two active secrets at most.
	checkSCIMError(t, ts.do(http.MethodPost, "/api/v1/clients/"+id+"/secrets", nil, admin), http.StatusConflict, "")
	cc := url.Values{"grant_type": {"client_credentials"}}
	for _, s := range []string{first, second} {
		if status, _, body := tokenRequest(t, ts, cc, id, s, nil); status != http.StatusOK {
			t.Fatalf("secret: %d %v", status, body)
		}
	}
	list := expect(t, ts.do(http.MethodGet, "/api/v1/clients", nil, admin), http.StatusOK)
	for _, leak := range []string{first, second, server.Digest(first), "digest"} {
		if strings.Contains(string(list.Body), leak) {
			t.Fatalf("client list leaks %q", leak)
		}
	}
	// Removing the first secret leaves the second working.
	var firstID string
	for _, c := range list.JSON["clients"].([]any) {
		for _, s := range c.(map[string]any)["secrets"].([]any) {
			if sid := s.(map[string]any)["id"].(string); sid != secondID {
				firstID = sid
			}
		}
	}
	expect(t, ts.do(http.MethodDelete, "/api/v1/clients/"+id+"/secrets/"+firstID, nil, admin), http.StatusNoContent)
	if status, _, _ := tokenRequest(t, ts, cc, id, first, nil); status != http.StatusUnauthorized {
		t.Fatalf("removed secret still works: %d", status)
	}
	checkSCIMError(t, ts.do(http.MethodDelete, "/api/v1/clients/"+id+"/secrets/"+secondID, nil, admin), http.StatusConflict, "")

	// Revoking the client ends its tokens at once, mid-session.
	_, _, body := tokenRequest(t, ts, cc, id, second, nil)
	access := body["access_token"].(string)
	expect(t, ts.do(http.MethodGet, "/Users", nil, withToken(access)), http.StatusOK)
	expect(t, ts.do(http.MethodDelete, "/api/v1/clients/"+id, nil, admin), http.StatusNoContent)
	checkSCIMError(t, ts.do(http.MethodGet, "/Users", nil, withToken(access)), http.StatusUnauthorized, "")
	if status, _, _ := tokenRequest(t, ts, cc, id, second, nil); status != http.StatusUnauthorized {
		t.Fatalf("revoked client got a token: %d", status)
	}
	var types []string
	for _, e := range ts.auditEvents(t, store.AuditQuery{TargetID: id}) {
		types = append(types, e.Type)
	}
	if got := strings.Join(types, ","); got != "client.created,client.secret.added,client.secret.removed,client.revoked" {
		t.Errorf("client events %s", got)
	}
	// Unknown fields are refused.
	checkSCIMError(t, ts.do(http.MethodPost, "/api/v1/clients", map[string]any{"name": "x", "secret": "mine"}, admin), http.StatusBadRequest, "*")
}
