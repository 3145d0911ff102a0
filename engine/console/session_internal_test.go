package console

import (
	"testing"
	"time"

	"github.com/scimd/scimd/scim/store"
)

func TestSessionsExpireAndStayBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	s := newSessions(time.Hour, func() time.Time { return now })
	a := s.create("digest-a", grant{Name: "a", Read: true})
	if _, ok := s.get(a.id); !ok {
		t.Fatal("a new session is not found")
	}
	now = now.Add(59 * time.Minute)
	if _, ok := s.get(a.id); !ok {
		t.Fatal("a session ended before its expiry")
	}
	now = now.Add(time.Minute)
	if _, ok := s.get(a.id); ok {
		t.Fatal("a session outlived its expiry")
	}
	for range maxSessions + 10 {
		s.create("d", grant{Name: "b", Read: true})
	}
	if len(s.m) > maxSessions {
		t.Fatalf("%d sessions held, at most %d allowed", len(s.m), maxSessions)
	}
}

func TestGrantOfFollowsScopes(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name          string
		tok           store.Token
		read, approve bool
		kind          string
	}{
		{"legacy admin token", store.Token{Name: "admin", Role: "admin"}, true, true, "admin"},
		{"read", store.Token{Name: "r", Scopes: []string{"read"}}, true, false, "token"},
		{"read and approve", store.Token{Name: "ra", Scopes: []string{"read", "approve"}}, true, true, "token"},
		{"approve alone", store.Token{Name: "a", Scopes: []string{"approve"}}, false, true, "token"},
		{"scim", store.Token{Name: "okta", Scopes: []string{"scim"}}, false, false, "token"},
		{"plan", store.Token{Name: "ci", Scopes: []string{"plan"}}, false, false, "token"},
		{"expired admin", store.Token{Name: "old", Scopes: []string{"admin"}, Expires: now.Add(-time.Second)}, false, true, "admin"},
		{"rotated secret", store.Token{Name: "r#prev", RotatedFrom: "r", Scopes: []string{"read"}, Expires: now.Add(time.Hour)}, true, false, "token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, ok := grantOf(&tc.tok, now)
			if ok != tc.read || g.Approve != tc.approve || g.Kind != tc.kind {
				t.Fatalf("grantOf = %+v, %v; want sign-in %v, approve %v, kind %s", g, ok, tc.read, tc.approve, tc.kind)
			}
			if tc.tok.RotatedFrom != "" && g.Name != tc.tok.RotatedFrom {
				t.Fatalf("a rotated secret acts as %q, want %q", g.Name, tc.tok.RotatedFrom)
			}
		})
	}
}
