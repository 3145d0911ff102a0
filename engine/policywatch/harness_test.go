package policywatch_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/policywatch"
)

const (
	testDebounce = 100 * time.Millisecond
	waitTimeout  = 20 * time.Second // generous: a loaded 2-core CI machine
)

// harness runs a real Manager on a temporary directory and records what it
// reports through its callbacks.
type harness struct {
	t   *testing.T
	dir string
	m   *policywatch.Manager
	reg *prometheus.Registry

	logs lockedBuffer

	mu          sync.Mutex
	events      []audit.Event
	activated   []string // revisions given to OnActivate, in order
	reloads     []string // "trigger/result"
	lastReload  time.Time
	activations int // reloads that finished with "activated"
}

func newHarness(t *testing.T, dir string) *harness {
	t.Helper()
	h := &harness{t: t, dir: dir, reg: prometheus.NewRegistry()}
	m, err := policywatch.New(policywatch.Options{
		Dir:        dir,
		Logger:     slog.New(slog.NewJSONHandler(&h.logs, nil)),
		Registerer: h.reg,
		Debounce:   testDebounce,
		Resync:     -1, // the watcher alone must see every change
		Audit: func(_ context.Context, e audit.Event) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.events = append(h.events, e)
			return nil
		},
		OnActivate: func(_ context.Context, s *policy.Set) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.activated = append(h.activated, s.Revision())
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	policywatch.SetAfterReload(m, func(trigger, result string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.reloads = append(h.reloads, trigger+"/"+result)
		h.lastReload = time.Now()
		if result == "activated" {
			h.activations++
		}
	})
	h.m = m
	return h
}

func (h *harness) start() {
	h.t.Helper()
	if err := h.m.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		if err := h.m.Close(); err != nil {
			h.t.Error(err)
		}
	})
}

// activations returns a copy of the revisions given to OnActivate.
func (h *harness) activationsSoFar() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.activated...)
}

func (h *harness) eventsOfType(typ string) []audit.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []audit.Event
	for _, e := range h.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// waitFor polls cond until it holds or the timeout passes.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.t.Fatalf("timed out waiting for %s; reloads %v, activations %v, status %+v", what, h.reloads, h.activated, h.m.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitActive waits until rev is the active revision and the reload that
// activated it has finished (OnActivate included).
func (h *harness) waitActive(rev string) {
	h.t.Helper()
	h.waitFor("revision "+rev+" to be active", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		n := len(h.activated)
		s := h.m.Active()
		return n > 0 && h.activated[n-1] == rev && h.activations == n && s != nil && s.Revision() == rev
	})
}

// settle waits until the watcher has been quiet for several debounce
// periods, so that a second, unwanted reload would have happened.
func (h *harness) settle() {
	h.t.Helper()
	quiet := 5 * testDebounce
	h.waitFor("the watcher to settle", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return time.Since(h.lastReload) > quiet
	})
}

// expectActivations checks the exact sequence of activated revisions.
func (h *harness) expectActivations(want ...string) {
	h.t.Helper()
	got := h.activationsSoFar()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		h.t.Fatalf("activations %v, want %v", got, want)
	}
}

func revisionOf(t *testing.T, files map[string][]byte) string {
	t.Helper()
	src, err := policy.NewSource(files)
	if err != nil {
		t.Fatal(err)
	}
	return src.Revision()
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
