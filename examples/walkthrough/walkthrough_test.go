//go:build unix

package walkthrough_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWalkthroughScript runs walkthrough.sh with bash, as written, against
// a freshly built scimd on a free loopback port, and checks what each step
// shows.
func TestWalkthroughScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds scimd and runs the whole walkthrough")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	bin := filepath.Join(t.TempDir(), "scimd")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/scimd").CombinedOutput(); err != nil {
		t.Fatalf("build scimd: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	work := t.TempDir()
	cmd := exec.CommandContext(ctx, bash, "walkthrough.sh")
	cmd.Env = append(os.Environ(), "SCIMD="+bin, "LISTEN="+addr, "WORK="+work)
	// The script starts scimd in the background: put both in a process
	// group and end the group if the test times out.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	// The script stops the scimd it started (step 11, or its exit trap).
	stillServing := false
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		stillServing = true
	}
	// Whatever happened, end anything the script left in its group.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if runErr != nil {
		t.Fatalf("walkthrough.sh: %v\nstdout:\n%s\nstderr:\n%s", runErr, stdout.String(), stderr.String())
	}
	if stillServing {
		t.Errorf("scimd still listens on %s after the walkthrough", addr)
	}
	out := stdout.String()

	// What each step of the README says it shows, in order; "re:" marks a
	// regular expression, anything else is literal text.
	want := []string{
		"SCIM base URL: http://" + addr + "/scim/v2",
		"replayed examples/idp/okta/sequence.json: 43 Okta requests, final state as expected",
		"USERNAME           ROLE     ACCESS  EXCLUDED  GROUPS",
		"cause: identity provider (okta): added to group Intercom Support",
		"cause: identity provider (okta): deactivated user bob@example.com",
		"replayed examples/walkthrough/new-hire.json",
		"why:       in no mapped group → no access",
		`re:PASS: \d+/\d+`,
		"+ Platform Engineering  inactive → viewer",
		"+ erin@example.com  no access → viewer",
		"Plan: +1 ~0 \u22120",
		"scimd plan exit status: 2",
		"<!-- scimd-plan -->",
		"| + | erin\\@example.com | no access | viewer |",
		"REFUSED at the test stage",
		"broken/groups_test.rego:46: test data.scimd_test.test_platform_engineering_grants_viewer failed",
		"scimd plan exit status: 1",
		"role:      viewer",
		"cause: policy revision",
		"policy.planned",
		"refused at the test stage",
		"policy.activated  policy:watch",
		"scim.group.patched       token:okta",
		"| Platform Engineering | viewer |",
		`re:audit chain OK: \d+ events verified in http://`,
		`re:audit chain OK: \d+ events verified in .*scimd\.db`,
		"walkthrough complete",
	}
	rest := out
	for _, w := range want {
		var re *regexp.Regexp
		if expr, ok := strings.CutPrefix(w, "re:"); ok {
			re = regexp.MustCompile(expr)
		} else {
			re = regexp.MustCompile(regexp.QuoteMeta(w))
		}
		loc := re.FindStringIndex(rest)
		if loc == nil {
			t.Fatalf("walkthrough output lacks %q after the previous step:\n%s", w, out)
		}
		if m := passCount.FindStringSubmatch(rest[loc[0]:loc[1]]); m != nil && m[1] != m[2] {
			t.Fatalf("opa test in the walkthrough did not pass every test: %s", m[0])
		}
		rest = rest[loc[1]:]
	}
	// The teammate list (in id order) shows the roles Okta's push gave.
	for _, w := range []string{`(?m)^alice@example\.com\s+admin\s+yes`, `(?m)^bob@example\.com\s+admin\s+yes`,
		`(?m)^carol@example\.com\s+support\s+yes`, `(?m)^dan@example\.com\s+none\s+no`} {
		if !regexp.MustCompile(w).MatchString(out) {
			t.Errorf("walkthrough output lacks %q", w)
		}
	}
	if strings.Contains(out, "Guard: WOULD BE HELD") {
		t.Errorf("the walkthrough's plan would be held:\n%s", out)
	}
}

// passCount reads "PASS: n/m" from opa test's summary, so the walkthrough
// checks every policy test passed without pinning how many there are.
var passCount = regexp.MustCompile(`PASS: (\d+)/(\d+)`)

// TestReadmeCommandsAreInTheScript checks that every command of the
// README's ```sh blocks is run by walkthrough.sh, so that the script (and
// the test above) covers the walkthrough as written.
func TestReadmeCommandsAreInTheScript(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("walkthrough.sh")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for l := range strings.Lines(string(script)) {
		lines = append(lines, strings.TrimSpace(l))
	}
	in := false
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(readme))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
			continue
		case strings.HasPrefix(line, "```"):
			in = false
			continue
		}
		cmdLine := strings.TrimSpace(line)
		if !in || cmdLine == "" {
			continue
		}
		n++
		found := false
		for _, l := range lines {
			if strings.Contains(l, cmdLine) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("README command not in walkthrough.sh: %s", cmdLine)
		}
	}
	if n < 20 {
		t.Fatalf("found only %d commands in the README's sh blocks", n)
	}
}
