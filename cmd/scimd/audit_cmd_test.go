package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/review"
	"github.com/scimd/scimd/scim/store/sqlite"
)

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-03-01T08:30:00Z", time.Date(2026, 3, 1, 8, 30, 0, 0, time.UTC), true},
		{"2026-03-01", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), true},
		{"90m", now.Add(-90 * time.Minute), true},
		{"7d", now.AddDate(0, 0, -7), true},
		{"yesterday", time.Time{}, false},
		{"-5h", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := parseWhen(tt.in, now)
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v (ok %v)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// decodeLines decodes JSON lines of audit events.
func decodeLines(t *testing.T, s string) []audit.Event {
	t.Helper()
	var out []audit.Event
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e audit.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func TestAuditVerifyCommand(t *testing.T) {
	s := startLive(t)
	alice := s.createUser("alice@example.com")
	s.createGroup("Intercom Support", alice)
	ctx := context.Background()

	r := s.runCLI(ctx, "audit", "verify")
	if r.code != 0 || !strings.Contains(r.stdout, "audit chain OK") {
		t.Fatalf("verify on a real run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = s.runCLI(ctx, "audit", "verify", "--format", "json")
	var res review.VerifyResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || !res.OK || res.Head == nil {
		t.Fatalf("json verify: %v %+v", err, res)
	}
	head := res.Head.String()
	if r := s.runCLI(ctx, "audit", "verify", "--expect", head); r.code != 0 {
		t.Fatalf("verify --expect the current head: exit %d %s", r.code, r.stderr)
	}

	var granted struct{ Events []audit.Event }
	s.api("GET", "/api/v1/audit?teammate="+alice+"&type="+audit.TypeAccessGranted, nil, &granted)
	if len(granted.Events) != 1 {
		t.Fatalf("access granted events: %+v", granted.Events)
	}
	target := granted.Events[0].Seq
	s.stop()

	// Edit one stored event of the stopped server.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.data, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit SET data = json_set(data, '$.actor.name', 'mallory') WHERE seq = ?`, target); err != nil {
		t.Fatal(err)
	}
	db.Close()

	want := "audit chain broken at event " + strconv.FormatUint(target, 10)
	r = runCLI(ctx, "audit", "verify", "--data", s.data)
	if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stdout, "teammate.access.granted") ||
		!strings.Contains(r.stdout, "edited") {
		t.Fatalf("offline verify of an edited log: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(ctx, "audit", "verify", "--data", t.TempDir()); r.code != 1 || !strings.Contains(r.stderr, sqlite.FileName) {
		t.Fatalf("offline verify of an empty directory: exit %d %s", r.code, r.stderr)
	}

	s.start()
	r = s.runCLI(ctx, "audit", "verify")
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("API verify after restart: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestAuditListAndExport(t *testing.T) {
	s := startLive(t)
	alice := s.createUser("alice@example.com")
	bob := s.createUser("bob@example.com")
	s.createGroup("Intercom Support", alice, bob)
	ctx := context.Background()

	r := s.runCLI(ctx, "audit", "--teammate", "alice@example.com", "--format", "jsonl")
	events := decodeLines(t, r.stdout)
	if r.code != 0 || len(events) < 4 {
		t.Fatalf("audit --teammate: exit %d, %d events\n%s", r.code, len(events), r.stderr)
	}
	sawGroup := false
	for _, e := range events {
		switch {
		case e.Type == audit.TypeGroupCreated:
			sawGroup = true
		case e.Target.ID != alice:
			t.Errorf("event about someone else: %+v", e)
		}
	}
	if !sawGroup {
		t.Errorf("alice's events lack the group creation that added her")
	}

	r = s.runCLI(ctx, "audit", "--type", "scim.user", "--limit", "1")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); r.code != 0 || len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "SEQ") || !strings.Contains(lines[1], "created user alice@example.com") {
		t.Fatalf("table with --limit 1:\n%s", r.stdout)
	}

	out := filepath.Join(t.TempDir(), "audit.jsonl")
	r = s.runCLI(ctx, "audit", "export", "--since", "1h", "--out", out)
	if r.code != 0 || !strings.Contains(r.stderr, "exported") {
		t.Fatalf("export: exit %d %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	exported := decodeLines(t, string(b))
	res, err := review.Verify(ctx, func(_ context.Context, after uint64, limit int) ([]audit.Event, error) {
		var page []audit.Event
		for _, e := range exported {
			if e.Seq > after && len(page) < limit {
				page = append(page, e)
			}
		}
		return page, nil
	}, nil)
	if err != nil || !res.OK || res.Events != uint64(len(exported)) {
		t.Fatalf("the export does not verify on its own: %+v %v", res, err)
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".audit.jsonl.*")); len(matches) != 0 {
		t.Fatalf("temporary files left: %v", matches)
	}

	r = s.runCLI(ctx, "audit", "show", strconv.FormatUint(exported[0].Seq, 10))
	var shown audit.Event
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil || shown.Hash != exported[0].Hash {
		t.Fatalf("audit show: %v %s", err, r.stdout)
	}
	if r := s.runCLI(ctx, "audit", "show", "999999"); r.code != 1 {
		t.Fatalf("audit show of a missing event: exit %d", r.code)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAuditFollow(t *testing.T) {
	s := startLive(t)
	s.createUser("alice@example.com")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		root := newRootCmd()
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs([]string{"audit", "--follow", "--interval", "10ms", "--type", "scim.user", "--format", "jsonl",
			"--server", s.srv.URL, "--token", liveAdminToken})
		done <- root.ExecuteContext(ctx)
	}()
	waitFor := func(what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(out.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("follow output never showed %q:\n%s", what, out.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(`"name":"alice@example.com"`)
	s.createUser("bob@example.com")
	waitFor(`"name":"bob@example.com"`)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("follow ended with %v", err)
	}
	if events := decodeLines(t, out.String()); len(events) != 2 || events[0].Seq >= events[1].Seq {
		t.Fatalf("followed events %+v, want alice then bob once each", events)
	}
}

// TestDocumentedVerifierScript runs the Python verifier of docs/audit.md
// on an export, intact and with one event edited.
func TestDocumentedVerifierScript(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "audit.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```python\n")
	script, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/audit.md has no python block")
	}
	scriptPath := filepath.Join(t.TempDir(), "verify_audit.py")
	if err := os.WriteFile(scriptPath, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}

	s := startLive(t)
	alice := s.createUser("alice@example.com")
	s.createGroup("Intercom Support & <Friends>", alice) // characters Go escapes
	out := filepath.Join(t.TempDir(), "audit.jsonl")
	if r := s.runCLI(context.Background(), "audit", "export", "--out", out); r.code != 0 {
		t.Fatalf("export: %s", r.stderr)
	}
	export, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	run := func(input string, args ...string) (string, error) {
		cmd := exec.Command(python, append([]string{scriptPath}, args...)...)
		cmd.Stdin = strings.NewReader(input)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	if got, err := run(string(export)); err != nil || !strings.HasPrefix(got, "ok: head ") {
		t.Fatalf("the documented verifier rejects an intact export: %v\n%s", err, got)
	}
	lines := strings.SplitAfter(string(export), "\n")
	if got, err := run(strings.Join(lines[3:], ""), decodeLines(t, lines[2])[0].Hash); err != nil {
		t.Fatalf("a partial export linked to the previous hash: %v\n%s", err, got)
	}
	edited := strings.Replace(string(export), `"name":"okta"`, `"name":"mallory"`, 1)
	if got, err := run(edited); err == nil || !strings.Contains(got, "content does not match its hash") {
		t.Fatalf("the documented verifier accepts an edited export: %v\n%s", err, got)
	}
}
