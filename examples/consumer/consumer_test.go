package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/scimd/scimd/engine/app"
	"github.com/scimd/scimd/engine/backup"
	"github.com/scimd/scimd/engine/delivery"
)

const (
	adminToken = "consumer-test-admin"
	secret     = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

func TestVerifyAcceptsWhatScimdSigns(t *testing.T) {
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)
	if err := Verify(secret, h, body, time.Unix(1614265330, 0), 5*time.Minute); err != nil {
		t.Fatalf("Standard Webhooks test vector: %v", err)
	}

	key, err := delivery.SigningKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	body = []byte(`{"seq":42,"type":"teammate.role.changed"}`)
	h.Set("webhook-id", "42")
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("webhook-signature", delivery.Sign(key, "42", now.Unix(), body))
	if err := Verify(secret, h, body, now, 5*time.Minute); err != nil {
		t.Fatalf("scimd's signature refused: %v", err)
	}
	if err := Verify(secret, h, []byte(`{"seq":42,"type":"teammate.deleted"}`), now, 5*time.Minute); err == nil {
		t.Fatal("tampered body accepted")
	}
	if err := Verify(secret, h, body, now.Add(10*time.Minute), 5*time.Minute); err == nil {
		t.Fatal("stale timestamp accepted")
	}
	if err := Verify("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", h, body, now, 5*time.Minute); err == nil {
		t.Fatal("other secret accepted")
	}
}

// server is a real scimd in the test process.
type server struct {
	t    *testing.T
	app  *app.App
	base string
	scim string // SCIM token
	read string // read-scoped token: all the consumer needs
	// close stops it (also done at the end of the test).
	close func()
}

func startServer(t *testing.T) *server {
	t.Helper()
	return startServerIn(t, t.TempDir(), true)
}

