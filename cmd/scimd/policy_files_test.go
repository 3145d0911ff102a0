package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeRefusesPolicyFilesOutsideTheDirectory runs the real binary over
// a policy directory holding a link to a secret elsewhere on the host and
// then a link to /proc/self/pagemap (size 0 to stat, endless to read). Both
// are refused by name; the secret reaches neither the policy status nor the
// audit log; scimd keeps serving with the last good policy, also after a
// restart over the bad directory.
func TestServeRefusesPolicyFilesOutsideTheDirectory(t *testing.T) {
	policies := copyDir(t, filepath.Join("..", "..", "policies"))
	outside := t.TempDir()
	const secret = "s3cr3t-from-outside"
	if err := os.WriteFile(filepath.Join(outside, "secret.json"), []byte(`{"leak": "`+secret+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	d := startDaemon(t, data, "--policies", policies)
	ctx := context.Background()
	get := func(path string) (int, string) {
		t.Helper()
		status, body, err := call(ctx, http.DefaultClient, http.MethodGet, d.base+path, d.admin, nil)
		if err != nil {
			t.Fatal(err)
		}
		return status, string(body)
	}
	reload := func() string {
		t.Helper()
		_, body, err := call(ctx, http.DefaultClient, http.MethodPost, d.base+"/api/v1/policy/reload", d.admin, nil)
		if err != nil {
			t.Fatal(err)
		}
		return string(body)
	}
	_, before := get("/api/v1/policy")

	if err := os.Symlink(filepath.Join(outside, "secret.json"), filepath.Join(policies, "leak.json")); err != nil {
		t.Fatal(err)
	}
	answer := reload()
	_, status := get("/api/v1/policy")
	if !strings.Contains(status, "leak.json") || !strings.Contains(status, "outside the policy directory") {
		t.Fatalf("policy status does not name the refused link:\nreload: %s\nstatus: %s", answer, status)
	}
	if _, audit := get("/api/v1/audit?limit=1000"); strings.Contains(audit, secret) || strings.Contains(status, secret) {
		t.Fatal("the content of a file outside the policy directory reached the audit log or the status")
	}
	if rev := revisionOf(before); rev == "" || !strings.Contains(status, rev) {
		t.Errorf("the last good revision %q is no longer active: %s", rev, status)
	}

	os.Remove(filepath.Join(policies, "leak.json"))
	if _, err := os.Stat("/proc/self/pagemap"); err == nil {
		if err := os.Symlink("/proc/self/pagemap", filepath.Join(policies, "pagemap.json")); err != nil {
			t.Fatal(err)
		}
		reload()
		if _, status := get("/api/v1/policy"); !strings.Contains(status, "pagemap.json") {
			t.Fatalf("policy status does not name the pagemap link: %s", status)
		}
		if code, body := get("/healthz"); code != http.StatusOK {
			t.Fatalf("/healthz after the pagemap link = %d %s", code, body)
		}
		// A restart over the bad directory still comes up, naming the file.
		if err := d.stop(); err != nil {
			t.Fatalf("stop: %v\n%s", err, d.stderr)
		}
		d = startDaemon(t, data, "--policies", policies)
		if code, body := get("/healthz"); code != http.StatusOK {
			t.Fatalf("/healthz after a restart = %d %s", code, body)
		}
		if _, status := get("/api/v1/policy"); !strings.Contains(status, "pagemap.json") {
			t.Fatalf("policy status after a restart does not name the pagemap link: %s", status)
		}
	}
}

// revisionOf picks the "revision" of a GET /api/v1/policy answer.
func revisionOf(status string) string {
	_, rest, ok := strings.Cut(status, `"revision":"`)
	if !ok {
		return ""
	}
	rev, _, _ := strings.Cut(rest, `"`)
	return rev
}
