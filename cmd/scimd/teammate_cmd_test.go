package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestTeammateCommands(t *testing.T) {
	s := startLive(t)
	dan := s.createUser("dan@example.com")
	s.createUser("erin@example.com")
	s.createGroup("Intercom Support", dan)
	ctx := context.Background()

	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"show by userName", []string{"teammate", "show", "dan@example.com"}, 0, []string{
			"dan@example.com (id " + dan + ")", "role:      support", "access:    yes", "groups:    Intercom Support",
			`why:       member of group "Intercom Support" → support`,
			"History (oldest first):", "new → no access", "no access → support",
			"cause: identity provider (okta): added to group Intercom Support"}},
		{"show by id", []string{"teammate", "show", dan}, 0, []string{"dan@example.com (id " + dan + ")"}},
		{"show unknown", []string{"teammate", "show", "nobody@example.com"}, 1, nil},
		{"list", []string{"teammate", "list"}, 0, []string{"USERNAME", "dan@example.com   support  yes", "erin@example.com  none     no"}},
		{"list by role", []string{"teammate", "list", "--role", "support"}, 0, []string{"dan@example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.runCLI(ctx, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
	if r := s.runCLI(ctx, "teammate", "list", "--role", "support"); strings.Contains(r.stdout, "erin@") {
		t.Errorf("role filter kept erin:\n%s", r.stdout)
	}

	r := s.runCLI(ctx, "teammate", "show", "dan@example.com", "--format", "json")
	var doc historyDoc
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.Teammate == nil || len(doc.History) != 2 {
		t.Fatalf("json: %v %+v", err, doc)
	}

	// A teammate deleted in the identity provider keeps its history.
	req, _ := http.NewRequest(http.MethodDelete, s.srv.URL+"/scim/v2/Users/"+dan, nil)
	req.Header.Set("Authorization", "Bearer "+s.scimToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete dan: %v %v", err, resp)
	}
	resp.Body.Close()
	s.idle()
	r = s.runCLI(ctx, "teammate", "show", dan)
	if r.code != 0 || !strings.Contains(r.stdout, "no longer a teammate") || !strings.Contains(r.stdout, "support → deleted") {
		t.Fatalf("deleted teammate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
