package policywatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/policy"
)

// ShadowOptions configure a Shadow.
type ShadowOptions struct {
	// Dir, when set, is a watched directory whose policy set becomes the
	// shadow set each time it changes and passes the gate.
	Dir string
	// Logger, Audit and Now are as in Options.
	Logger *slog.Logger
	Audit  func(ctx context.Context, e audit.Event) error
	Now    func() time.Time
	// OnChange receives each new shadow set, nil when it is cleared.
	OnChange func(s *policy.Set)
	// Debounce and Resync are as in Options, for Dir.
	Debounce, Resync time.Duration
}

// Shadow holds the shadow policy set: a candidate gated like the live set
// and evaluated beside it, whose decisions are never applied. It comes
// from a watched directory (ShadowOptions.Dir) or from Set and Clear (the
// API), the latest of them winning; a refused set is audited
// (policy.shadow.refused) and leaves the shadow set as it was.
type Shadow struct {
	opts ShadowOptions
	dir  *Manager // nil without a directory

	mu     sync.Mutex
	set    *policy.Set
	source string // "dir" or "api"
	setAt  time.Time
}

// NewShadow returns a Shadow; it loads nothing until Start.
func NewShadow(opts ShadowOptions) (*Shadow, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	sh := &Shadow{opts: opts}
	if opts.Dir != "" {
		m, err := New(Options{
			Dir: opts.Dir, Logger: opts.Logger.With("shadow", true), Audit: opts.Audit, Now: opts.Now,
			Debounce: opts.Debounce, Resync: opts.Resync, Shadow: true,
			OnActivate: func(_ context.Context, s *policy.Set) { sh.put(s, "dir") },
		})
		if err != nil {
			return nil, err
		}
		sh.dir = m
	}
	return sh, nil
}

// Start loads and watches the directory, if any.
func (sh *Shadow) Start(ctx context.Context) error {
	if sh.dir == nil {
		return nil
	}
	return sh.dir.Start(ctx)
}

// Close stops watching.
func (sh *Shadow) Close() error {
	if sh.dir == nil {
		return nil
	}
	return sh.dir.Close()
}

func (sh *Shadow) put(s *policy.Set, source string) {
	sh.mu.Lock()
	sh.set, sh.source, sh.setAt = s, source, sh.opts.Now()
	sh.mu.Unlock()
	if sh.opts.OnChange != nil {
		sh.opts.OnChange(s)
	}
}

// Active returns the shadow set, or nil.
func (sh *Shadow) Active() *policy.Set {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.set
}

// Set gates files (paths relative to a policies directory) exactly as a
// reload would and makes them the shadow set. A refusal is audited and
// returned as a *policy.RefusedError; the shadow set stays as it was.
func (sh *Shadow) Set(ctx context.Context, files map[string][]byte, actor audit.Actor) (*policy.Set, error) {
	set, err := policy.LoadFiles(ctx, files)
	var re *policy.RefusedError
	switch {
	case errors.As(err, &re):
		e := shadowEvent(refusedEvent(sh.opts.Now(), "api", "", re, sh.Active()))
		e.Actor = actor
		sh.audit(ctx, e)
		return nil, re
	case err != nil:
		return nil, fmt.Errorf("shadow policy: %w", err)
	}
	e := shadowEvent(activatedEvent(sh.opts.Now(), "api", set, sh.Active(), nil))
	e.Actor = actor
	sh.audit(ctx, e)
	sh.put(set, "api")
	return set, nil
}

// Clear removes the shadow set (until the directory, if any, changes).
func (sh *Shadow) Clear(ctx context.Context, actor audit.Actor) {
	prev := sh.Active()
	if prev == nil {
		return
	}
	sh.audit(ctx, audit.Event{
		Time: sh.opts.Now(), Type: audit.TypeShadowCleared, Actor: actor,
		Target:  audit.Target{Type: "Policy", ID: prev.Revision()},
		Change:  &audit.Change{From: prev.Revision()},
		Reasons: []string{fmt.Sprintf("shadow policy %s is no longer evaluated", prev.Revision())},
	})
	sh.put(nil, "api")
}

func (sh *Shadow) audit(ctx context.Context, e audit.Event) {
	if sh.opts.Audit == nil {
		return
	}
	if err := sh.opts.Audit(ctx, e); err != nil {
		sh.opts.Logger.ErrorContext(ctx, "audit shadow policy event", "type", e.Type, "error", err)
	}
}

// ShadowStatus is the state of the shadow set.
type ShadowStatus struct {
	Revision string    `json:"revision,omitempty"`
	Source   string    `json:"source,omitempty"` // "dir" or "api"
	SetAt    time.Time `json:"setAt,omitzero"`
	Files    []string  `json:"files,omitempty"`
	// Dir is the watched directory's status, when there is one: its last
	// refusal shows there.
	Dir *Status `json:"dir,omitempty"`
}

// Status reports the shadow set and the watched directory.
func (sh *Shadow) Status() ShadowStatus {
	sh.mu.Lock()
	st := ShadowStatus{Source: sh.source, SetAt: sh.setAt}
	if sh.set != nil {
		st.Revision, st.Files = sh.set.Revision(), sh.set.Files()
	}
	sh.mu.Unlock()
	if sh.dir != nil {
		ds := sh.dir.Status()
		st.Dir = &ds
	}
	return st
}

// shadowEvent turns a live policy event into its shadow counterpart.
func shadowEvent(e audit.Event) audit.Event {
	switch e.Type {
	case audit.TypePolicyActivated:
		e.Type = audit.TypeShadowSet
	case audit.TypePolicyRefused:
		e.Type = audit.TypeShadowRefused
	}
	for i, r := range e.Reasons {
		e.Reasons[i] = "shadow: " + r
	}
	return e
}
