package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestWebhookEgressRefusedAtRegistration registers webhooks at addresses
// the default egress policy denies, in the spellings that hide them, and
// at a name resolving to an address a --webhook-deny rule covers: each is
// refused with 400 naming the rule, and nothing is stored.
func TestWebhookEgressRefusedAtRegistration(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	d := startDaemon(t, t.TempDir(), "--webhook-deny", "127.0.0.0/8,::1")
	c := newBinClient(t, d)
	secret := "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
	for _, tc := range []struct{ url, want string }{
		{"http://169.254.169.254/latest/meta-data/", "link-local"},
		{"http://2852039166/", "not an address in standard form"},
		{"http://0xA9FEA9FE/", "not an address in standard form"},
		{"http://[::ffff:169.254.169.254]/", "link-local"},
		{"http://[fd00:ec2::254]/", "metadata"},
		{"http://0.0.0.0:8080/", "unspecified"},
		{"http://[::]:8080/", "unspecified"},
		{"http://127.0.0.1:9/", "--webhook-deny 127.0.0.0/8"},
		{"http://localhost:9/hook", "--webhook-deny"}, // a name, resolved at registration
	} {
		t.Run(tc.url, func(t *testing.T) {
			status, body := c.do(http.MethodPost, "/api/v1/webhooks", d.admin, map[string]any{"url": tc.url, "secret": secret})
			if status != http.StatusBadRequest || !strings.Contains(body, "egress policy") || !strings.Contains(body, tc.want) {
				t.Fatalf("register %s = %d %s, want 400 naming the egress rule %q", tc.url, status, body, tc.want)
			}
		})
	}
	var list struct{ Webhooks []any }
	c.admin(http.MethodGet, "/api/v1/webhooks", nil, &list)
	if len(list.Webhooks) != 0 {
		t.Fatalf("refused registrations stored %d webhooks", len(list.Webhooks))
	}
}

// TestWebhookEgressRefusedAtDelivery registers a receiver by a name
// (localhost) while its address is allowed, then restarts scimd with a
// rule denying that address, as a DNS answer changing after registration
// would: every delivery is refused at connection time, recorded as a
// failure of result "denied" naming the rule, and the receiver gets
// nothing.
func TestWebhookEgressRefusedAtDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	rc := newHookReceiver(t)
	u, err := url.Parse(rc.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	hookURL := "http://localhost:" + u.Port() + "/scimd"
	dataDir := t.TempDir()
	d := startDaemon(t, dataDir)
	c := newBinClient(t, d)
	var hook struct{ ID string }
	c.admin(http.MethodPost, "/api/v1/webhooks", map[string]any{"url": hookURL, "secret": rc.secret}, &hook)
	if err := d.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	d = startDaemon(t, dataDir, "--webhook-deny", "127.0.0.0/8,::1", "--webhook-min-backoff", "50ms", "--webhook-max-backoff", "100ms")
	c = &binClient{t: t, d: d, scim: c.scim}
	c.createUser(map[string]any{"userName": "rebound@example.com"})
	var view struct {
		LastError string
		Failures  int
		Delivered uint64
	}
	c.eventually(30*time.Second, "a refused delivery attempt", func() bool {
		c.admin(http.MethodGet, "/api/v1/webhooks/"+hook.ID, nil, &view)
		return view.Failures > 0
	})
	if !strings.Contains(view.LastError, "egress policy") || !strings.Contains(view.LastError, "--webhook-deny") {
		t.Errorf("lastError = %q, want the egress rule", view.LastError)
	}
	if accepted, _ := rc.state(); len(accepted) != 0 || view.Delivered != 0 {
		t.Errorf("the receiver at a denied address got %d deliveries (delivered %d)", len(accepted), view.Delivered)
	}
	if got := c.metric(`scimd_webhook_deliveries_total{result="denied"}`); got == "" || got == "0" {
		t.Errorf(`scimd_webhook_deliveries_total{result="denied"} = %q, want > 0`, got)
	}
	failed := c.auditEvents("webhook.delivery.failed")
	if len(failed) == 0 {
		t.Fatal("no webhook.delivery.failed audit event")
	}
	details, _ := json.Marshal(failed[0]["details"])
	if !strings.Contains(string(details), `"denied"`) {
		t.Errorf("webhook.delivery.failed details = %s, want result denied", details)
	}
}
