package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSecondServeOnLockedDataDir starts a second scimd on the data
// directory of a running one: it must exit at once, naming the holder.
func TestSecondServeOnLockedDataDir(t *testing.T) {
	dir := t.TempDir()
	first := startDaemon(t, dir)
	cmd := exec.Command(binary, serveArgs(t, dir)...)
	cmd.Env = append(os.Environ(), "SCIMD_ADMIN_TOKEN="+testAdminToken)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("second serve on a locked data directory exited 0:\n%s", out)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("second serve took %v to give up", took)
	}
	want := "pid " + strconv.Itoa(first.cmd.Process.Pid)
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), "in use") {
		t.Fatalf("second serve's message does not name the holder (%s):\n%s", want, out)
	}
	// The first one still serves writes.
	tok := first.scimToken("okta")
	status, body, err := call(context.Background(), http.DefaultClient, http.MethodPost, first.base+"/scim/v2/Users", tok,
		map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "after@example.com"})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("write to the first scimd after the second gave up: %d %s %v", status, body, err)
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	// Once the holder is gone the directory is free again.
	startDaemon(t, dir)
}

func TestShortAdminTokenRefused(t *testing.T) {
	cmd := exec.Command(binary, serveArgs(t, t.TempDir())...)
	cmd.Env = append(os.Environ(), "SCIMD_ADMIN_TOKEN=short-secret")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "at least 32") {
		t.Fatalf("serve with a 12-character SCIMD_ADMIN_TOKEN: %v\n%s", err, out)
	}
}

// TestFailedCommitAnswers503 runs scimd with a file size limit (RLIMIT_FSIZE)
// so that, as the database grows, a commit fails with a real I/O error
// (EFBIG). From then on writes answer 503 with Retry-After, never 500, and
// /healthz fails so that a supervisor restarts the process.
func TestFailedCommitAnswers503(t *testing.T) {
	dir := t.TempDir()
	// The shell's ulimit -f counts 512-byte blocks (POSIX sh) or KiB
	// (bash): either leaves room to start and fails within a few MiB.
	script := `ulimit -f 4096 && exec "$0" "$@"`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, binary}, serveArgs(t, dir)...)...)
	d := launchDaemon(t, cmd, dir)
	tok := d.scimToken("okta")
	ctx := context.Background()
	filler := strings.Repeat("x", 16000) // string attributes hold at most 16,384 characters
	var failed bool
	for i := 0; i < 400 && !failed; i++ {
		user := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
			"userName": fmt.Sprintf("filler%d@example.com", i), "title": filler, "nickName": filler, "userType": filler, "profileUrl": filler}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/scim/v2/Users", jsonBody(t, user))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusCreated:
		case http.StatusServiceUnavailable:
			if resp.Header.Get("Retry-After") == "" {
				t.Fatalf("503 without Retry-After")
			}
			failed = true
		default:
			t.Fatalf("create %d answered %d, want 201 or 503", i, resp.StatusCode)
		}
	}
	if !failed {
		t.Fatal("no commit failed under the file size limit")
	}
	// Every later write is refused the same way.
	status, body, err := call(ctx, http.DefaultClient, http.MethodPost, d.base+"/scim/v2/Groups", tok,
		map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "Late"})
	if err != nil || status != http.StatusServiceUnavailable {
		t.Fatalf("write after the failed commit: %d %s %v", status, body, err)
	}
	status, body, err = call(ctx, http.DefaultClient, http.MethodPost, d.base+"/api/v1/tokens", d.admin, map[string]any{"name": "late"})
	if err != nil || status != http.StatusServiceUnavailable {
		t.Fatalf("admin write after the failed commit: %d %s %v", status, body, err)
	}
	resp, err := http.Get(d.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/healthz = %d while writes are disabled, want 503", resp.StatusCode)
	}
}

func jsonBody(t *testing.T, v any) *bytes.Reader {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}
