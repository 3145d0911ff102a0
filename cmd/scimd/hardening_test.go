package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// procStatus returns the resident set (KiB) and the open descriptors of
// the daemon, from /proc.
func (d *daemon) procStatus(t *testing.T) (rssKiB, fds int) {
	t.Helper()
	pid := d.cmd.Process.Pid
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKiB, _ = strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	entries, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		t.Fatal(err)
	}
	return rssKiB, len(entries)
}

// dialFrom connects to addr from the loopback address src (127.0.0.x),
// so tests can stand for several client addresses.
func dialFrom(src, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return d.Dial("tcp", addr)
}

// clientFrom is an HTTP client whose connections come from src.
func clientFrom(src string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) { return dialFrom(src, addr) },
	}}
}

func hostPort(base string) string {
	return strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://")
}

// TestSlowHeadersCutOff: a client that never finishes its headers is
// disconnected after --read-header-timeout.
func TestSlowHeadersCutOff(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--read-header-timeout", "1s")
	c, err := net.Dial("tcp", hostPort(d.base))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("a client with unfinished headers was still connected after %v", time.Since(start))
	}
	t.Logf("slow-header client cut off after %v", time.Since(start).Round(time.Millisecond))
}

// TestConnectionFloodsAreBounded opens far more idle connections, and
// connections sending megabytes of headers, than the limits allow, from
// one address; scimd's descriptors and memory stay bounded and a client
// from another address is still served.
func TestConnectionFloodsAreBounded(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--max-connections", "200", "--max-connections-per-address", "50", "--idle-timeout", "30s")
	addr := hostPort(d.base)
	other := clientFrom("127.0.0.2")
	get := func(what string) {
		t.Helper()
		resp, err := other.Get(d.base + "/healthz")
		if err != nil {
			t.Fatalf("%s: a client from another address is not served: %v", what, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: /healthz = %d", what, resp.StatusCode)
		}
	}
	get("before")
	rss0, fds0 := d.procStatus(t)

	// Idle flood: 1,100 connections that send nothing.
	var idle []net.Conn
	for i := 0; i < 1100; i++ {
		c, err := dialFrom("127.0.0.1", addr)
		if err != nil {
			break // the kernel's backlog may refuse some
		}
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	time.Sleep(500 * time.Millisecond) // let scimd accept (and close) them
	_, fdsIdle := d.procStatus(t)
	get("during the idle flood")
	if fdsIdle > fds0+50+10 {
		t.Errorf("descriptors grew from %d to %d under an idle flood (per-address limit 50)", fds0, fdsIdle)
	}

	// Header flood: 400 connections each sending 1 MiB of headers.
	big := "GET /healthz HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Flood: "+strings.Repeat("a", 1000)+"\r\n", 1024)
	var wg sync.WaitGroup
	var rejected sync.Map
	for i := 0; i < 400; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := dialFrom(fmt.Sprintf("127.0.1.%d", 1+i%20), addr)
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			go func() { _, _ = io.WriteString(c, big) }()
			line, _ := bufio.NewReader(c).ReadString('\n')
			rejected.Store(strings.TrimSpace(line), true)
		}(i)
	}
	wg.Wait()
	rss1, fds1 := d.procStatus(t)
	// The global limit may still be full while scimd closes the flood's
	// connections; once they are gone, another address is served again.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := clientFrom("127.0.0.2").Get(d.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the header flood: a client from another address is not served: %v", err)
		}
	}
	get("after the header flood")
	var lines []string
	rejected.Range(func(k, _ any) bool { lines = append(lines, k.(string)); return true })
	for _, l := range lines {
		if l != "" && !strings.HasPrefix(l, "HTTP/1.1 431") {
			t.Errorf("a 1 MiB header block was answered %q, want 431", l)
		}
	}
	t.Logf("RSS %d → %d KiB, descriptors %d → %d (idle flood %d) (load: see uptime)", rss0, rss1, fds0, fds1, fdsIdle)
	if fds1 > 200+30 {
		t.Errorf("%d descriptors after a header flood; --max-connections is 200", fds1)
	}
	if rss1-rss0 > 150<<10 {
		t.Errorf("RSS grew by %d MiB under a header flood", (rss1-rss0)>>10)
	}
}

