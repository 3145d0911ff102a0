package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestOAuthThroughTheBinary: a client made with scimd client create gets
// an access token from POST /oauth/token on the real server, writes SCIM
// with it, and loses it the moment the client is revoked.
func TestOAuthThroughTheBinary(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--oauth-token-ttl", "30m")
	ctx := context.Background()
	t.Setenv("SCIMD_TOKEN", d.admin)
	r := runCLI(ctx, "client", "create", "--name", "entra", "--scope", "scim", "--server", d.base)
	id := regexp.MustCompile(`client_id:\s+(\S+)`).FindStringSubmatch(r.stdout)
	secret := regexp.MustCompile(`client_secret:\s+(\S+)`).FindStringSubmatch(r.stdout)
	if r.code != 0 || id == nil || secret == nil {
		t.Fatalf("client create: %d %s %s", r.code, r.stdout, r.stderr)
	}
	token := func() (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, d.base+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id[1], secret[1])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		return resp.StatusCode, out
	}
	status, out := token()
	if status != http.StatusOK || out["expires_in"] != float64(1800) || out["token_type"] != "Bearer" {
		t.Fatalf("token: %d %v", status, out)
	}
	access := out["access_token"].(string)
	user := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "oauth@example.com"}
	if status, body, err := call(ctx, http.DefaultClient, http.MethodPost, d.base+"/scim/v2/Users", access, user); err != nil || status != http.StatusCreated {
		t.Fatalf("SCIM write with the access token: %d %s %v", status, body, err)
	}
	if r := runCLI(ctx, "client", "list", "--server", d.base); r.code != 0 || !strings.Contains(r.stdout, id[1]) || strings.Contains(r.stdout, secret[1]) {
		t.Fatalf("client list: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(ctx, "client", "rotate", id[1], "--server", d.base); r.code != 0 || !strings.Contains(r.stdout, "client_secret:") {
		t.Fatalf("client rotate: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(ctx, "client", "revoke", id[1], "--server", d.base); r.code != 0 {
		t.Fatalf("client revoke: %d %s", r.code, r.stderr)
	}
	if status, body, _ := call(ctx, http.DefaultClient, http.MethodGet, d.base+"/scim/v2/Users", access, nil); status != http.StatusUnauthorized {
		t.Fatalf("access token of a revoked client: %d %s", status, body)
	}
	if status, out := token(); status != http.StatusUnauthorized || out["error"] != "invalid_client" {
		t.Fatalf("token for a revoked client: %d %v", status, out)
	}
}
