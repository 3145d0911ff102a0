package policywatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/policy"
)

// Triggers the manager itself uses. Callers of Reload pass their own, such
// as "api" (POST /api/v1/policy/reload) or "sighup".
const (
	TriggerStartup = "startup"
	TriggerWatch   = "watch"
	TriggerResync  = "resync"
)

// Defaults for Options.
const (
	DefaultDebounce = 200 * time.Millisecond
	DefaultResync   = time.Minute
)

// Options configure a Manager. Only Dir is required.
type Options struct {
	// Dir is the policies directory.
	Dir string
	// Logger receives activations and refusals; nil means slog.Default().
	Logger *slog.Logger
	// Registerer registers the manager's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Audit records policy.activated and policy.refused events; nil
	// records none. An error is logged; it does not undo an activation.
	Audit func(ctx context.Context, e audit.Event) error
	// OnActivate is called with each newly activated set, synchronously
	// and in activation order (no other reload runs meanwhile), so it should
	// hand long work, such as re-evaluating every teammate, to another
	// goroutine. It must not call Reload, which would wait for itself.
	OnActivate func(ctx context.Context, s *policy.Set)
	// FindPlan returns the audit details of the latest policy.planned
	// event of a revision ("seq", "liveRevision", "summary"), so that
	// policy.activated names the plan reviewers saw; nil for none.
	FindPlan func(ctx context.Context, revision string) (map[string]any, bool)
	// Debounce is the quiet period after the last file event before a
	// reload; 0 means DefaultDebounce.
	Debounce time.Duration
	// Resync is the period of a full re-read that catches anything the
	// watcher missed (a replaced root directory, lost events); 0 means
	// DefaultResync, a negative value disables it.
	Resync time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Shadow makes the manager hold a shadow set (see Shadow): its audit
	// events are policy.shadow.set and policy.shadow.refused.
	Shadow bool
}

// Manager holds the active policy set and replaces it when the policies
// directory changes. Its methods are safe for concurrent use.
type Manager struct {
	opts    Options
	dir     string
	log     *slog.Logger
	metrics *metrics
	now     func() time.Time

	active atomic.Pointer[policy.Set]

	reloadMu sync.Mutex // serialises reloads and OnActivate calls
	// refusedDigest is the digest of the last refused set; the watcher does
	// not refuse the same bytes twice. Guarded by reloadMu.
	refusedDigest string
	refusedErr    error

	mu     sync.RWMutex // guards status
	status Status

	started   atomic.Bool
	closeOnce sync.Once
	cancel    context.CancelFunc
	done      chan struct{}
	watcher   *fsnotify.Watcher

	// afterReload, when set (by tests), observes every reload's result.
	afterReload func(trigger, result string)
}

// New returns a Manager for opts.Dir. It loads nothing until Start or
// Reload.
func New(opts Options) (*Manager, error) {
	if opts.Dir == "" {
		return nil, errors.New("policywatch: Options.Dir is required")
	}
	m := &Manager{opts: opts, dir: filepath.Clean(opts.Dir), log: opts.Logger, now: opts.Now}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.log = m.log.With("component", "policy", "dir", m.dir)
	if m.now == nil {
		m.now = time.Now
	}
	if m.opts.Debounce <= 0 {
		m.opts.Debounce = DefaultDebounce
	}
	if m.opts.Resync == 0 {
		m.opts.Resync = DefaultResync
	}
	var err error
	if m.metrics, err = newMetrics(opts.Registerer); err != nil {
		return nil, fmt.Errorf("policywatch: %w", err)
	}
	m.status = Status{Dir: m.dir, State: StateNone}
	return m, nil
}

// Active returns the active set, or nil until a set has passed the gate.
func (m *Manager) Active() *policy.Set { return m.active.Load() }

// Status reports the active revision and the outcome of the last reload.
func (m *Manager) Status() Status {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st := m.status
	st.Files = append([]string(nil), st.Files...)
	st.Problems = append([]policy.Problem(nil), st.Problems...)
	if set := m.active.Load(); set != nil {
		ev := set.Evaluation()
		st.Evaluation = &ev
	}
	return st
}

// Ready reports whether a policy set is active, and if not, why: scimd
// starts with a refused policy but is not ready until one passes.
func (m *Manager) Ready() (bool, string) {
	if m.active.Load() != nil {
		return true, ""
	}
	st := m.Status()
	switch st.State {
	case StateRefused:
		return false, "no policy active: " + st.LastError
	default:
		return false, "no policy loaded yet from " + st.Dir
	}
}

// Candidate compiles and tests a policy set from in-memory files without
// activating it (for `scimd plan`). Paths are relative to a policies
// directory.
func (m *Manager) Candidate(ctx context.Context, files map[string][]byte) (*policy.Set, error) {
	return policy.LoadFiles(ctx, files)
}

// Reload reads the directory and activates it if its content changed and it
// passes the gate. It returns nil when the set was activated or is
// unchanged, and the *policy.RefusedError when it was refused (the previous
// set stays active). trigger names the cause in audit events and logs.
func (m *Manager) Reload(ctx context.Context, trigger string) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	result, err := m.reload(ctx, trigger)
	if result != "" {
		m.metrics.reloads.WithLabelValues(trigger, result).Inc()
	}
	if m.afterReload != nil {
		m.afterReload(trigger, result)
	}
	return err
}

