package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// runScimd runs a scimd command and returns its combined output.
func runScimd(args ...string) (string, error) {
	out, err := exec.Command(binary, args...).CombinedOutput()
	return string(out), err
}

// TestBackupWhileWritingThenRestore: 16 writers create users while a
// backup is taken from the running server; the backup restored into a new
// data directory holds every user acknowledged before the backup started,
// its audit chain verifies, it records store.restored, and the feed tells
// a consumer of the old server to re-sync (issue 18, item 1).
func TestBackupWhileWritingThenRestore(t *testing.T) {
	dataDir := t.TempDir()
	d := startDaemon(t, dataDir, "--rate-limit", "0")
	c := newBinClient(t, d)
	ctx := context.Background()

	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		mu      sync.Mutex
		acked   = map[string]time.Time{} // userName → when its 201 arrived
		failure atomic.Value
	)
	client := &http.Client{Timeout: 30 * time.Second}
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				name := fmt.Sprintf("w%02d-%05d@example.com", w, i)
				status, body, err := call(ctx, client, http.MethodPost, d.base+"/scim/v2/Users", c.scim, map[string]any{"userName": name, "active": true})
				if err != nil || status != http.StatusCreated {
					failure.Store(fmt.Sprintf("create %s: %d %s %v", name, status, body, err))
					return
				}
				mu.Lock()
				acked[name] = time.Now()
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	backupStart := time.Now()
	backupFile := filepath.Join(t.TempDir(), "scimd.backup")
	out, err := runScimd("backup", "--data", dataDir, "--out", backupFile)
	if err != nil || !strings.Contains(out, "audit chain verified") {
		t.Fatalf("scimd backup: %v\n%s", err, out)
	}
	time.Sleep(300 * time.Millisecond) // writes after the backup, lost by the restore
	stop.Store(true)
	wg.Wait()
	if f := failure.Load(); f != nil {
		t.Fatal(f)
	}
	c.settle()
	oldHead, err := d.feedHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}

	// The API serves a backup too (admin only), tested on the restored server below.
	restored := t.TempDir()
	out, err = runScimd("restore", "--from", backupFile, "--data", restored)
	if err != nil || !strings.Contains(out, "new epoch") {
		t.Fatalf("scimd restore: %v\n%s", err, out)
	}
	if out, err := runScimd("audit", "verify", "--data", restored); err != nil {
		t.Fatalf("audit verify of the restored store: %v\n%s", err, out)
	}
	d2 := startDaemon(t, restored, "--rate-limit", "0")
	c2 := &binClient{t: t, d: d2, scim: c.scim}
	var before []string
	mu.Lock()
	for name, at := range acked {
		if at.Before(backupStart) {
			before = append(before, name)
		}
	}
	mu.Unlock()
	if len(before) == 0 {
		t.Fatal("no write was acknowledged before the backup")
	}
	for _, name := range before {
		status, body := c2.do(http.MethodGet, "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "`+name+`"`), c.scim, nil)
		if status != http.StatusOK || !strings.Contains(body, `"totalResults":1`) {
			t.Fatalf("user %s, acknowledged before the backup, is missing after restore: %d %s", name, status, body)
		}
	}
	if evs := c2.auditEvents("store.restored"); len(evs) != 1 {
		t.Fatalf("%d store.restored events", len(evs))
	}

	// A feed consumer of the old server is past the restored head, and in
	// the old epoch: both are answered 409 with the new epoch and head
	// (examples/consumer re-syncs on it: TestFollowResyncsAfterARestore).
	for _, q := range []string{fmt.Sprintf("after=%d", oldHead), "after=0&epoch="} {
		status, body := c2.do(http.MethodGet, "/api/v1/feed?"+q, d2.admin, nil)
		var stale struct {
			Epoch string
			Head  uint64
		}
		if status != http.StatusConflict || json.Unmarshal([]byte(body), &stale) != nil || stale.Epoch == "" || stale.Head >= oldHead {
			t.Errorf("feed?%s after the restore = %d %s, want 409 with the new epoch and a head before %d", q, status, body, oldHead)
		}
	}

	// POST /api/v1/backup streams a verified backup to an admin.
	resp, err := http.Post(d2.base+"/api/v1/backup", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("backup without a token = %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, d2.base+"/api/v1/backup", nil)
	req.Header.Set("Authorization", "Bearer "+d2.admin)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	apiFile := filepath.Join(t.TempDir(), "api.db")
	f, _ := os.Create(apiFile)
	_, _ = f.ReadFrom(resp.Body)
	f.Close()
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/vnd.sqlite3" {
		t.Fatalf("POST /api/v1/backup = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if out, err := runScimd("restore", "--from", apiFile, "--data", t.TempDir()); err != nil {
		t.Fatalf("restore of the API's backup: %v\n%s", err, out)
	}
	if evs := c2.auditEvents("store.backup"); len(evs) != 1 {
		t.Errorf("%d store.backup events", len(evs))
	}
}

// TestRestoreRefusals: restore changes nothing when the target is in use,
// already holds a store (without --force), or the file is not a scimd
// store or its audit chain does not verify.
func TestRestoreRefusals(t *testing.T) {
	dataDir := t.TempDir()
	d := startDaemon(t, dataDir)
	newBinClient(t, d).createUser(map[string]any{"userName": "kept@example.com", "active": true})
	good := filepath.Join(t.TempDir(), "good.db")
	if out, err := runScimd("backup", "--data", dataDir, "--out", good); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if out, err := runScimd("backup", "--data", dataDir, "--out", good); err == nil || !strings.Contains(out, "exists") {
		t.Errorf("backup over an existing file: %v\n%s", err, out)
	}
	notStore := filepath.Join(t.TempDir(), "not.db")
	if err := os.WriteFile(notStore, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(t.TempDir(), "broken.db")
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(broken, data, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", broken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit SET data = replace(data, 'kept@example.com', 'evil@example.com')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	withStore := t.TempDir()
	if out, err := runScimd("restore", "--from", good, "--data", withStore); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		name, from, data, want string
		force                  bool
	}{
		{"server running", good, dataDir, "pid", true},
		{"directory holds a store", good, withStore, "--force", false},
		{"not a store", notStore, t.TempDir(), "not", false},
		{"broken chain", broken, t.TempDir(), "chain is broken", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := dirListing(t, tc.data)
			args := []string{"restore", "--from", tc.from, "--data", tc.data}
			if tc.force {
				args = append(args, "--force")
			}
			out, err := runScimd(args...)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Fatalf("restore %s: %v, want an error naming %q\n%s", tc.name, err, tc.want, out)
			}
			if after := dirListing(t, tc.data); after != before {
				t.Errorf("a refused restore changed %s:\n%s\n→\n%s", tc.data, before, after)
			}
		})
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
}

// dirListing names and sizes the files of dir, to see that nothing changed.
func dirListing(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		info, _ := e.Info()
		if strings.HasSuffix(e.Name(), "-wal") || strings.HasSuffix(e.Name(), "-shm") || e.Name() == "LOCK" || strings.HasSuffix(e.Name(), ".lock") {
			continue // a running server's write-ahead log and lock move on their own
		}
		fmt.Fprintf(&b, "%s %d\n", e.Name(), info.Size())
	}
	return b.String()
}
