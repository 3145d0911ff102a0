package policywatch_test

import (
	"context"
	"errors"
	"log/slog"

	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/policy/policytest"
	"github.com/scimd/scimd/engine/policywatch"
)

func TestStartWithBadSetIsNotReady(t *testing.T) {
	dir := t.TempDir()
	if err := policytest.WriteDir(dir, policytest.FailingTest()); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, dir)
	if ok, why := h.m.Ready(); ok || !strings.Contains(why, "no policy loaded yet") {
		t.Errorf("before Start: Ready() = %v, %q", ok, why)
	}
	if st := h.m.Status(); st.State != policywatch.StateNone {
		t.Errorf("before Start: status %+v", st)
	}
	h.start() // must not fail
	if h.m.Active() != nil {
		t.Fatal("a refused set is active")
	}
	ok, why := h.m.Ready()
	if ok || !strings.Contains(why, "policy_test.rego:5: test data.scimd_test.test_admins_get_admin failed") {
		t.Errorf("Ready() = %v, %q; want not ready, naming the failing test", ok, why)
	}
	if st := h.m.Status(); st.State != policywatch.StateRefused || st.Revision != "" {
		t.Errorf("status %+v", st)
	}
	e := h.eventsOfType(audit.TypePolicyRefused)
	if len(e) != 1 || e[0].Actor.Name != policywatch.TriggerStartup || e[0].PolicyRevision != "" {
		t.Fatalf("refusal events %+v", e)
	}
	if metricValue(t, h.reg, "scimd_policy_ready") != 0 {
		t.Error("ready gauge set")
	}

	fixed := policytest.Minimal()
	writeFile(t, filepath.Join(dir, "policy_test.rego"), fixed["policy_test.rego"])
	rev := revisionOf(t, fixed)
	h.waitActive(rev)
	if ok, why := h.m.Ready(); !ok {
		t.Errorf("Ready() = false, %q after a good set", why)
	}
	if metricValue(t, h.reg, "scimd_policy_ready") != 1 || metricValue(t, h.reg, "scimd_policy_activations_total") != 1 {
		t.Error("metrics not updated on activation")
	}
	act := h.eventsOfType(audit.TypePolicyActivated)
	if len(act) != 1 || act[0].Change.From != nil || act[0].Details["previousRevision"] != nil {
		t.Errorf("first activation event %+v", act)
	}
}

