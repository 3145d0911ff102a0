package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scimd/scimd/engine/app"
)

const testAdminToken = "load-test-admin-token"

// server is a real scimd (app.Open on a temp dir behind httptest).
type server struct {
	app   *app.App
	srv   *httptest.Server
	base  string
	token string
}

func copyPolicies(t testing.TB) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join("..", "..", "policies")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, d.Name()), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func startServer(t testing.TB) *server {
	t.Helper()
	a, err := app.Open(context.Background(), app.Config{
		Data: t.TempDir(), Policies: copyPolicies(t), AdminToken: testAdminToken,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("open app: %v", err)
	}
	s := &server{app: a, srv: httptest.NewServer(a.Handler)}
	t.Cleanup(func() {
		s.srv.Close()
		_ = a.Close()
	})
	s.base = s.srv.URL + "/scim/v2"
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/api/v1/tokens", strings.NewReader(`{"name":"load"}`))
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.Token == "" {
		t.Fatalf("create token: status %d, %v", resp.StatusCode, err)
	}
	s.token = tok.Token
	return s
}

// admin GETs an admin API path into out.
func (s *server) admin(t *testing.T, path string, out any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.srv.URL+"/api/v1"+path, nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// runLoad runs scimd-load with args and returns its JSON report and table.
func runLoad(t *testing.T, s *server, args ...string) (*Report, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "report.json")
	args = append(args, "--url", s.base, "--token", s.token, "--json", out, "--timeout", "2m")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("scimd-load %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, stdout.String(), stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr is not a terminal, yet got %q", stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, b)
	}
	return &rep, stdout.String()
}

func kindOf(t *testing.T, rep *Report, kind string) Stats {
	t.Helper()
	for _, k := range rep.Kinds {
		if k.Kind == kind {
			return k
		}
	}
	t.Fatalf("report has no kind %q: %+v", kind, rep.Kinds)
	return Stats{}
}

func checkLatencies(t *testing.T, s Stats) {
	t.Helper()
	if s.Errors != 0 || s.Sampled != s.Count || s.Count == 0 {
		t.Errorf("%s: count %d, errors %d, sampled %d", s.Kind, s.Count, s.Errors, s.Sampled)
	}
	if !(s.P50Ms > 0 && s.P50Ms <= s.P90Ms && s.P90Ms <= s.P99Ms && s.P99Ms <= s.MaxMs) || s.PerSec <= 0 {
		t.Errorf("%s: inconsistent numbers %+v", s.Kind, s)
	}
}

