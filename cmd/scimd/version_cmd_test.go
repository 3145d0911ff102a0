package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	line := regexp.MustCompile(`^scimd \S+ \(commit \S+, built \S+, go1\.\d+\S*, OPA v\d+\.\d+\.\d+\)\n$`)
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, err := exec.Command(binary, args...).Output()
		if err != nil || !line.Match(out) {
			t.Errorf("scimd %v = %q, %v; want %v", args, out, err, line)
		}
	}
	out, err := exec.Command(binary, "version", "--format", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]string
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("version --format json: %v\n%s", err, out)
	}
	for _, k := range []string{"version", "commit", "buildDate", "goVersion", "opaVersion"} {
		if v[k] == "" {
			t.Errorf("version --format json: no %s in %s", k, out)
		}
	}
	if !strings.HasPrefix(v["opaVersion"], "v1.") {
		t.Errorf("opaVersion = %q, want the linked OPA module's version", v["opaVersion"])
	}
}

// TestHealthcheckAndBuildInfo starts scimd with the admin token in a file
// (as systemd's LoadCredential hands it over), probes it with scimd
// healthcheck, and reads scimd_build_info.
func TestHealthcheckAndBuildInfo(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	const token = "file-admin-token-0123456789abcdef"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(binary, serveArgs(t, dir)...)
	cmd.Env = append(os.Environ(), "SCIMD_ADMIN_TOKEN_FILE="+tokenFile)
	d := launchDaemon(t, cmd, dir)
	d.admin = token
	d.scimToken("from-file-admin") // fails unless the file's token is the admin token

	for _, path := range []string{"/healthz", "/readyz"} {
		if out, err := exec.Command(binary, "healthcheck", "--url", d.base+path).CombinedOutput(); err != nil {
			t.Errorf("healthcheck %s: %v\n%s", path, err, out)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/healthz"
	ln.Close()
	if out, err := exec.Command(binary, "healthcheck", "--url", closed).CombinedOutput(); err == nil {
		t.Errorf("healthcheck of a closed port succeeded: %s", out)
	}

	resp, err := http.Get(d.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`(?m)^scimd_build_info\{.*opa_version="v1\.[^"]+".*version="[^"]+"\} 1$`)
	if !m.Match(body) {
		t.Errorf("/metrics has no scimd_build_info with the OPA version:\n%s", grepLines(string(body), "scimd_build_info"))
	}
}

func TestAdminTokenFileConflicts(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		env  []string
		want string
	}{
		{[]string{"SCIMD_ADMIN_TOKEN=a", "SCIMD_ADMIN_TOKEN_FILE=" + tokenFile}, "both SCIMD_ADMIN_TOKEN and SCIMD_ADMIN_TOKEN_FILE"},
		{[]string{"SCIMD_ADMIN_TOKEN_FILE=" + filepath.Join(t.TempDir(), "missing")}, "no such file"},
		{[]string{"SCIMD_ADMIN_TOKEN_FILE=" + empty}, "is empty"},
	} {
		cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir())
		cmd.Env = append(os.Environ(), tt.env...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("%v: %v %q, want an error containing %q", tt.env, err, out, tt.want)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