// Reload results.
const (
	resultActivated = "activated"
	resultUnchanged = "unchanged"
	resultRefused   = "refused"
)

func (m *Manager) reload(ctx context.Context, trigger string) (string, error) {
	start := time.Now()
	src, err := policy.ReadDir(m.dir)
	if err != nil {
		re := &policy.RefusedError{Stage: policy.StageRead, Problems: []policy.Problem{{Message: err.Error()}}}
		if automatic(trigger) && m.refusedErr != nil && m.refusedDigest == "" {
			return resultUnchanged, m.refusedErr
		}
		m.refuse(ctx, trigger, "", re)
		return resultRefused, re
	}
	digest := src.Digest()
	if cur := m.active.Load(); cur != nil && cur.Digest() == digest {
		m.unchanged(cur)
		return resultUnchanged, nil
	}
	if automatic(trigger) && m.refusedErr != nil && m.refusedDigest == digest {
		return resultUnchanged, m.refusedErr
	}
	set, err := policy.Build(ctx, src, policy.BuildOptions{Now: m.now})
	m.metrics.duration.Observe(time.Since(start).Seconds())
	var re *policy.RefusedError
	switch {
	case errors.As(err, &re):
		m.refuse(ctx, trigger, digest, re)
		return resultRefused, re
	case err != nil: // the context ended: nothing was decided
		return "", fmt.Errorf("policywatch: reload: %w", err)
	}
	m.activate(ctx, trigger, set)
	return resultActivated, nil
}

// automatic reports whether a trigger comes from the watcher rather than a
// person, who may want an unchanged refused set re-checked and re-audited.
func automatic(trigger string) bool { return trigger == TriggerWatch || trigger == TriggerResync }

func (m *Manager) activate(ctx context.Context, trigger string, s *policy.Set) {
	prev := m.active.Swap(s)
	m.refusedDigest, m.refusedErr = "", nil
	m.mu.Lock()
	m.status = Status{
		Dir:      m.dir,
		State:    StateActive,
		Revision: s.Revision(),
		Commit:   s.Commit(),
		LoadedAt: s.LoadedAt(),
		Trigger:  trigger,
		Files:    s.Files(),
		Tests:    len(s.Tests()),
	}
	m.mu.Unlock()
	m.metrics.activations.Inc()
	m.metrics.ready.Set(1)
	m.metrics.activatedAt.Set(float64(s.LoadedAt().UnixNano()) / 1e9)
	attrs := []any{"revision", s.Revision(), "trigger", trigger, "files", len(s.Files()), "tests", len(s.Tests())}
	if prev != nil {
		attrs = append(attrs, "previous_revision", prev.Revision())
	}
	m.log.InfoContext(ctx, "policy activated", attrs...)
	var plan map[string]any
	if m.opts.FindPlan != nil && !m.opts.Shadow {
		plan, _ = m.opts.FindPlan(ctx, s.Revision())
	}
	m.audit(ctx, activatedEvent(m.now(), trigger, s, prev, plan))
	if m.opts.OnActivate != nil {
		m.opts.OnActivate(ctx, s)
	}
}

func (m *Manager) refuse(ctx context.Context, trigger, digest string, re *policy.RefusedError) {
	m.refusedDigest, m.refusedErr = digest, re
	now := m.now()
	active := m.active.Load()
	m.mu.Lock()
	m.status.State = StateRefused
	m.status.LastError = re.Error()
	m.status.LastErrorAt = now
	m.status.RefusedRevision = re.Revision
	m.status.Problems = append([]policy.Problem(nil), re.Problems...)
	m.mu.Unlock()
	m.metrics.refusals.WithLabelValues(string(re.Stage)).Inc()
	activeRev := ""
	if active != nil {
		activeRev = active.Revision()
	}
	m.log.ErrorContext(ctx, "policy refused; the previous policy stays active",
		"revision", re.Revision, "stage", string(re.Stage), "trigger", trigger,
		"active_revision", activeRev, "error", re.Error())
	m.audit(ctx, refusedEvent(now, trigger, m.dir, re, active))
}

// unchanged records that the directory holds the active set again, for
// example after a broken edit was reverted.
func (m *Manager) unchanged(cur *policy.Set) {
	m.refusedDigest, m.refusedErr = "", nil
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.status.State == StateRefused {
		m.log.Info("policy directory matches the active revision again", "revision", cur.Revision())
		m.status.State = StateActive
		m.status.LastError, m.status.LastErrorAt, m.status.RefusedRevision, m.status.Problems = "", time.Time{}, "", nil
	}
}

func (m *Manager) audit(ctx context.Context, e audit.Event) {
	if m.opts.Audit == nil {
		return
	}
	if m.opts.Shadow {
		e = shadowEvent(e)
	}
	if err := m.opts.Audit(ctx, e); err != nil {
		m.log.ErrorContext(ctx, "audit policy event", "type", e.Type, "revision", e.Target.ID, "error", err)
	}
}
