package main

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestChangesCommands(t *testing.T) {
	s := startLive(t)
	var ids []string
	for i := range 12 {
		ids = append(ids, s.createUser(fmt.Sprintf("member%02d@example.com", i)))
	}
	support := s.createGroup("Intercom Support", ids...)
	var ops []any
	for _, id := range ids[:11] {
		ops = append(ops, map[string]any{"value": id})
	}
	s.request(http.MethodPatch, "/scim/v2/Groups/"+support, s.scimToken, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "remove", "path": "members", "value": ops}},
	}, nil)
	s.idle()
	ctx := context.Background()

	r := s.runCLI(ctx, "changes", "list")
	m := regexp.MustCompile(`(?m)^([0-9a-f]{16})\s+pending\s+.*scim by okta\s+11\s+11 of 12`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("changes list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	id := m[1]
	r = s.runCLI(ctx, "changes", "show", id)
	if r.code != 0 || strings.Count(r.stdout, "  - member") != 11 || !strings.Contains(r.stdout, "member00@example.com: support → no access") {
		t.Fatalf("changes show:\n%s%s", r.stdout, r.stderr)
	}
	if got := s.states()["member00@example.com"]; got != "support/true" {
		t.Fatalf("held teammate changed before approval: %s", got)
	}

	if r := s.runCLI(ctx, "changes", "approve", id); r.code != 0 || !strings.Contains(r.stdout, "approved change "+id) {
		t.Fatalf("approve: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	s.idle()
	if got := s.states()["member00@example.com"]; got != "none/false" {
		t.Fatalf("approved change not applied: %s", got)
	}
	if r := s.runCLI(ctx, "changes", "reject", id); r.code != 1 || !strings.Contains(r.stderr, "409") {
		t.Fatalf("rejecting a decided change: exit %d %s", r.code, r.stderr)
	}
	if r := s.runCLI(ctx, "changes", "list", "--state", "all"); !strings.Contains(r.stdout, "approved") || !strings.Contains(r.stdout, "admin") {
		t.Fatalf("changes list --state all:\n%s", r.stdout)
	}
}
