package cluster_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scimd/scimd/engine/app"
	"github.com/scimd/scimd/engine/cluster"
	"github.com/scimd/scimd/scim/store/postgres/pgtest"
)

const adminToken = "cluster-test-admin-token-0123456789abcdef"

func get(t *testing.T, h http.Handler, path, token string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestStandbyWithoutLeader: while another session holds the leader lock
// and no leader has recorded its address, a member is a standby that
// answers 503 with Retry-After instead of forwarding; once the lock is
// free it takes over, and serves as the leader.
func TestStandbyWithoutLeader(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDatabase(t)
	ctx := context.Background()
	blocker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close(ctx)
	if _, err := blocker.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(0x7363696d6402)); err != nil {
		t.Fatal(err)
	}
	policies, err := filepath.Abs(filepath.Join("..", "..", "policies"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := cluster.Start(ctx, cluster.Config{
		App:       app.Config{Database: url, Data: t.TempDir(), Policies: policies, AdminToken: adminToken, Logger: log},
		Advertise: "http://127.0.0.1:1", Check: 20 * time.Millisecond, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	time.Sleep(100 * time.Millisecond) // several election rounds
	if n.Role() != "standby" {
		t.Fatalf("role = %s while another session holds the lock", n.Role())
	}
	tests := []struct {
		path, token string
		status      int
		retryAfter  bool
	}{
		{"/healthz", "", http.StatusOK, false},
		{"/readyz", "", http.StatusServiceUnavailable, false},
		{"/scim/v2/Users", "whatever", http.StatusServiceUnavailable, true},
		{"/api/v1/teammates", "whatever", http.StatusServiceUnavailable, true},
		{"/api/v1/cluster", "", http.StatusUnauthorized, false},
		{"/api/v1/cluster", "wrong", http.StatusUnauthorized, false},
	}
	for _, tc := range tests {
		w := get(t, n, tc.path, tc.token)
		if w.Code != tc.status || (w.Header().Get("Retry-After") != "") != tc.retryAfter {
			t.Errorf("GET %s = %d (Retry-After %q), want %d (Retry-After: %v)\n%s", tc.path, w.Code, w.Header().Get("Retry-After"), tc.status, tc.retryAfter, w.Body)
		}
	}
	if w := get(t, n, "/scim/v2/Users", "x"); w.Header().Get("Content-Type") != "application/scim+json" {
		t.Errorf("a SCIM request's 503 is not a SCIM error: %s", w.Header().Get("Content-Type"))
	}

	if _, err := blocker.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(0x7363696d6402)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for n.Role() != "leader" {
		if time.Now().After(deadline) {
			t.Fatalf("role = %s after the lock was freed", n.Role())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if w := get(t, n, "/readyz", ""); w.Code != http.StatusOK {
		t.Fatalf("leader /readyz = %d %s", w.Code, w.Body)
	}
	w := get(t, n, "/api/v1/cluster", adminToken)
	var view struct {
		Role   string
		Epoch  int64
		Leader struct{ URL string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &view); err != nil || w.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/cluster = %d %s %v", w.Code, w.Body, err)
	}
	if view.Role != "leader" || view.Epoch != 1 || view.Leader.URL != "http://127.0.0.1:1" {
		t.Fatalf("cluster view %+v", view)
	}
	if w := get(t, n, "/metrics", ""); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "scimd_leader 1") {
		t.Fatalf("/metrics lacks scimd_leader 1: %d", w.Code)
	}
}

// TestLeaderPrunesTheJournal: the leader deletes journal entries older than
// the retention, keeping the newest, and goes on writing after it.
func TestLeaderPrunesTheJournal(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDatabase(t)
	ctx := context.Background()
	policies, err := filepath.Abs(filepath.Join("..", "..", "policies"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := cluster.Start(ctx, cluster.Config{
		App:       app.Config{Database: url, Data: t.TempDir(), Policies: policies, AdminToken: adminToken, Logger: log},
		Advertise: "http://127.0.0.1:1", Check: 20 * time.Millisecond, Logger: log, JournalRetention: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	db, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	entries := func() (count, newest int64) {
		t.Helper()
		if err := db.QueryRow(ctx, `SELECT count(*), coalesce(max(seq), 0) FROM journal`).Scan(&count, &newest); err != nil {
			t.Fatal(err)
		}
		return count, newest
	}
	deadline := time.Now().Add(30 * time.Second)
	for n.Role() != "leader" || n.App() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("role %s: not leading", n.Role())
		}
		time.Sleep(10 * time.Millisecond)
	}
	w := httptest.NewRecorder()
	for i := range 5 {
		body := strings.NewReader(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"u` + string(rune('a'+i)) + `@example.com"}`)
		r := httptest.NewRequest(http.MethodPost, "/scim/v2/Users", body)
		r.Header.Set("Authorization", "Bearer "+adminToken)
		r.Header.Set("Content-Type", "application/scim+json")
		w = httptest.NewRecorder()
		n.ServeHTTP(w, r)
	}
	if count, _ := entries(); count < 2 {
		t.Fatalf("%d journal entries after five writes (last answer %d %s)", count, w.Code, w.Body)
	}
	for {
		count, newest := entries()
		if count == 1 && newest > 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("journal holds %d entries up to %d; want only the newest after the retention", count, newest)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
