package main

import (
	"context"
	"strings"
	"testing"
)

func TestTokenCommands(t *testing.T) {
	s := startLive(t)
	ctx := context.Background()
	r := s.runCLI(ctx, "token", "create", "--name", "ci", "--scope", "plan", "--expires", "720h")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "scimd_") {
		t.Fatalf("token create: %d %s %s", r.code, r.stdout, r.stderr)
	}
	ci := strings.TrimSpace(r.stdout)
	r = s.runCLI(ctx, "token", "create", "--name", "viewer", "--scope", "read,approve")
	if r.code != 0 {
		t.Fatalf("token create with two scopes: %d %s", r.code, r.stderr)
	}
	if r = s.runCLI(ctx, "token", "create", "--name", "bad", "--scope", "root"); r.code == 0 || !strings.Contains(r.stderr, `unknown scope "root"`) {
		t.Fatalf("token create with an unknown scope: %d %s", r.code, r.stderr)
	}
	if r = s.runCLI(ctx, "token", "create", "--name", "entra", "--profile", "entra"); r.code != 0 || !strings.HasPrefix(r.stdout, "scimd_") {
		t.Fatalf("token create --profile entra: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r = s.runCLI(ctx, "token", "create", "--name", "bad", "--profile", "netscape"); r.code == 0 || !strings.Contains(r.stderr, `unknown profile "netscape"`) {
		t.Fatalf("token create with an unknown profile: %d %s", r.code, r.stderr)
	}

	r = s.runCLI(ctx, "token", "list")
	for _, want := range []string{"NAME", "SCOPES", "EXPIRES", "LAST USED", "ci ", "plan", "viewer", "read,approve", "okta", "scim", "admin"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("token list lacks %q:\n%s", want, r.stdout)
		}
	}

	// The plan token, from SCIMD_TOKEN, may not read teammates: the error
	// names the server and the scope needed.
	t.Setenv("SCIMD_TOKEN", ci)
	t.Setenv("SCIMD_ADMIN_TOKEN", liveAdminToken)
	r = runCLI(ctx, "teammate", "list", "--server", s.srv.URL)
	if r.code == 0 || !strings.Contains(r.stderr, s.srv.URL) || !strings.Contains(r.stderr, "403") || !strings.Contains(r.stderr, `"read" scope`) {
		t.Fatalf("teammate list with a plan token: %d\n%s", r.code, r.stderr)
	}

	r = s.runCLI(ctx, "token", "rotate", "ci", "--grace", "1h")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "scimd_") || strings.TrimSpace(r.stdout) == ci || !strings.Contains(r.stderr, "works until") {
		t.Fatalf("token rotate: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r = s.runCLI(ctx, "token", "revoke", "ci"); r.code != 0 {
		t.Fatalf("token revoke: %s", r.stderr)
	}
	// A revoked token: 401, naming the server.
	r = runCLI(ctx, "token", "list", "--server", s.srv.URL)
	if r.code == 0 || !strings.Contains(r.stderr, s.srv.URL) || !strings.Contains(r.stderr, "401") {
		t.Fatalf("token list with a revoked SCIMD_TOKEN: %d\n%s", r.code, r.stderr)
	}
	// SCIMD_ADMIN_TOKEN is still accepted when SCIMD_TOKEN is unset.
	t.Setenv("SCIMD_TOKEN", "")
	if r = runCLI(ctx, "token", "list", "--server", s.srv.URL); r.code != 0 {
		t.Fatalf("token list with SCIMD_ADMIN_TOKEN: %d %s", r.code, r.stderr)
	}
	// A server that does not answer is named.
	r = runCLI(ctx, "token", "list", "--server", "http://127.0.0.1:1")
	if r.code == 0 || !strings.Contains(r.stderr, "cannot reach scimd at http://127.0.0.1:1") {
		t.Fatalf("token list against a closed port: %d\n%s", r.code, r.stderr)
	}
}