func TestScenariosAgainstScimd(t *testing.T) {
	s := startServer(t)
	const users, groups, memberships = 60, 6, 150

	rep, table := runLoad(t, s, "sync", "--users", "60", "--groups", "6", "--memberships", "150",
		"--batch", "20", "--concurrency", "4")
	if rep.Scenario != "sync" || rep.Total.Errors != 0 {
		t.Fatalf("sync report: %+v", rep)
	}
	if k := kindOf(t, rep, kindCreateUser); k.Count != users {
		t.Errorf("created %d users, want %d", k.Count, users)
	}
	if k := kindOf(t, rep, kindCreateGroup); k.Count != groups {
		t.Errorf("created %d groups, want %d", k.Count, groups)
	}
	checkLatencies(t, kindOf(t, rep, kindCreateUser))
	checkLatencies(t, kindOf(t, rep, kindAddMembers))
	for _, want := range []string{"create-user", "patch-add-members", "p99 ms", "commit-to-role-applied"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	// scimd exports the histogram: every SCIM write reached the reconciler.
	if l := rep.CommitToApplied; l == nil || l.Count == 0 || l.P50Ms <= 0 || l.P99Ms < l.P50Ms {
		t.Errorf("commit-to-applied: %+v (%s)", rep.CommitToApplied, rep.MetricsNote)
	}
	// The server holds what the simulator pushed.
	var gs struct {
		Groups []struct {
			DisplayName string
			Members     []string
		}
	}
	s.admin(t, "/groups", &gs)
	total := 0
	for _, g := range gs.Groups {
		total += len(g.Members)
	}
	if len(gs.Groups) != groups || total != memberships {
		t.Errorf("server has %d groups with %d memberships, want %d and %d", len(gs.Groups), total, groups, memberships)
	}
	// The default policy maps the first groups to roles: the reconciler
	// gave those members access.
	var tms struct {
		Teammates []struct{ Access bool }
	}
	s.admin(t, "/teammates", &tms)
	granted := 0
	for _, tm := range tms.Teammates {
		if tm.Access {
			granted++
		}
	}
	if granted == 0 {
		t.Errorf("no teammate got access after the sync")
	}

	// A second sync of the same names creates nothing new and still passes.
	rep, _ = runLoad(t, s, "sync", "--users", "60", "--groups", "6", "--memberships", "150", "--batch", "20")
	if rep.Total.Errors != 0 || kindOf(t, rep, kindLookup).Count != users+groups {
		t.Errorf("re-sync: %+v", rep.Kinds)
	}

	rep, _ = runLoad(t, s, "churn", "--rate", "100", "--duration", "1500ms", "--concurrency", "4")
	changes := 0
	for _, k := range rep.Kinds {
		if k.Errors != 0 {
			t.Errorf("churn %s: %d errors (%v)", k.Kind, k.Errors, rep.FirstErrors)
		}
		changes += k.Count
	}
	if changes == 0 || changes > 100*3 {
		t.Errorf("churn made %d changes at --rate 100 for 1.5 s", changes)
	}
	if l := rep.CommitToApplied; l == nil || l.Count == 0 {
		t.Errorf("churn commit-to-applied: %+v (%s)", rep.CommitToApplied, rep.MetricsNote)
	}

	rep, _ = runLoad(t, s, "read", "--duration", "1s", "--concurrency", "4", "--miss-ratio", "0.2")
	checkLatencies(t, kindOf(t, rep, kindRead))
	if rep.CommitToApplied != nil && rep.CommitToApplied.Count != 0 {
		t.Errorf("reads caused %d commits", rep.CommitToApplied.Count)
	}
}

func TestReadSeedsAnEmptyServer(t *testing.T) {
	s := startServer(t)
	rep, _ := runLoad(t, s, "read", "--users", "10", "--groups", "2", "--memberships", "10",
		"--duration", "300ms", "--rate", "50", "--metrics-url", "none")
	if kindOf(t, rep, kindCreateUser).Count != 10 {
		t.Errorf("read did not seed 10 users: %+v", rep.Kinds)
	}
	checkLatencies(t, kindOf(t, rep, kindRead))
	if rep.CommitToApplied != nil || rep.MetricsNote == "" {
		t.Errorf("metrics were skipped, yet commitToApplied = %+v, note %q", rep.CommitToApplied, rep.MetricsNote)
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"bulk", "--url", "http://127.0.0.1:1/scim/v2", "--token", "x"},
		{"sync", "--token", "x"},
		{"sync", "--url", "http://127.0.0.1:1/scim/v2"},
		{"sync", "--url", "http://127.0.0.1:1/scim/v2", "--token", "x", "--users", "0"},
		{"sync", "--url", "http://127.0.0.1:1/scim/v2", "--token", "x", "--users", "10", "--groups", "2", "--memberships", "30"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("scimd-load %v: no error", args)
		}
	}
}

func TestHistogramDelta(t *testing.T) {
	page := func(b1, b2, b3, inf, sum float64) string {
		return strings.Join([]string{
			"# TYPE scimd_commit_to_applied_seconds histogram",
			`scimd_commit_to_applied_seconds_bucket{le="0.001"} ` + ftoa(b1),
			`scimd_commit_to_applied_seconds_bucket{le="0.002"} ` + ftoa(b2),
			`scimd_commit_to_applied_seconds_bucket{le="0.004"} ` + ftoa(b3),
			`scimd_commit_to_applied_seconds_bucket{le="+Inf"} ` + ftoa(inf),
			"scimd_commit_to_applied_seconds_sum " + ftoa(sum),
			"scimd_commit_to_applied_seconds_count " + ftoa(inf),
			"scimd_reconcile_queue_depth 0",
		}, "\n")
	}
	before, err := parseMetrics(strings.NewReader(page(5, 5, 5, 5, 0.002)))
	if err != nil {
		t.Fatal(err)
	}
	// 100 new observations: 50 under 1 ms, 40 in (1, 2] ms, 10 in (2, 4] ms.
	after, err := parseMetrics(strings.NewReader(page(55, 95, 105, 105, 0.202)))
	if err != nil {
		t.Fatal(err)
	}
	l := commitToApplied(before, after)
	if l.Count != 100 {
		t.Fatalf("count %d, want 100", l.Count)
	}
	near := func(got, want float64) bool { return got > want-1e-9 && got < want+1e-9 }
	if !near(l.MeanMs, 2) || !near(l.P50Ms, 1) || !near(l.P90Ms, 2) || !near(l.P99Ms, 3.8) || l.MaxBucketMs != 4 {
		t.Errorf("latency %+v, want mean 2, p50 1, p90 2, p99 3.8, max bucket 4", l)
	}
	if l.LastBoundMs != 4 {
		t.Errorf("last bound %v, want 4", l.LastBoundMs)
	}
	if none := commitToApplied(after, after); none.Count != 0 || none.P99Ms != 0 {
		t.Errorf("no new observations: %+v", none)
	}
}

