package delivery

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/store"
	"github.com/scimd/scimd/scim/store/sqlite"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// openStore opens a real store in dir.
func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	b, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.Options{Backend: b, Records: Records(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newService(t *testing.T, st *store.Store, cfg Config) *Service {
	t.Helper()
	s, err := New(Options{Store: st, Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		RequireAdmin: func(h http.Handler) http.Handler { return h }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// appendEntries appends n feed entries, one transaction each.
func appendEntries(t *testing.T, st *store.Store, n int, typ string) {
	t.Helper()
	for i := range n {
		err := st.Write(context.Background(), func(tx *store.WriteTxn) error {
			return tx.AppendFeed("u"+strconv.Itoa(i), typ, map[string]any{"changes": []string{typ}})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func register(t *testing.T, s *Service, url string, events ...string) Endpoint {
	t.Helper()
	zero := uint64(0)
	e, err := s.registry.create(context.Background(), Registration{URL: url, Secret: testSecret, Events: events, After: &zero},
		audit.Actor{Kind: "admin", Name: "test"}, "")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func endpointNow(st *store.Store, id string) Endpoint {
	e, _ := endpointIn(st.Read(), id)
	if e == nil {
		return Endpoint{}
	}
	return *e
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestGonePausesAtOnce: 410 Gone asks the sender to stop: the endpoint is
// paused after one attempt, whatever MaxFailures is.
func TestGonePausesAtOnce(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	var mu sync.Mutex
	hits := 0
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		http.Error(w, "unsubscribed", http.StatusGone)
	}))
	defer rc.Close()
	s := newService(t, st, Config{MinBackoff: time.Millisecond, MaxFailures: 100})
	stop := s.Start()
	defer stop()
	e := register(t, s, rc.URL)
	appendEntries(t, st, 2, "teammate.created")
	waitUntil(t, "the pause", func() bool { return endpointNow(st, e.ID).Paused })
	got := endpointNow(st, e.ID)
	if got.Failures != 1 || got.Cursor != 0 {
		t.Fatalf("endpoint after 410 = %+v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 1 {
		t.Fatalf("%d attempts, want 1", hits)
	}
}

// TestRedirectIsAFailure: scimd does not follow redirects (the target of a
// redirect never saw the registration); the error says so.
func TestRedirectIsAFailure(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	rc := httptest.NewServer(http.RedirectHandler("http://example.invalid/elsewhere", http.StatusFound))
	defer rc.Close()
	s := newService(t, st, Config{MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxFailures: 2})
	stop := s.Start()
	defer stop()
	e := register(t, s, rc.URL)
	appendEntries(t, st, 1, "teammate.created")
	waitUntil(t, "the pause", func() bool { return endpointNow(st, e.ID).Paused })
	if got := endpointNow(st, e.ID); got.Failures != 2 || got.LastError == "" || got.Cursor != 0 {
		t.Fatalf("endpoint after redirects = %+v", got)
	}
}

// TestStopAbandonsAttemptAndRestartRepeatsIt: an attempt in flight when
// delivery stops is repeated, with the same webhook-id, after a restart on
// the same data; the entries it does not want are never sent.
func TestStopAbandonsAttemptAndRestartRepeatsIt(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	var mu sync.Mutex
	var ids []string
	hang := true
	arrived := make(chan struct{}, 10)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // the server notices a gone client only after the body
		mu.Lock()
		ids = append(ids, r.Header.Get(HeaderID))
		h := hang
		mu.Unlock()
		arrived <- struct{}{}
		if h {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer rc.Close()
	s := newService(t, st, Config{Timeout: time.Minute})
	stop := s.Start()
	e := register(t, s, rc.URL, "teammate.deleted")
	appendEntries(t, st, 3, "teammate.created")
	appendEntries(t, st, 1, "teammate.deleted")
	<-arrived
	stop()
	if got := endpointNow(st, e.ID); got.Cursor >= 4 {
		t.Fatalf("cursor after stop = %d: advanced past the entry in flight", got.Cursor)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = openStore(t, dir)
	defer st.Close()
	mu.Lock()
	hang = false
	mu.Unlock()
	s = newService(t, st, Config{Timeout: time.Minute})
	stop = s.Start()
	defer stop()
	waitUntil(t, "the repeated delivery", func() bool { return endpointNow(st, e.ID).Cursor == 4 })
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 2 || ids[0] != "4" || ids[1] != "4" {
		t.Fatalf("webhook-ids sent = %v, want [4 4]", ids)
	}
}
