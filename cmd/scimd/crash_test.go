package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/store"
	"github.com/scimd/scimd/scim/store/postgres"
	"github.com/scimd/scimd/scim/store/postgres/pgtest"
	"github.com/scimd/scimd/scim/store/sqlite"
)

// TestKillNineLosesNoAcknowledgedWrite sends hundreds of concurrent writes
// to the real binary, kills it with SIGKILL mid-stream, restarts it, and
// checks that every write that got a 2xx is present and unchanged and the
// audit chain is intact: with the embedded SQLite store and with
// PostgreSQL.
func TestKillNineLosesNoAcknowledgedWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	t.Run("sqlite", func(t *testing.T) {
		dataDir := t.TempDir()
		testKillNine(t, dataDir, nil, func(ctx context.Context) (store.Backend, error) { return sqlite.Open(ctx, dataDir) })
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.Start(t).CreateDatabase(t)
		testKillNine(t, t.TempDir(), []string{"--database", url},
			func(ctx context.Context) (store.Backend, error) { return postgres.Open(ctx, url) })
	})
}

func testKillNine(t *testing.T, dataDir string, args []string, open func(context.Context) (store.Backend, error)) {
	d := startDaemon(t, dataDir, append([]string{"--rate-limit", "0"}, args...)...)
	waitLeader(t, 30*time.Second, d) // on PostgreSQL: once it leads
	token := d.scimToken("crash")
	scim := d.base + "/scim/v2"
	ctx := context.Background()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	status, body, err := call(ctx, client, http.MethodPost, scim+"/Groups", token, map[string]any{"displayName": "Intercom Admins"})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create group: %d %s %v", status, body, err)
	}
	var group struct{ ID string }
	_ = json.Unmarshal(body, &group)

	type acked struct {
		id, userName, title string
		inGroup             bool
	}
	var (
		mu      sync.Mutex
		ackList []acked
		sent    atomic.Int64
		wg      sync.WaitGroup
	)
	stopCh := make(chan struct{})
	const workers = 32
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stopCh:
					return
				default:
				}
				sent.Add(1)
				name := fmt.Sprintf("user-%d-%d@example.com", w, i)
				title := fmt.Sprintf("title %d/%d", w, i)
				status, body, err := call(ctx, client, http.MethodPost, scim+"/Users", token,
					map[string]any{"userName": name, "title": title, "active": true})
				if err != nil || status != http.StatusCreated {
					continue // the kill landed: not acknowledged
				}
				var u struct{ ID string }
				if json.Unmarshal(body, &u) != nil {
					continue
				}
				a := acked{id: u.ID, userName: name, title: title}
				status, _, err = call(ctx, client, http.MethodPatch, scim+"/Groups/"+group.ID, token, map[string]any{
					"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
					"Operations": []any{map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": u.ID}}}},
				})
				a.inGroup = err == nil && status/100 == 2
				mu.Lock()
				ackList = append(ackList, a)
				mu.Unlock()
			}
		}(w)
	}
	// Let a few hundred writes through, then kill mid-stream.
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(ackList)
		mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	d.kill()
	close(stopCh)
	wg.Wait()
	if len(ackList) < 300 {
		t.Fatalf("only %d acknowledged writes before the deadline", len(ackList))
	}
	t.Logf("sent %d creates, %d acknowledged before SIGKILL", sent.Load(), len(ackList))

	d2 := startDaemon(t, dataDir, args...)
	waitLeader(t, 30*time.Second, d2)
	scim = d2.base + "/scim/v2"
	for _, a := range ackList {
		status, body, err := call(ctx, client, http.MethodGet, scim+"/Users/"+a.id, token, nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("acknowledged user %s (%s) lost: %d %s %v", a.id, a.userName, status, body, err)
		}
		var u struct {
			UserName string
			Title    string
		}
		_ = json.Unmarshal(body, &u)
		if u.UserName != a.userName || u.Title != a.title {
			t.Fatalf("user %s changed: got %q/%q want %q/%q", a.id, u.UserName, u.Title, a.userName, a.title)
		}
	}
	status, body, err = call(ctx, client, http.MethodGet, scim+"/Groups/"+group.ID, token, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("group lost: %d %v", status, err)
	}
	var g struct{ Members []struct{ Value string } }
	_ = json.Unmarshal(body, &g)
	members := map[string]bool{}
	for _, m := range g.Members {
		members[m.Value] = true
	}
	for _, a := range ackList {
		if a.inGroup && !members[a.id] {
			t.Fatalf("acknowledged membership of %s lost", a.id)
		}
	}
	// Role updates that the kill cut off between the SCIM commit and the
	// reconciler happen after the restart: every acknowledged member of the
	// admin group is an admin.
	deadline = time.Now().Add(60 * time.Second)
	for _, a := range ackList {
		if !a.inGroup {
			continue
		}
		for {
			status, body, err := call(ctx, client, http.MethodGet, d2.base+"/api/v1/teammates/"+a.id, d2.admin, nil)
			var tm struct {
				Role   *string
				Access bool
			}
			_ = json.Unmarshal(body, &tm)
			if err == nil && status == http.StatusOK && tm.Access && tm.Role != nil && *tm.Role == "admin" {
				break
			}
			if time.Now().After(deadline) {
				_, ch, _ := call(ctx, client, http.MethodGet, d2.base+"/api/v1/changes?state=all", d2.admin, nil)
				t.Fatalf("teammate %s did not become admin after restart: %d %s %v\nchanges: %.3000s", a.id, status, body, err, ch)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := d2.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// The audit chain is intact after the crash.
	backend, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Options{Backend: backend})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	events, err := st.AuditEvents(ctx, store.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	v := audit.NewVerifier()
	for _, e := range events {
		if err := v.Next(e); err != nil {
			t.Fatalf("audit chain: %v", err)
		}
	}
	if int(v.Count()) < len(ackList)+1 {
		t.Fatalf("audit has %d events for %d acknowledged creates", v.Count(), len(ackList))
	}
}
