package app_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scimd/scimd/audit"
)

var metricToken = regexp.MustCompile(`\b(scimd_[a-z0-9_]+|process_[a-z0-9_]+|go_[a-z0-9_]+)\b`)

// TestMetricsDocumented checks that every scimd_* metric the real server
// registers is described in docs/operations.md, and that the alert rules
// and the Grafana dashboard name only metrics the server exports.
func TestMetricsDocumented(t *testing.T) {
	e := newEnv(t)
	names := map[string]bool{}
	for _, n := range e.app.MetricNames() {
		names[n] = true
	}
	if !names["scimd_build_info"] || !names["scimd_http_requests_total"] {
		t.Fatalf("MetricNames() = %v: the server's metrics are missing", e.app.MetricNames())
	}
	root := filepath.Join("..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	for n := range names {
		if strings.HasPrefix(n, "scimd_") && !strings.Contains(string(doc), "| `"+n+"` |") {
			t.Errorf("%s is registered by the server but has no row in the metrics table of docs/operations.md (name, type, labels, meaning, what to alert on)", n)
		}
	}
	known := func(m string) bool {
		if strings.HasPrefix(m, "process_") || strings.HasPrefix(m, "go_") {
			return true // runtime collectors, registered by the binary only
		}
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(m, suffix); ok && names[base] {
				return true
			}
		}
		return false
	}
	for _, row := range regexp.MustCompile("(?m)^\\| `(scimd_[a-z0-9_]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		if !names[row[1]] {
			t.Errorf("docs/operations.md documents %s, which the server does not register", row[1])
		}
	}
	alerts, err := os.ReadFile(filepath.Join(root, "examples", "deploy", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range metricToken.FindAllString(string(alerts), -1) {
		if !known(m) {
			t.Errorf("alerts.yaml uses %s, which the server does not export", m)
		}
	}
	raw, err := os.ReadFile(filepath.Join(root, "examples", "deploy", "grafana", "scimd-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("scimd-dashboard.json: %v", err)
	}
	for _, p := range dash.Panels {
		for _, q := range p.Targets {
			ms := metricToken.FindAllString(q.Expr, -1)
			if len(ms) == 0 {
				t.Errorf("dashboard panel %q: query %q names no metric", p.Title, q.Expr)
			}
			for _, m := range ms {
				if !known(m) {
					t.Errorf("dashboard panel %q uses %s, which the server does not export", p.Title, m)
				}
			}
		}
	}
}

// metricValue returns the value of an unlabelled gauge or counter.
func metricValue(t *testing.T, e *env, name string) float64 {
	t.Helper()
	mfs, err := e.app.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestAuditVerifyMetrics(t *testing.T) {
	e := newEnv(t)
	alice := e.createUser("alice@example.com", nil)
	if metricValue(t, e, "scimd_audit_verify_last_success_timestamp_seconds") != 0 {
		t.Fatal("verified before the first run")
	}
	if res := e.app.VerifyAudit(context.Background()); !res.OK {
		t.Fatalf("VerifyAudit on a real run = %+v", res)
	}
	if v := metricValue(t, e, "scimd_audit_verified_events"); v < 2 {
		t.Errorf("scimd_audit_verified_events = %v", v)
	}
	if v := metricValue(t, e, "scimd_audit_verify_last_success_timestamp_seconds"); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success = %v", v)
	}
	if v := metricValue(t, e, "scimd_store_writes_disabled"); v != 0 {
		t.Errorf("scimd_store_writes_disabled = %v on a healthy store", v)
	}
	created := e.audit("teammate=" + alice + "&type=" + audit.TypeUserCreated)
	if len(created) != 1 {
		t.Fatalf("user created events: %d", len(created))
	}
	e.stop()
	tamper(t, e.data, `UPDATE audit SET data = json_set(data, '$.actor.name', 'someone') WHERE seq = ?`, created[0].Seq)
	e.start()
	if res := e.app.VerifyAudit(context.Background()); res.OK || res.BrokenAt != created[0].Seq {
		t.Fatalf("VerifyAudit after an edit = %+v", res)
	}
	if v := metricValue(t, e, "scimd_audit_verify_failures_total"); v != 1 {
		t.Errorf("scimd_audit_verify_failures_total = %v, want 1", v)
	}
}