func TestMissingDirectoryAppearsLater(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "policies")
	var activated atomic.Int32
	m, err := policywatch.New(policywatch.Options{
		Dir:        dir,
		Debounce:   testDebounce,
		Resync:     200 * time.Millisecond, // the watcher cannot see a root it could not watch
		Logger:     discardLogger(),
		OnActivate: func(context.Context, *policy.Set) { activated.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if ok, why := m.Ready(); ok || !strings.Contains(why, "read policy directory") {
		t.Errorf("Ready() = %v, %q", ok, why)
	}
	if err := policytest.WriteDir(dir, policytest.Minimal()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for m.Active() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("never activated; status %+v", m.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if activated.Load() != 1 {
		t.Errorf("%d activations", activated.Load())
	}
}

func TestManualReload(t *testing.T) {
	dir := t.TempDir()
	if err := policytest.WriteDir(dir, policytest.Minimal()); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, dir) // not started: Reload works without the watcher
	ctx := context.Background()
	if err := h.m.Reload(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	rev1 := revisionOf(t, policytest.Minimal())
	h.expectActivations(rev1)
	if err := h.m.Reload(ctx, "sighup"); err != nil {
		t.Fatal(err)
	}
	h.expectActivations(rev1) // unchanged: not re-activated

	v2 := policytest.WithMarker("v2")
	writeFile(t, filepath.Join(dir, "policy.rego"), v2["policy.rego"])
	if err := h.m.Reload(ctx, "sighup"); err != nil {
		t.Fatal(err)
	}
	h.expectActivations(rev1, revisionOf(t, v2))
	act := h.eventsOfType(audit.TypePolicyActivated)
	if e := act[len(act)-1]; e.Actor.Name != "sighup" || h.m.Status().Trigger != "sighup" {
		t.Errorf("trigger not recorded: %+v", e)
	}

	// A broken edit, then a revert to the active bytes: the manager is
	// active again without re-activating.
	writeFile(t, filepath.Join(dir, "policy.rego"), policytest.SyntaxError()["policy.rego"])
	var re *policy.RefusedError
	if err := h.m.Reload(ctx, "api"); !errors.As(err, &re) || re.Stage != policy.StageParse {
		t.Fatalf("Reload = %v", err)
	}
	writeFile(t, filepath.Join(dir, "policy.rego"), v2["policy.rego"])
	if err := h.m.Reload(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	if st := h.m.Status(); st.State != policywatch.StateActive || st.LastError != "" {
		t.Errorf("status after revert %+v", st)
	}
	h.expectActivations(rev1, revisionOf(t, v2))
}

func TestCandidateDoesNotActivate(t *testing.T) {
	dir := t.TempDir()
	if err := policytest.WriteDir(dir, policytest.Minimal()); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, dir)
	h.start()
	before := h.m.Active()
	s, err := h.m.Candidate(context.Background(), policytest.WithMarker("candidate"))
	if err != nil || s == nil {
		t.Fatalf("Candidate = %v, %v", s, err)
	}
	if _, err := h.m.Candidate(context.Background(), policytest.FailingTest()); err == nil {
		t.Error("failing candidate accepted")
	}
	if h.m.Active() != before || len(h.activationsSoFar()) != 1 {
		t.Error("Candidate activated a set")
	}
}

func TestLifecycle(t *testing.T) {
	if _, err := policywatch.New(policywatch.Options{}); err == nil {
		t.Error("New without Dir succeeded")
	}
	reg := prometheus.NewRegistry()
	m, err := policywatch.New(policywatch.Options{Dir: t.TempDir(), Registerer: reg, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := policywatch.New(policywatch.Options{Dir: t.TempDir(), Registerer: reg}); err == nil {
		t.Error("a second manager registered the same metrics")
	}
	if err := m.Close(); err != nil { // Close before Start is harmless
		t.Error(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err == nil {
		t.Error("second Start succeeded")
	}
	cancel() // ending the context stops the watcher; Close still works
	if err := m.Close(); err != nil {
		t.Error(err)
	}
	if err := m.Close(); err != nil {
		t.Error(err)
	}
}

// Readers evaluate against whatever set is active while reloads swap it.
func TestConcurrentReadersDuringReloads(t *testing.T) {
	dir := t.TempDir()
	if err := policytest.WriteDir(dir, policytest.Minimal()); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, dir)
	h.start()
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := h.m.Active()
				d, err := s.Teammate(ctx, policy.TeammateInput{User: map[string]any{"userName": "a"}, Groups: []policy.Group{{DisplayName: "Admins"}}})
				if err != nil || d.Role != "admin" || d.Revision != s.Revision() {
					t.Errorf("decision %+v, %v", d, err)
					return
				}
				_ = h.m.Status()
				_, _ = h.m.Ready()
			}
		})
	}
	for i := range 5 {
		writeFile(t, filepath.Join(dir, "policy.rego"), policytest.WithMarker("m" + string(rune('0'+i)))["policy.rego"])
		if err := h.m.Reload(ctx, "api"); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestStatusTellsHowDecisionsAreEvaluated: the status shows the input
// paths the active policy reads and the rules folded once per revision.
func TestStatusTellsHowDecisionsAreEvaluated(t *testing.T) {
	dir := t.TempDir()
	if err := policytest.WriteDir(dir, policytest.Minimal()); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, dir)
	h.start()
	st := h.m.Status()
	if st.Evaluation == nil || len(st.Evaluation.InputPaths) == 0 {
		t.Fatalf("status without evaluation: %+v", st)
	}
	if !slices.Contains(st.Evaluation.FoldedRules, "data.scimd.roles") {
		t.Errorf("folded rules %v, want data.scimd.roles among them", st.Evaluation.FoldedRules)
	}
}
