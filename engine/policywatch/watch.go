package policywatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// maxWatchDepth bounds the directories watched below the root.
const maxWatchDepth = 32

// Start loads the directory (trigger "startup") and watches it until ctx
// ends or Close is called. A refused initial set is not an error: the
// manager then reports not ready (Ready) until a good set arrives. Start
// fails only if the watcher cannot be created, or on a second call.
func (m *Manager) Start(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("policywatch: Start called twice")
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("policywatch: create watcher: %w", err)
	}
	m.watcher = w
	// Watch before the first read, so that no change falls in between.
	if err := m.addTree(); err != nil {
		m.log.WarnContext(ctx, "watch policy directory", "error", err)
	}
	_ = m.Reload(ctx, TriggerStartup) // a refusal is audited and reported by Status
	loopCtx, cancel := context.WithCancel(ctx)
	m.cancel = cancel
	m.done = make(chan struct{})
	go m.loop(loopCtx)
	return nil
}

// Close stops watching and waits for an ongoing reload to finish. The
// active set stays available.
func (m *Manager) Close() error {
	var err error
	m.closeOnce.Do(func() {
		if m.cancel == nil {
			return
		}
		m.cancel()
		<-m.done
		err = m.watcher.Close()
	})
	if err != nil {
		return fmt.Errorf("policywatch: close watcher: %w", err)
	}
	return nil
}

// loop debounces file events into reloads: every relevant event restarts
// the quiet period, and the reload runs when it ends.
func (m *Manager) loop(ctx context.Context) {
	defer close(m.done)
	debounce := time.NewTimer(m.opts.Debounce)
	debounce.Stop()
	defer debounce.Stop()
	var resync <-chan time.Time
	if m.opts.Resync > 0 {
		t := time.NewTicker(m.opts.Resync)
		defer t.Stop()
		resync = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-m.watcher.Events:
			if !ok {
				return
			}
			if !m.relevant(ev) {
				continue
			}
			if ev.Has(fsnotify.Create) {
				m.watchNewDir(ev.Name)
			}
			debounce.Reset(m.opts.Debounce)
		case err, ok := <-m.watcher.Errors:
			if !ok {
				return
			}
			// Lost events (fsnotify.ErrEventOverflow) are made good by a full
			// re-read, which every reload is.
			m.log.WarnContext(ctx, "policy watcher", "error", err)
			debounce.Reset(m.opts.Debounce)
		case <-debounce.C:
			m.rewatchAndReload(ctx, TriggerWatch)
		case <-resync:
			m.rewatchAndReload(ctx, TriggerResync)
		}
	}
}

func (m *Manager) rewatchAndReload(ctx context.Context, trigger string) {
	// Re-add watches first: directories may have been replaced (git
	// checkout, ConfigMap swap), and fsnotify drops the watch of a removed
	// directory. Adding an existing watch is harmless.
	if err := m.addTree(); err != nil {
		m.log.WarnContext(ctx, "watch policy directory", "error", err)
	}
	_ = m.Reload(ctx, trigger) // refusals are audited, logged and counted
}

// relevant filters out events that cannot change the policy set: pure
// chmods, and dot-files below the root (editor swap files). Dot entries in
// the root itself count, because a Kubernetes ConfigMap update only renames
// ..data there.
func (m *Manager) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Clean(ev.Name)
	if strings.HasPrefix(filepath.Base(name), ".") && filepath.Dir(name) != m.dir {
		return false
	}
	return true
}

// watchNewDir starts watching a directory created in the tree, so that
// files written into it are seen before the next reload.
func (m *Manager) watchNewDir(name string) {
	if strings.HasPrefix(filepath.Base(name), ".") {
		return
	}
	if info, err := os.Stat(name); err == nil && info.IsDir() {
		if err := m.addTree(); err != nil {
			m.log.Warn("watch policy directory", "error", err)
		}
	}
}

// addTree watches the root and every directory below it that is not a dot
// directory, following symbolic links.
func (m *Manager) addTree() error {
	seen := map[string]bool{}
	var walk func(dir string, depth int) error
	walk = func(dir string, depth int) error {
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return fmt.Errorf("watch %s: %w", dir, err)
		}
		if seen[real] || depth > maxWatchDepth {
			return nil
		}
		seen[real] = true
		if err := m.watcher.Add(dir); err != nil {
			return fmt.Errorf("watch %s: %w", dir, err)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("watch %s: %w", dir, err)
		}
		var errs []error
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			p := filepath.Join(dir, e.Name())
			if info, err := os.Stat(p); err == nil && info.IsDir() {
				errs = append(errs, walk(p, depth+1))
			}
		}
		return errors.Join(errs...)
	}
	return walk(m.dir, 0)
}
