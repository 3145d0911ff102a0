package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimd/scimd/engine/delivery"
)

// hookReceiver is a webhook endpoint in the test process that outlives
// the daemons it receives from.
type hookReceiver struct {
	srv    *httptest.Server
	secret string

	mu       sync.Mutex
	accepted []uint64 // webhook-ids answered 2xx, in arrival order
	bodies   map[uint64]struct{ Type, TeammateID string }
	bad      []string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	secret, err := delivery.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	rc := &hookReceiver{secret: secret, bodies: map[uint64]struct{ Type, TeammateID string }{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil {
			err = delivery.Verify(rc.secret, r.Header, body, time.Now(), delivery.DefaultTolerance)
		}
		var en struct {
			Seq              uint64
			Type, TeammateID string
		}
		if err == nil {
			err = json.Unmarshal(body, &en)
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if err != nil || strconv.FormatUint(en.Seq, 10) != r.Header.Get(delivery.HeaderID) {
			rc.bad = append(rc.bad, fmt.Sprintf("id %s: %v", r.Header.Get(delivery.HeaderID), err))
			http.Error(w, "bad webhook", http.StatusBadRequest)
			return
		}
		rc.accepted = append(rc.accepted, en.Seq)
		rc.bodies[en.Seq] = struct{ Type, TeammateID string }{en.Type, en.TeammateID}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *hookReceiver) state() (accepted []uint64, bad []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.accepted), slices.Clone(rc.bad)
}

// cli runs a scimd client command against d.
func (d *daemon) cli(args ...string) (string, error) {
	cmd := exec.Command(binary, append(args, "--server", d.base)...)
	cmd.Env = append(os.Environ(), "SCIMD_ADMIN_TOKEN="+d.admin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// feedHead returns the feed's head sequence.
func (d *daemon) feedHead(ctx context.Context) (uint64, error) {
	status, body, err := call(ctx, http.DefaultClient, http.MethodGet, d.base+"/api/v1/feed?limit=1&after=0", d.admin, nil)
	if err != nil || status != http.StatusOK {
		return 0, fmt.Errorf("feed: %d %s %v", status, body, err)
	}
	var p struct{ Head uint64 }
	err = json.Unmarshal(body, &p)
	return p.Head, err
}

var webhookIDLine = regexp.MustCompile(`webhook (wh_[0-9a-f]+) `)

// TestKillNineDuringWebhookDeliveries kills scimd with SIGKILL while it is
// delivering webhooks and writes are still arriving, restarts it, and
// checks that the receiver ends with every feed entry, in order, with at
// most the one entry in flight at the kill delivered twice (same
// webhook-id).
func TestKillNineDuringWebhookDeliveries(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	rc := newHookReceiver(t)
	dataDir := t.TempDir()
	d := startDaemon(t, dataDir, "--rate-limit", "0")
	out, err := d.cli("webhook", "add", "--url", rc.srv.URL+"/scimd", "--secret", rc.secret)
	if err != nil {
		t.Fatalf("webhook add: %v\n%s", err, out)
	}
	m := webhookIDLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("webhook add printed no id: %s", out)
	}
	hookID := m[1]

	token := d.scimToken("crash")
	ctx := context.Background()
	client := &http.Client{Timeout: 10 * time.Second}
	status, body, err := call(ctx, client, http.MethodPost, d.base+"/scim/v2/Groups", token, map[string]any{"displayName": "Intercom Admins"})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create group: %d %s %v", status, body, err)
	}
	var group struct{ ID string }
	_ = json.Unmarshal(body, &group)

	// Writers create users and add them to the admin group until the kill.
	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		ackedMu sync.Mutex
		acked   []string // users whose membership was acknowledged
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				status, body, err := call(ctx, client, http.MethodPost, d.base+"/scim/v2/Users", token,
					map[string]any{"userName": fmt.Sprintf("hook-%d-%d@example.com", w, i), "active": true})
				if err != nil || status != http.StatusCreated {
					continue
				}
				var u struct{ ID string }
				_ = json.Unmarshal(body, &u)
				status, _, err = call(ctx, client, http.MethodPatch, d.base+"/scim/v2/Groups/"+group.ID, token, map[string]any{
					"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
					"Operations": []any{map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": u.ID}}}},
				})
				if err == nil && status/100 == 2 {
					ackedMu.Lock()
					acked = append(acked, u.ID)
					ackedMu.Unlock()
				}
			}
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		accepted, _ := rc.state()
		if len(accepted) >= 150 {
			break
		}
		if time.Now().After(deadline) {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("only %d deliveries within 60s\n%s", len(accepted), d.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	d.kill()
	stop.Store(true)
	wg.Wait()
	beforeKill, _ := rc.state()
	t.Logf("killed after %d deliveries, %d memberships acknowledged", len(beforeKill), len(acked))

	d2 := startDaemon(t, dataDir)
	// Every acknowledged member becomes an admin (the reconciler finishes
	// what the kill cut off), so its entries are in the feed; then the
	// endpoint catches up with the head.
	deadline = time.Now().Add(90 * time.Second)
	for _, id := range acked {
		for {
			status, body, err := call(ctx, client, http.MethodGet, d2.base+"/api/v1/teammates/"+id, d2.admin, nil)
			var tm struct {
				Role *string
			}
			_ = json.Unmarshal(body, &tm)
			if err == nil && status == http.StatusOK && tm.Role != nil && *tm.Role == "admin" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("teammate %s not admin after restart: %d %s %v", id, status, body, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var head uint64
	for {
		head, err = d2.feedHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		accepted, _ := rc.state()
		if len(accepted) > 0 && accepted[len(accepted)-1] == head {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries stopped at %d of %d after restart", len(accepted), head)
		}
		time.Sleep(10 * time.Millisecond)
	}

	accepted, bad := rc.state()
	if len(bad) > 0 {
		t.Fatalf("bad deliveries: %v", bad)
	}
	// In order, nothing lost; at most the entry in flight at the kill twice.
	var distinct []uint64
	dups := 0
	for _, id := range accepted {
		switch {
		case len(distinct) > 0 && id == distinct[len(distinct)-1]:
			dups++
		case id == uint64(len(distinct)+1):
			distinct = append(distinct, id)
		default:
			t.Fatalf("delivery of %d after %d: out of order or lost (%d deliveries)", id, len(distinct), len(accepted))
		}
	}
	if uint64(len(distinct)) != head || dups > 1 {
		t.Fatalf("%d distinct deliveries of %d entries, %d duplicates", len(distinct), head, dups)
	}
	t.Logf("%d entries delivered, %d before the kill, %d duplicate(s)", head, len(beforeKill), dups)

	// Each delivery is the feed entry with its sequence.
	for after := uint64(0); after < head; {
		status, body, err := call(ctx, client, http.MethodGet, fmt.Sprintf("%s/api/v1/feed?after=%d&limit=1000", d2.base, after), d2.admin, nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("feed: %d %v", status, err)
		}
		var p struct {
			Entries []struct {
				Seq              uint64
				Type, TeammateID string
			}
			Next uint64
		}
		_ = json.Unmarshal(body, &p)
		for _, en := range p.Entries {
			rc.mu.Lock()
			got := rc.bodies[en.Seq]
			rc.mu.Unlock()
			if got.Type != en.Type || got.TeammateID != en.TeammateID {
				t.Fatalf("delivery %d = %+v, feed entry %+v", en.Seq, got, en)
			}
		}
		after = p.Next
	}

	out, err = d2.cli("webhook", "list")
	if err != nil {
		t.Fatalf("webhook list: %v\n%s", err, out)
	}
	if !strings.Contains(out, hookID) || !strings.Contains(out, "active") || strings.Contains(out, rc.secret) {
		t.Fatalf("webhook list:\n%s", out)
	}
	if err := d2.stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, d2.stderr)
	}
}

// TestWebhookCLI drives scimd webhook add|list|resume|remove against the
// real binary.
func TestWebhookCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	d := startDaemon(t, t.TempDir())
	out, err := d.cli("webhook", "add", "--url", "https://app.example.com/scimd", "--events", "teammate.access,teammate.deleted")
	if err != nil {
		t.Fatalf("add: %v\n%s", err, out)
	}
	m := webhookIDLine.FindStringSubmatch(out)
	secret := regexp.MustCompile(`secret \(shown once[^:]*\): (whsec_\S+)`).FindStringSubmatch(out)
	if m == nil || secret == nil {
		t.Fatalf("add printed no id or generated secret:\n%s", out)
	}
	if _, err := delivery.SigningKey(secret[1]); err != nil {
		t.Fatalf("generated secret %q: %v", secret[1], err)
	}
	out, err = d.cli("webhook", "list")
	if err != nil || !strings.Contains(out, m[1]) || !strings.Contains(out, "teammate.access,teammate.deleted") || strings.Contains(out, secret[1]) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = d.cli("webhook", "list", "--json")
	var listed struct{ Webhooks []delivery.View }
	if err != nil || json.Unmarshal([]byte(out), &listed) != nil || len(listed.Webhooks) != 1 || listed.Webhooks[0].State != "active" {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	if out, err = d.cli("webhook", "resume", m[1]); err != nil || !strings.Contains(out, "resumed "+m[1]) {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if out, err = d.cli("webhook", "remove", m[1]); err != nil || !strings.Contains(out, "removed "+m[1]) {
		t.Fatalf("remove: %v\n%s", err, out)
	}
	out, err = d.cli("webhook", "add", "--url", "ftp://app.example.com/scimd")
	if err == nil || !strings.Contains(out, "400") || !strings.Contains(out, "http:// or https://") {
		t.Fatalf("bad url: %v\n%s", err, out)
	}
	out, err = d.cli("webhook", "remove", m[1])
	if err == nil || !strings.Contains(out, "404") {
		t.Fatalf("remove twice: %v\n%s", err, out)
	}
}