// startServerIn runs scimd on dataDir, creating its tokens when newTokens.
func startServerIn(t *testing.T, dataDir string, newTokens bool) *server {
	t.Helper()
	a, err := app.Open(context.Background(), app.Config{
		Data: dataDir, Policies: filepath.Join("..", "..", "policies"), AdminToken: adminToken,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Delivery: app.DeliveryConfig{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(func() { srv.Close(); _ = a.Close() })
	s := &server{t: t, app: a, base: srv.URL, close: func() { srv.Close(); _ = a.Close() }}
	if !newTokens {
		return s
	}
	var tok struct{ Token string }
	s.json(http.MethodPost, "/api/v1/tokens", adminToken, map[string]string{"name": "idp"}, &tok)
	s.scim = tok.Token
	s.json(http.MethodPost, "/api/v1/tokens", adminToken, map[string]any{"name": "consumer", "scopes": []string{"read"}}, &tok)
	s.read = tok.Token
	return s
}

// call sends a request from any goroutine.
func (s *server) call(method, path, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (s *server) json(method, path, token string, body, out any) {
	s.t.Helper()
	status, b, err := s.call(method, path, token, body)
	if err != nil || status/100 != 2 {
		s.t.Fatalf("%s %s: %d %s %v", method, path, status, b, err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatal(err)
		}
	}
}

func (s *server) create(kind, name string) string {
	s.t.Helper()
	body := map[string]any{"displayName": name}
	if kind == "Users" {
		body = map[string]any{"userName": name, "active": true}
	}
	var out struct{ ID string }
	s.json(http.MethodPost, "/scim/v2/"+kind, s.scim, body, &out)
	return out.ID
}

// member adds or removes a user in a group.
func (s *server) member(op, group, user string) error {
	status, b, err := s.call(http.MethodPatch, "/scim/v2/Groups/"+group, s.scim, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": op, "path": "members", "value": []any{map[string]any{"value": user}}}},
	})
	if err != nil || status/100 != 2 {
		return fmt.Errorf("%s %s in %s: %d %s %v", op, user, group, status, b, err)
	}
	return nil
}

// churn moves users through the groups: n membership changes.
func (s *server) churn(groups, users []string, n int) error {
	for i := range n {
		u := users[i%len(users)]
		cycle := i / len(users)
		op := "add"
		if cycle%2 == 1 {
			op = "remove"
		}
		if err := s.member(op, groups[(cycle/2)%len(groups)], u); err != nil {
			return err
		}
	}
	return nil
}

// directory is GET /api/v1/teammates as a consumer State, once the
// reconciler has applied every change made so far.
func (s *server) directory() State {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.app.Reconciler.WaitIdle(ctx); err != nil {
		s.t.Fatal(err)
	}
	st, err := (&Client{Server: s.base, Token: s.read}).Snapshot(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	return *st
}

func sameTable(t *testing.T, got, want State) {
	t.Helper()
	if got.Seq != want.Seq || len(got.Teammates) != len(want.Teammates) {
		t.Fatalf("consumer at seq %d with %d teammates, directory at %d with %d", got.Seq, len(got.Teammates), want.Seq, len(want.Teammates))
	}
	for id, w := range want.Teammates {
		if got.Teammates[id] != w {
			t.Fatalf("teammate %s: consumer %+v, directory %+v", id, got.Teammates[id], w)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFollowResumesFromItsStateFile bootstraps from the snapshot, follows
// the feed while memberships change, is stopped and started again from its
// file, and ends with the directory's state.
func TestFollowResumesFromItsStateFile(t *testing.T) {
	s := startServer(t)
	groups := []string{s.create("Groups", "Intercom Admins"), s.create("Groups", "Intercom Support"), s.create("Groups", "Intercom Viewers")}
	var users []string
	for i := range 12 {
		users = append(users, s.create("Users", fmt.Sprintf("u%02d@example.com", i)))
	}
	if err := s.churn(groups, users, 30); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "teammates.json")
	client := &Client{Server: s.base, Token: s.read}

	var mu sync.Mutex
	var seen uint64
	run := func(ctx context.Context) chan error {
		done := make(chan error, 1)
		go func() {
			done <- Follow(ctx, client, path, 2*time.Second, func(st *State) {
				mu.Lock()
				seen = st.Seq
				mu.Unlock()
			})
		}()
		return done
	}
	seenNow := func() uint64 { mu.Lock(); defer mu.Unlock(); return seen }

	ctx, stop := context.WithCancel(context.Background())
	done := run(ctx)
	changes := make(chan error, 1)
	go func() { changes <- s.churn(groups, users, 150) }()
	waitFor(t, "the consumer to bootstrap and apply changes", func() bool { return seenNow() > 60 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, ok, err := LoadState(path)
	if err != nil || !ok || st.Seq == 0 {
		t.Fatalf("state file after stop: %+v %v %v", st, ok, err)
	}

	ctx, stop = context.WithCancel(context.Background())
	defer stop()
	done = run(ctx)
	if err := <-changes; err != nil {
		t.Fatal(err)
	}
	want := s.directory()
	waitFor(t, "the consumer to catch up", func() bool { return seenNow() >= want.Seq })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, _, err := LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	sameTable(t, *got, want)
}

// TestReceiverKeepsTheTableFromWebhooks registers the consumer's webhook
// receiver with a real scimd and checks it verifies, applies, persists and
// deduplicates.
func TestReceiverKeepsTheTableFromWebhooks(t *testing.T) {
	s := startServer(t)
	admins := s.create("Groups", "Intercom Admins")
	alice := s.create("Users", "alice@example.com")
	path := filepath.Join(t.TempDir(), "teammates.json")

	// Register first (delivery starts at the head), then bootstrap: the
	// deliveries the snapshot already covers are recognised by sequence.
	var rc *Receiver
	var mu sync.RWMutex
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.RLock()
		defer mu.RUnlock()
		rc.ServeHTTP(w, r)
	}))
	defer hook.Close()
	mu.Lock()
	s.json(http.MethodPost, "/api/v1/webhooks", adminToken, map[string]any{"url": hook.URL, "secret": secret}, nil)
	client := &Client{Server: s.base, Token: s.read}
	var err error
	rc, err = NewReceiver(secret, path, func() (*State, error) { return client.Snapshot(context.Background()) })
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.member("add", admins, alice); err != nil {
		t.Fatal(err)
	}
	var users []string
	for i := range 8 {
		users = append(users, s.create("Users", fmt.Sprintf("w%d@example.com", i)))
	}
	if err := s.churn([]string{admins, s.create("Groups", "Intercom Support")}, users, 40); err != nil {
		t.Fatal(err)
	}
	want := s.directory()
	waitFor(t, "the receiver to catch up", func() bool { return rc.State().Seq == want.Seq })
	sameTable(t, rc.State(), want)

	// A forged delivery is refused; a repeated one is acknowledged and
	// changes nothing.
	body := []byte(fmt.Sprintf(`{"seq":%d,"type":"teammate.deleted","teammateId":%q,"change":{"teammate":{"deleted":true}}}`, want.Seq+1, alice))
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("webhook-id", strconv.FormatUint(want.Seq+1, 10))
	req.Header.Set("webhook-timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	req.Header.Set("webhook-signature", "v1,Zm9yZ2Vk")
	w := httptest.NewRecorder()
	rc.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("forged delivery = %d", w.Code)
	}
	key, _ := delivery.SigningKey(secret)
	ts := time.Now().Unix()
	body = []byte(fmt.Sprintf(`{"seq":%d,"type":"teammate.deleted","teammateId":%q,"change":{"teammate":{"deleted":true}}}`, want.Seq, alice))
	req = httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("webhook-id", strconv.FormatUint(want.Seq, 10))
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", delivery.Sign(key, strconv.FormatUint(want.Seq, 10), ts, body))
	w = httptest.NewRecorder()
	rc.ServeHTTP(w, req)
	if w.Code != http.StatusNoContent {
		t.Fatalf("repeated delivery = %d %s", w.Code, w.Body)
	}
	sameTable(t, rc.State(), want)

	// A restarted receiver resumes from its file.
	again, err := NewReceiver(secret, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameTable(t, again.State(), want)
}

// TestFollowResyncsAfterARestore: a consumer that followed scimd past the
// head of a backup is told, once that backup is restored, that the feed is
// in a new epoch (409), re-reads the teammates and follows from there,
// ending with the restored directory's state (issue 18, item 1).
func TestFollowResyncsAfterARestore(t *testing.T) {
	ctx := context.Background()
	dirA := t.TempDir()
	s := startServerIn(t, dirA, true)
	groups := []string{s.create("Groups", "Intercom Admins"), s.create("Groups", "Intercom Support"), s.create("Groups", "Intercom Viewers")}
	var users []string
	for i := range 8 {
		users = append(users, s.create("Users", fmt.Sprintf("r%02d@example.com", i)))
	}
	if err := s.churn(groups, users, 20); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "teammates.json")
	follow := func(s *server, until func(*State) bool) *State {
		t.Helper()
		fctx, stop := context.WithTimeout(ctx, 60*time.Second)
		defer stop()
		var last *State
		err := Follow(fctx, &Client{Server: s.base, Token: s.read}, path, time.Second, func(st *State) {
			if until(st) {
				last = st
				stop()
			}
		})
		if err != nil || last == nil {
			t.Fatalf("follow: %v (condition not reached)", err)
		}
		return last
	}
	want := s.directory()
	follow(s, func(st *State) bool { return st.Seq >= want.Seq })

	backupFile := filepath.Join(t.TempDir(), "scimd.backup")
	if _, err := backup.Create(ctx, dirA, backupFile); err != nil {
		t.Fatal(err)
	}
	// Changes after the backup: the consumer sees them, the restore loses them.
	if err := s.churn(groups, users, 40); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		s.create("Users", fmt.Sprintf("lost%02d@example.com", i))
	}
	after := s.directory()
	ahead := follow(s, func(st *State) bool { return st.Seq >= after.Seq })
	read := s.read
	s.close()

	dirB := t.TempDir()
	if _, err := backup.Restore(ctx, backupFile, dirB, backup.RestoreOptions{Records: app.Records()}); err != nil {
		t.Fatal(err)
	}
	r := startServerIn(t, dirB, false)
	r.read = read
	restored := r.directory()
	if restored.Seq >= ahead.Seq {
		t.Fatalf("the restored feed head %d is not behind the consumer's %d: the test shows nothing", restored.Seq, ahead.Seq)
	}
	got := follow(r, func(st *State) bool { return st.EpochKnown && st.Epoch != "" })
	sameTable(t, *got, restored)
	for id := range got.Teammates {
		if _, ok := restored.Teammates[id]; !ok {
			t.Errorf("the re-synced consumer still has teammate %s, lost by the restore", id)
		}
	}
}