// TestBodyFailuresThroughTheBinary: on SCIM and admin routes alike a
// truncated body gets 400, a trickling one 408; neither is logged as an
// error.
func TestBodyFailuresThroughTheBinary(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--read-timeout", "2s", "--log-level", "info")
	tok := d.scimToken("okta")
	addr := hostPort(d.base)
	send := func(path, token, body string, length int, trickle time.Duration, closeWrite bool) string {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		head := "POST " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
			"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(length) + "\r\n\r\n"
		_, _ = io.WriteString(c, head)
		for i := 0; i < len(body); i++ {
			if _, err := c.Write([]byte{body[i]}); err != nil {
				break
			}
			time.Sleep(trickle)
		}
		if closeWrite {
			_ = c.(*net.TCPConn).CloseWrite()
		}
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(line)
	}
	mustJSON := func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	for _, tc := range []struct {
		name, path, token, body string
	}{
		{"scim user", "/scim/v2/Users", tok, mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "slow@example.com"})},
		{"webhook", "/api/v1/webhooks", d.admin, mustJSON(map[string]any{"url": "https://hooks.example.com/x", "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"})},
		{"plan", "/api/v1/plan", d.admin, mustJSON(map[string]any{"files": map[string]string{"a.rego": "package scimd"}})},
		{"whatif", "/api/v1/whatif", d.admin, mustJSON(map[string]any{"user": "nobody@example.com", "addGroups": []string{"Intercom Admins"}})},
		{"token", "/api/v1/tokens", d.admin, mustJSON(map[string]any{"name": "slow-token", "scopes": []string{"read"}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := send(tc.path, tc.token, tc.body[:12], len(tc.body), 0, true); !strings.HasPrefix(got, "HTTP/1.1 400") {
				t.Errorf("truncated body: %q, want 400", got)
			}
			if got := send(tc.path, tc.token, tc.body, len(tc.body), 200*time.Millisecond, false); !strings.HasPrefix(got, "HTTP/1.1 408") {
				t.Errorf("trickling body: %q, want 408", got)
			}
		})
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(d.stderr.String(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) {
			t.Errorf("logged as an error: %s", line)
		}
	}
}

// TestAdminListenerAndMetricsAuth: with --admin-listen the SCIM address
// serves no admin API or metrics and the admin address no SCIM; with
// --metrics-auth /metrics needs a read token.
func TestAdminListenerAndMetricsAuth(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--admin-listen", "127.0.0.1:0", "--metrics-auth")
	if d.adminBase == "" || d.adminBase == d.base {
		t.Fatalf("no separate admin address printed (base %s, admin %q)", d.base, d.adminBase)
	}
	ctx := context.Background()
	status, body, err := call(ctx, http.DefaultClient, http.MethodPost, d.adminBase+"/api/v1/tokens", d.admin,
		map[string]any{"name": "viewer", "scopes": []string{"read"}})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create a read token on the admin address: %d %s %v", status, body, err)
	}
	var read struct{ Token string }
	_ = json.Unmarshal(body, &read)
	scim := d.scimTokenAt(d.adminBase, "okta")
	cases := []struct {
		name, url, token string
		want             int
	}{
		{"SCIM on the public address", d.base + "/scim/v2/Users", scim, http.StatusOK},
		{"admin API on the public address", d.base + "/api/v1/teammates", d.admin, http.StatusNotFound},
		{"metrics on the public address", d.base + "/metrics", read.Token, http.StatusNotFound},
		{"console on the public address", d.base + "/ui/", d.admin, http.StatusNotFound},
		{"health on the public address", d.base + "/healthz", "", http.StatusOK},
		{"SCIM on the admin address", d.adminBase + "/scim/v2/Users", scim, http.StatusNotFound},
		{"admin API on the admin address", d.adminBase + "/api/v1/teammates", read.Token, http.StatusOK},
		{"metrics without a token", d.adminBase + "/metrics", "", http.StatusUnauthorized},
		{"metrics with a SCIM token", d.adminBase + "/metrics", scim, http.StatusForbidden},
		{"metrics with a read token", d.adminBase + "/metrics", read.Token, http.StatusOK},
	}
	for _, tc := range cases {
		status, body, err := call(ctx, http.DefaultClient, http.MethodGet, tc.url, tc.token, nil)
		if err != nil || status != tc.want {
			t.Errorf("%s: %d %.200s %v, want %d", tc.name, status, body, err, tc.want)
		}
	}
}

// scimTokenAt creates a SCIM token through the admin API at origin.
func (d *daemon) scimTokenAt(origin, name string) string {
	d.t.Helper()
	status, body, err := call(context.Background(), http.DefaultClient, http.MethodPost, origin+"/api/v1/tokens", d.admin, map[string]string{"name": name})
	if err != nil || status != http.StatusCreated {
		d.t.Fatalf("create token: %d %s %v", status, body, err)
	}
	var out struct{ Token string }
	_ = json.Unmarshal(body, &out)
	return out.Token
}
