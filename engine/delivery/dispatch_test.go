package delivery

import (
	"github.com/scimd/scimd/engine/egress"

	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestBackoffGrowsWithJitterWithinBounds(t *testing.T) {
	cfg := Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}.withDefaults()
	for n, full := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond,
		4: 800 * time.Millisecond, 5: time.Second, 40: time.Second} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := backoff(cfg, n)
			if d < full/2 || d > full {
				t.Fatalf("backoff after %d failures = %s, want within [%s, %s]", n, d, full/2, full)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Fatalf("backoff after %d failures took only %d values: no jitter", n, len(seen))
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		" 120 ":                         2 * time.Minute,
		"soon":                          0,
		"-5":                            0,
		"Sun, 01 Mar 2026 12:00:30 GMT": 30 * time.Second,
		"Sun, 01 Mar 2026 11:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

func TestEventFilters(t *testing.T) {
	for _, c := range []struct {
		filters, types []string
		want           bool
	}{
		{nil, []string{"teammate.created"}, true},
		{[]string{"teammate"}, []string{"teammate.deleted"}, true},
		{[]string{"teammate.access"}, []string{"teammate.access.removed", "teammate.role.changed"}, true},
		{[]string{"teammate.role.changed"}, []string{"teammate.access.granted", "teammate.role.changed"}, true},
		{[]string{"teammate.role"}, []string{"teammate.created"}, false},
		{[]string{"teammate.acc"}, []string{"teammate.access.granted"}, false},
	} {
		if got := wants(c.filters, c.types); got != c.want {
			t.Errorf("wants(%v, %v) = %v, want %v", c.filters, c.types, got, c.want)
		}
	}
	for _, f := range []string{"teammate", "teammate.role", "teammate.access.removed"} {
		if !knownFilter(f) {
			t.Errorf("%q refused", f)
		}
	}
	for _, f := range []string{"", "team", "teammate.", "scim.user.created", "teammate.role.unknown"} {
		if knownFilter(f) {
			t.Errorf("%q accepted", f)
		}
	}
}

func TestRegistrationValidation(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	after := uint64(3)
	good := Registration{URL: "https://app.example.com/scimd", Secret: secret, Events: []string{"teammate.role", " teammate.created", "teammate.role"}, After: &after}
	events, err := good.validate(10)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(events, ",") != "teammate.created,teammate.role" {
		t.Fatalf("normalised events = %v", events)
	}
	for _, bad := range []Registration{
		{URL: "mailto:ops@example.com", Secret: secret},
		{URL: "https:app.example.com", Secret: secret},
		{URL: "file:///etc/passwd", Secret: secret},
		{URL: "http://[::1", Secret: secret},
		{URL: "https://" + strings.Repeat("a", 3000) + ".example.com", Secret: secret},
		{URL: "https://app.example.com", Secret: secret, After: func() *uint64 { n := uint64(11); return &n }()},
	} {
		if _, err := bad.validate(10); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", bad, err)
		}
	}
}

func TestDefaultClientDoesNotFollowRedirects(t *testing.T) {
	c := newClient(time.Second, &egress.Policy{})
	if c.CheckRedirect(nil, nil) != http.ErrUseLastResponse {
		t.Fatal("the webhook client follows redirects")
	}
}
