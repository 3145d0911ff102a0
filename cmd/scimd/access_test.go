package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestTokenExpiryAndRotationThroughTheBinary creates a token that expires
// in two seconds and rotates another with a two-second grace period, on
// the real binary and its wall clock.
func TestTokenExpiryAndRotationThroughTheBinary(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	ctx := context.Background()
	create := func(body map[string]any) string {
		status, raw, err := call(ctx, http.DefaultClient, http.MethodPost, d.base+"/api/v1/tokens", d.admin, body)
		if err != nil || status != http.StatusCreated {
			t.Fatalf("create token %v: %d %s %v", body, status, raw, err)
		}
		var out struct{ Token string }
		_ = json.Unmarshal(raw, &out)
		return out.Token
	}
	short := create(map[string]any{"name": "short", "scopes": []string{"read"}, "expiresIn": "2s"})
	old := create(map[string]any{"name": "ci", "scopes": []string{"read"}})
	status, raw, err := call(ctx, http.DefaultClient, http.MethodPost, d.base+"/api/v1/tokens/ci/rotate", d.admin, map[string]any{"grace": "2s"})
	if err != nil || status != http.StatusOK {
		t.Fatalf("rotate: %d %s %v", status, raw, err)
	}
	var rotated struct{ Token string }
	_ = json.Unmarshal(raw, &rotated)
	get := func(tok string) (int, string) {
		status, raw, err := call(ctx, http.DefaultClient, http.MethodGet, d.base+"/api/v1/groups", tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		return status, string(raw)
	}
	for name, tok := range map[string]string{"short": short, "old ci": old, "new ci": rotated.Token} {
		if status, body := get(tok); status != http.StatusOK {
			t.Fatalf("%s before expiry: %d %s", name, status, body)
		}
	}
	time.Sleep(2100 * time.Millisecond)
	for name, tok := range map[string]string{"short": short, "old ci": old} {
		if status, body := get(tok); status != http.StatusUnauthorized || !strings.Contains(body, "expired") {
			t.Fatalf("%s after expiry: %d %s", name, status, body)
		}
	}
	if status, body := get(rotated.Token); status != http.StatusOK {
		t.Fatalf("new ci secret after the grace period: %d %s", status, body)
	}
}
