package main

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// environWithout is the test's environment without the named variables.
func environWithout(names ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		keep := true
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// TestFirstStartAdminToken: a first start whose listener cannot bind
// leaves no admin token behind; the next start creates one and writes it,
// once, to a 0600 file in the data directory.
func TestFirstStartAdminToken(t *testing.T) {
	data := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	args := serveArgs(t, data, "--admin-token-output", "file")
	failing := append(append([]string{}, args...), "--listen", busy.Addr().String())
	cmd := exec.Command(binary, failing...)
	cmd.Env = environWithout("SCIMD_ADMIN_TOKEN", "SCIMD_ADMIN_TOKEN_FILE")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "listen on") {
		t.Fatalf("serve on a busy port: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(data, "admin-token")); err == nil {
		t.Fatal("a failed start wrote an admin token file")
	}

	cmd = exec.Command(binary, args...)
	cmd.Env = environWithout("SCIMD_ADMIN_TOKEN", "SCIMD_ADMIN_TOKEN_FILE")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var base, written string
	timeout := time.After(30 * time.Second)
	for base == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("scimd exited before serving")
			}
			if m := regexp.MustCompile(`Admin token written to (\S+)`).FindStringSubmatch(l); m != nil {
				written = m[1]
			}
			if m := baseURLLine.FindStringSubmatch(l); m != nil {
				base = m[1]
			}
		case <-timeout:
			t.Fatal("scimd did not start")
		}
	}
	path := filepath.Join(data, "admin-token")
	if written != path {
		t.Fatalf("printed path %q, want %q", written, path)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v %v", info, err)
	}
	raw, _ := os.ReadFile(path)
	secret := strings.TrimSpace(string(raw))
	if status, body, err := call(context.Background(), http.DefaultClient, http.MethodGet, base+"/api/v1/tokens", secret, nil); err != nil || status != http.StatusOK {
		t.Fatalf("the written admin token does not work: %d %s %v", status, body, err)
	}
}
