package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the scimd binary built once for the tests that run the real
// process.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "scimd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "scimd")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build scimd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a running scimd process.
type daemon struct {
	t       *testing.T
	cmd     *exec.Cmd
	base    string // http://127.0.0.1:PORT
	admin   string
	stderr  *bytes.Buffer
	exited  chan error
	dataDir string
	// adminBase is the --admin-listen origin when one was printed.
	adminBase string
}

var (
	baseURLLine  = regexp.MustCompile(`SCIM base URL: (https?://[^ ]+)/scim/v2`)
	adminAPILine = regexp.MustCompile(`Admin API: (https?://[^ ]+)/api/v1`)
)

// startDaemon runs scimd serve on a free loopback port over dataDir, with
// extra arguments, and waits until it serves.
func startDaemon(t *testing.T, dataDir string, args ...string) *daemon {
	t.Helper()
	return launchDaemon(t, exec.Command(binary, serveArgs(t, dataDir, args...)...), dataDir)
}

// serveArgs are the arguments of scimd serve on a free loopback port over
// dataDir with the repository's policies.
func serveArgs(t *testing.T, dataDir string, args ...string) []string {
	t.Helper()
	policies, err := filepath.Abs(filepath.Join("..", "..", "policies"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"serve", "--listen", "127.0.0.1:0", "--data", dataDir, "--policies", policies, "--log-level", "warn"}, args...)
}

// testAdminToken is the SCIMD_ADMIN_TOKEN of the daemons the tests start.
const testAdminToken = "test-admin-token-0123456789abcdef"

// launchDaemon starts cmd (a scimd serve, possibly wrapped) with the test
// admin token and waits until it serves.
func launchDaemon(t *testing.T, cmd *exec.Cmd, dataDir string) *daemon {
	t.Helper()
	const admin = testAdminToken
	if cmd.Env == nil {
		cmd.Env = append(os.Environ(), "SCIMD_ADMIN_TOKEN="+admin)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, cmd: cmd, admin: admin, stderr: &bytes.Buffer{}, exited: make(chan error, 1), dataDir: dataDir}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start scimd: %v", err)
	}
	found := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		var scimBase, admin string
		for sc.Scan() {
			if m := baseURLLine.FindStringSubmatch(sc.Text()); m != nil {
				scimBase = m[1]
			}
			if m := adminAPILine.FindStringSubmatch(sc.Text()); m != nil {
				admin = m[1]
			}
			// The console line comes after the SCIM and admin lines.
			if strings.HasPrefix(sc.Text(), "Web console: ") && scimBase != "" && !sent {
				found <- [2]string{scimBase, admin}
				sent = true
			}
		}
	}()
	go func() { d.exited <- cmd.Wait() }()
	select {
	case f := <-found:
		d.base, d.adminBase = f[0], f[1]
	case err := <-d.exited:
		t.Fatalf("scimd exited before serving: %v\n%s", err, d.stderr)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("scimd did not start in time\n%s", d.stderr)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-d.exited
		}
	})
	return d
}

func (d *daemon) kill() {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		d.t.Fatalf("kill: %v", err)
	}
	<-d.exited
}

// stop sends SIGTERM and returns the exit error.
func (d *daemon) stop() error {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatalf("sigterm: %v", err)
	}
	select {
	case err := <-d.exited:
		return err
	case <-time.After(30 * time.Second):
		d.t.Fatal("scimd did not stop within 30s of SIGTERM")
		return nil
	}
}

// call sends a request with the given bearer token and returns status and
// body.
func call(ctx context.Context, client *http.Client, method, url, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// scimToken creates a SCIM token through the admin API.
func (d *daemon) scimToken(name string) string {
	d.t.Helper()
	status, body, err := call(context.Background(), http.DefaultClient, http.MethodPost, d.base+"/api/v1/tokens", d.admin, map[string]string{"name": name})
	if err != nil || status != http.StatusCreated {
		d.t.Fatalf("create token: %d %s %v", status, body, err)
	}
	var out struct{ Token string }
	if err := json.Unmarshal(body, &out); err != nil {
		d.t.Fatal(err)
	}
	return out.Token
}

func TestServeGracefulShutdown(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(d.base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s = %d %s", path, resp.StatusCode, body)
		}
		if path == "/metrics" && !strings.Contains(string(body), "scimd_") {
			t.Fatalf("/metrics has no scimd_ metrics")
		}
	}
	if err := d.stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, d.stderr)
	}
}

// TestShutdownAnswersLongPolls checks that SIGTERM ends a waiting feed
// long-poll with an ordinary (empty) answer instead of holding shutdown
// until it times out and cutting the connection.
func TestShutdownAnswersLongPolls(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	type result struct {
		status int
		body   []byte
		err    error
	}
	dialed := make(chan struct{}, 1)
	transport := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		dialed <- struct{}{}
		return c, err
	}}
	got := make(chan result, 1)
	go func() {
		status, body, err := call(context.Background(), &http.Client{Timeout: 120 * time.Second, Transport: transport},
			http.MethodGet, d.base+"/api/v1/feed?after=0&wait=60s", d.admin, nil)
		got <- result{status, body, err}
	}()
	<-dialed
	time.Sleep(500 * time.Millisecond) // ordering only: let the server read the request
	start := time.Now()
	if err := d.stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, d.stderr)
	}
	r := <-got
	if r.err != nil || r.status != http.StatusOK || !strings.Contains(string(r.body), `"entries":[]`) {
		t.Fatalf("long-poll during shutdown: %d %s %v", r.status, r.body, r.err)
	}
	t.Logf("shutdown with a waiting long-poll took %v", time.Since(start))
}