func ftoa(f float64) string { b, _ := json.Marshal(f); return string(b) }

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.9: 90 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond} {
		if got := percentile(d, q); got != want {
			t.Errorf("p%v = %v, want %v", q*100, got, want)
		}
	}
}

func TestPlanGivesDistinctGroupsPerUser(t *testing.T) {
	p := plan(100, 7, 300)
	seen := map[[2]int]bool{}
	n := 0
	for g, us := range p {
		for _, u := range us {
			if seen[[2]int{g, u}] {
				t.Fatalf("user %d twice in group %d", u, g)
			}
			seen[[2]int{g, u}] = true
			n++
		}
	}
	if n != 300 {
		t.Errorf("%d memberships, want 300", n)
	}
}

// TestReportCountsRequestsOverTheMeasuredWindow checks that a move counts
// as two HTTP requests, that failed operations do not count in the rate,
// and that the total's window runs from the first operation to the last,
// not over setup before them.
func TestReportCountsRequestsOverTheMeasuredWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := newRecorder()
	for i := range 10 { // ten adds over 1 s, the last failing
		var err error
		if i == 9 {
			err = errors.New("HTTP 500")
		}
		r.observe(kindAdd, t0.Add(time.Duration(i)*100*time.Millisecond), 100*time.Millisecond, err)
	}
	for i := range 5 { // five moves over the same second
		r.observe(kindMove, t0.Add(time.Duration(i)*200*time.Millisecond), 200*time.Millisecond, nil)
	}
	// The scenario took 4 s: 3 s of setup before the first operation.
	rep := r.report(config{scenario: "churn"}, t0.Add(-3*time.Second), 4*time.Second)
	tests := []struct {
		s                     Stats
		count, errs, requests int
		seconds, perSec       float64
	}{
		{kindOf(t, rep, kindAdd), 10, 1, 10, 1, 9},
		{kindOf(t, rep, kindMove), 5, 0, 10, 1, 10},
		{rep.Total, 15, 1, 20, 1, 19},
	}
	for _, tt := range tests {
		s := tt.s
		if s.Count != tt.count || s.Errors != tt.errs || s.Requests != tt.requests ||
			math.Abs(s.Seconds-tt.seconds) > 1e-9 || math.Abs(s.PerSec-tt.perSec) > 1e-9 {
			t.Errorf("%s: count %d errors %d requests %d over %.3f s = %.3f/s; want %d %d %d over %.3f s = %.3f/s",
				s.Kind, s.Count, s.Errors, s.Requests, s.Seconds, s.PerSec, tt.count, tt.errs, tt.requests, tt.seconds, tt.perSec)
		}
	}
	if rep.Seconds != 4 {
		t.Errorf("report seconds %.3f, want the scenario's 4", rep.Seconds)
	}
}

// TestBulkSync: --bulk sends the sync as POST /Bulk requests and the
// server ends up with what a request-per-operation sync leaves; a second
// bulk sync finds the existing resources.
func TestBulkSync(t *testing.T) {
	s := startServer(t)
	const users, groups, memberships = 50, 5, 120
	rep, _ := runLoad(t, s, "sync", "--users", "50", "--groups", "5", "--memberships", "120",
		"--batch", "10", "--bulk", "20", "--concurrency", "3")
	if rep.Total.Errors != 0 {
		t.Fatalf("bulk sync: %+v %v", rep.Kinds, rep.FirstErrors)
	}
	if k := kindOf(t, rep, kindBulkUsers); k.Count != 3 { // 20 + 20 + 10 users
		t.Errorf("%d bulk user requests, want 3", k.Count)
	}
	checkLatencies(t, kindOf(t, rep, kindBulkMembers))
	var gs struct {
		Groups []struct{ Members []string }
	}
	s.admin(t, "/groups", &gs)
	total := 0
	for _, g := range gs.Groups {
		total += len(g.Members)
	}
	if len(gs.Groups) != groups || total != memberships {
		t.Errorf("server has %d groups with %d memberships, want %d and %d", len(gs.Groups), total, groups, memberships)
	}
	rep, _ = runLoad(t, s, "sync", "--users", "50", "--groups", "5", "--memberships", "120", "--batch", "10", "--bulk", "20")
	if rep.Total.Errors != 0 {
		t.Errorf("bulk re-sync: %+v %v", rep.Kinds, rep.FirstErrors)
	}
}
