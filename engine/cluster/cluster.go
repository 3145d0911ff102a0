// Package cluster runs one scimd process of several sharing a PostgreSQL
// database: exactly one leader, which holds a PostgreSQL advisory lock on a
// connection of its own and a fencing epoch that every write transaction
// checks, and standbys, which follow the leader's journal (LISTEN/NOTIFY
// and catch-up by sequence number) into a warm copy in memory and take
// over without reloading.
//
// The leader runs everything a single scimd runs (SCIM writes, the
// reconciler, policy activations, webhook delivery). A standby answers
// /healthz, /readyz (503: not the leader), /metrics and GET
// /api/v1/cluster itself and forwards every other request to the leader,
// or answers 503 with Retry-After while no leader is known. A leader that
// loses its lock connection, or finds its epoch taken, is deposed: it
// stops serving at once and Node.Deposed reports it, so that the process
// exits and its supervisor restarts it as a standby with a fresh load.
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scimd/scimd/engine/app"
	"github.com/scimd/scimd/scim/server"
	"github.com/scimd/scimd/scim/store"
	"github.com/scimd/scimd/scim/store/postgres"
)

// leaderLock is the advisory lock key the leader holds ("scimd" + 2).
const leaderLock = 0x7363696d6402

// ForwardedHeader marks a request a standby forwarded, so that it is never
// forwarded twice.
const ForwardedHeader = "X-Scimd-Forwarded-By"

// Config configures a Node.
type Config struct {
	// App is the configuration of the scimd the leader runs; App.Database
	// is the postgres:// URL.
	App app.Config
	// Advertise is the base URL (http://host:port) at which the other
	// members reach this one.
	Advertise string
	// Member names this process (default: host name, process id and a
	// random suffix).
	Member string
	// Check is how often a standby tries to take the lock and the leader
	// checks that it still holds it (default 250ms).
	Check time.Duration
	// JournalRetention is how long the leader keeps journal entries for
	// standbys to replay (default 1h); it prunes older ones every minute
	// (or every quarter of the retention, when shorter). A standby that
	// falls further behind finds a gap and is deposed, to restart with a
	// full load.
	JournalRetention time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// OnLeader, when set, is called once the process leads, with the app
	// it runs (for example to print a generated admin token).
	OnLeader func(*app.App)
	// Mount, when set, returns the handler the leader serves around the
	// app's (a web console in front of it), and what to close with it.
	Mount func(*app.App) (http.Handler, func(), error)
}

// Node is one member of the cluster. It is an http.Handler.
type Node struct {
	cfg      Config
	log      *slog.Logger
	backend  *postgres.Backend
	store    *store.Store
	reg      *prometheus.Registry
	leading  prometheus.Gauge
	lag      prometheus.Histogram
	applied  atomic.Uint64
	followOK atomic.Int64 // unix nanos of the last successful catch-up

	mu       sync.Mutex
	app      *app.App     // set once leading; guarded by mu
	handler  http.Handler // the leader's handler; guarded by mu
	unmount  func()       // closes what Mount made; guarded by mu
	leader   leaderInfo   // the last leader seen; guarded by mu
	role     atomic.Value // "standby", "leader" or "deposed"
	deposed  chan error
	stopOnce sync.Once
	cancel   context.CancelFunc
	done     sync.WaitGroup
	lockConn *pgx.Conn // the leader's lock connection; owned by the election loop
}

type leaderInfo struct {
	Member string    `json:"member"`
	URL    string    `json:"url"`
	Epoch  int64     `json:"epoch"`
	Since  time.Time `json:"since"`
}

// Start loads the state into memory, joins the cluster as a standby and
// begins following the journal and contending for leadership.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Check <= 0 {
		cfg.Check = 250 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.JournalRetention <= 0 {
		cfg.JournalRetention = time.Hour
	}
	if cfg.Member == "" {
		host, _ := os.Hostname()
		var r [3]byte
		_, _ = rand.Read(r[:])
		cfg.Member = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(r[:]))
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("member", cfg.Member), deposed: make(chan error, 1)}
	n.role.Store("standby")
	n.reg = prometheus.NewRegistry()
	if cfg.App.ProcessMetrics {
		n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	n.leading = prometheus.NewGauge(prometheus.GaugeOpts{Name: "scimd_leader",
		Help: "1 while this process is the cluster's leader (PostgreSQL), else 0."})
	n.lag = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "scimd_standby_lag_seconds",
		Help:    "Time from the leader's commit to this standby applying it.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)})
	n.reg.MustRegister(n.leading, n.lag)

	b, err := postgres.Open(ctx, cfg.App.Database)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	st, err := store.Open(ctx, store.Options{Backend: b, Logger: cfg.Logger, Registerer: n.reg, Records: app.Records()})
	if err != nil {
		b.Close()
		return nil, err
	}
	n.backend, n.store = b, st
	n.applied.Store(b.JournalSeq())
	n.followOK.Store(time.Now().UnixNano())
	n.log.Info("state loaded; joining as a standby", "store", postgres.Describe(cfg.App.Database),
		"journal", b.JournalSeq(), "duration", time.Since(started))

	runCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	followCtx, stopFollow := context.WithCancel(runCtx)
	followed := make(chan struct{})
	n.done.Add(3)
	go func() {
		defer n.done.Done()
		defer close(followed)
		n.follow(followCtx)
	}()
	go func() { defer n.done.Done(); n.heartbeat(runCtx) }()
	go func() { defer n.done.Done(); n.elect(runCtx, stopFollow, followed) }()
	return n, nil
}

// Deposed reports, once, why this process stopped being leader (or could
// no longer follow): the process should exit and be restarted.
func (n *Node) Deposed() <-chan error { return n.deposed }

// Role is "standby", "leader" or "deposed".
func (n *Node) Role() string { return n.role.Load().(string) }

func (n *Node) depose(err error) {
	n.role.Store("deposed")
	n.leading.Set(0)
	select {
	case n.deposed <- err:
	default:
	}
}

func (n *Node) follow(ctx context.Context) {
	err := n.backend.Follow(ctx, n.store, time.Second, func(a postgres.Applied) {
		n.applied.Store(a.Seq)
		n.followOK.Store(time.Now().UnixNano())
		n.lag.Observe(time.Since(a.Committed).Seconds())
	})
	if err != nil && ctx.Err() == nil {
		n.log.Error("standby cannot follow the journal", "err", err)
		n.depose(fmt.Errorf("follow the journal: %w", err))
	}
}

// elect contends for the advisory lock; once it has it, it takes the next
// epoch, catches up, starts the app, and then watches the lock.
func (n *Node) elect(ctx context.Context, stopFollow context.CancelFunc, followed <-chan struct{}) {
	tick := time.NewTicker(n.cfg.Check)
	defer tick.Stop()
	for {
		if n.Role() == "deposed" {
			return
		}
		won, err := n.tryLock(ctx)
		if err != nil && ctx.Err() == nil {
			n.log.Warn("leader election", "err", err)
		}
		if won {
			break
		}
		n.refreshLeader(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	if err := n.promote(ctx, stopFollow, followed); err != nil {
		if ctx.Err() == nil {
			n.log.Error("taking over as leader failed", "err", err)
			n.depose(fmt.Errorf("take over: %w", err))
		}
		return
	}
	pruned := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(pruned) >= min(time.Minute, n.cfg.JournalRetention/4) {
			n.pruneJournal(ctx)
			pruned = time.Now()
		}
		if err := n.checkLock(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			n.log.Error("deposed: lost the leader lock's connection to PostgreSQL", "err", err)
			n.depose(fmt.Errorf("lost the leader lock: %w", err))
			return
		}
		if err := n.store.Failed(); err != nil {
			n.log.Error("deposed: a write failed (fenced or database lost)", "err", err)
			n.depose(fmt.Errorf("write failed: %w", err))
			return
		}
	}
}

// pruneJournal deletes the journal entries older than the retention.
func (n *Node) pruneJournal(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	deleted, err := n.backend.PruneJournal(cctx, time.Now().Add(-n.cfg.JournalRetention))
	switch {
	case err != nil && ctx.Err() == nil:
		n.log.Warn("pruning the journal failed", "err", err)
	case deleted > 0:
		n.log.Info("journal pruned", "entries", deleted, "retention", n.cfg.JournalRetention)
	}
}

func (n *Node) tryLock(ctx context.Context) (bool, error) {
	if n.lockConn == nil || n.lockConn.IsClosed() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgx.Connect(cctx, n.cfg.App.Database)
		cancel()
		if err != nil {
			return false, fmt.Errorf("connect for the leader lock: %w", err)
		}
		n.lockConn = conn
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var won bool
	if err := n.lockConn.QueryRow(cctx, `SELECT pg_try_advisory_lock($1)`, int64(leaderLock)).Scan(&won); err != nil {
		n.lockConn.Close(context.Background())
		return false, fmt.Errorf("try the leader lock: %w", err)
	}
	return won, nil
}

func (n *Node) checkLock(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	// The lock lives as long as this session: the session's own row in
	// pg_locks proves it still holds it.
	var held bool
	err := n.lockConn.QueryRow(cctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
		AND pid = pg_backend_pid() AND granted AND ((classid::bigint << 32) | objid::bigint) = $1)`, int64(leaderLock)).Scan(&held)
	if err != nil {
		return err
	}
	if !held {
		return errors.New("advisory lock no longer held")
	}
	return nil
}

func (n *Node) refreshLeader(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var l leaderInfo
	err := n.backend.Pool().QueryRow(cctx, `SELECT member, url, epoch, since FROM leader WHERE id = 1`).Scan(&l.Member, &l.URL, &l.Epoch, &l.Since)
	if err != nil {
		return
	}
	n.mu.Lock()
	n.leader = l
	n.mu.Unlock()
}

// promote makes this process the leader: the next epoch (which waits for
// any transaction of the previous leader still holding the epoch row, and
// fences every later one), the rest of the journal, then the app.
func (n *Node) promote(ctx context.Context, stopFollow context.CancelFunc, followed <-chan struct{}) error {
	started := time.Now()
	var epoch int64
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := n.backend.Pool().QueryRow(cctx, `UPDATE leader SET epoch = epoch + 1, member = $1, url = $2, since = now()
		WHERE id = 1 RETURNING epoch`, n.cfg.Member, n.cfg.Advertise).Scan(&epoch)
	if err != nil {
		return fmt.Errorf("take the next epoch: %w", err)
	}
	n.backend.Fence(epoch)
	stopFollow()
	<-followed
	if _, err := n.backend.CatchUp(cctx, n.store, func(a postgres.Applied) { n.applied.Store(a.Seq) }); err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	caughtUp := time.Since(started)
	cfg := n.cfg.App
	cfg.Store = n.store
	cfg.ProcessMetrics = false // the node's registry has them already
	a, err := app.Open(ctx, cfg)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	handler, unmount := a.Handler, func() {}
	if n.cfg.Mount != nil {
		if handler, unmount, err = n.cfg.Mount(a); err != nil {
			a.Close()
			return fmt.Errorf("start: %w", err)
		}
	}
	n.mu.Lock()
	n.app, n.handler, n.unmount = a, handler, unmount
	n.leader = leaderInfo{Member: n.cfg.Member, URL: n.cfg.Advertise, Epoch: epoch, Since: time.Now().UTC()}
	n.mu.Unlock()
	n.role.Store("leader")
	n.leading.Set(1)
	n.log.Info("leading", "epoch", epoch, "journal", n.backend.JournalSeq(),
		"caughtUp", caughtUp, "ready", time.Since(started))
	if n.cfg.OnLeader != nil {
		n.cfg.OnLeader(a)
	}
	return nil
}

// heartbeat records this member in the members table every second.
func (n *Node) heartbeat(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if n.Role() == "leader" {
			n.applied.Store(n.backend.JournalSeq())
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := n.backend.Pool().Exec(cctx, `INSERT INTO members (member, url, role, applied, seen) VALUES ($1, $2, $3, $4, now())
			ON CONFLICT (member) DO UPDATE SET url = excluded.url, role = excluded.role, applied = excluded.applied, seen = excluded.seen`,
			n.cfg.Member, n.cfg.Advertise, n.Role(), int64(n.applied.Load()))
		cancel()
		if err != nil && ctx.Err() == nil {
			n.log.Debug("cluster heartbeat", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Drain tells the app's long-lived requests to finish (see app.Drain).
func (n *Node) Drain() {
	if a := n.currentApp(); a != nil {
		a.Drain()
	}
}

// App is the app this process runs as leader, or nil.
func (n *Node) App() *app.App { return n.currentApp() }

func (n *Node) currentApp() *app.App {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.app
}

// Close leaves the cluster: it stops the loops, closes the app (or the
// store), releases the lock and removes this member's row.
func (n *Node) Close() error {
	var err error
	n.stopOnce.Do(func() {
		n.cancel()
		n.done.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = n.backend.Pool().Exec(ctx, `DELETE FROM members WHERE member = $1`, n.cfg.Member)
		if n.lockConn != nil {
			n.lockConn.Close(ctx)
		}
		n.mu.Lock()
		unmount := n.unmount
		n.mu.Unlock()
		if unmount != nil {
			unmount()
		}
		if a := n.currentApp(); a != nil {
			err = a.Close()
		} else {
			err = n.store.Close()
		}
		n.leading.Set(0)
	})
	return err
}

// ServeHTTP serves a request: the leader's app, or the standby's answers
// and forwarding.
func (n *Node) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/v1/cluster":
		n.serveCluster(w, r)
		return
	case "/metrics":
		g := prometheus.Gatherers{n.reg}
		if a := n.currentApp(); a != nil {
			g = append(g, a.Registry)
		}
		promhttp.HandlerFor(g, promhttp.HandlerOpts{}).ServeHTTP(w, r)
		return
	}
	role := n.Role()
	if role == "leader" {
		n.mu.Lock()
		h := n.handler
		n.mu.Unlock()
		h.ServeHTTP(w, r)
		return
	}
	switch r.URL.Path {
	case "/healthz":
		if role == "deposed" || time.Since(time.Unix(0, n.followOK.Load())) > 10*time.Second {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "failing", "role": role})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "role": role, "applied": n.applied.Load()})
		return
	case "/readyz":
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "reason": "this process is a " + role + ", not the leader", "leader": n.leaderURL()})
		return
	}
	n.forward(w, r, role)
}

func (n *Node) leaderURL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.leader.Member == n.cfg.Member {
		return ""
	}
	return n.leader.URL
}

// forward sends r to the leader, or answers 503 with Retry-After.
func (n *Node) forward(w http.ResponseWriter, r *http.Request, role string) {
	target := n.leaderURL()
	if role == "deposed" || target == "" || r.Header.Get(ForwardedHeader) != "" {
		unavailable(w, r, "no leader is known yet; retry shortly")
		return
	}
	u, err := url.Parse(target)
	if err != nil {
		unavailable(w, r, "the leader's address is invalid")
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(ForwardedHeader, n.cfg.Member)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			n.log.Warn("forwarding to the leader failed", "leader", target, "err", err)
			unavailable(w, r, "the leader cannot be reached; retry shortly")
		},
	}
	proxy.ServeHTTP(w, r)
}

// unavailable answers 503 with Retry-After, as a SCIM error under
// /scim/v2 and as JSON elsewhere.
func unavailable(w http.ResponseWriter, r *http.Request, detail string) {
	w.Header().Set("Retry-After", "1")
	if strings.HasPrefix(r.URL.Path, server.BasePath) {
		w.Header().Set("Content-Type", "application/scim+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:Error"},
			"status":  "503", "detail": detail,
		})
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Member is one row of GET /api/v1/cluster's members.
type Member struct {
	Member  string    `json:"member"`
	URL     string    `json:"url"`
	Role    string    `json:"role"`
	Applied uint64    `json:"applied"`
	Seen    time.Time `json:"seen"`
}

// serveCluster answers GET /api/v1/cluster on any member, for a token
// with the read scope: the members seen in the last 10 s, the leader and
// its epoch.
func (n *Node) serveCluster(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use GET"})
		return
	}
	scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	digest := server.Digest(strings.TrimSpace(secret))
	tok, found := n.store.Read().TokenByDigest(digest)
	if !ok || !strings.EqualFold(scheme, "Bearer") || !found ||
		subtle.ConstantTimeCompare([]byte(tok.Digest), []byte(digest)) != 1 ||
		(!tok.Expires.IsZero() && !time.Now().Before(tok.Expires)) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or invalid bearer token"})
		return
	}
	if !server.Grants(tok.ScopeList(), server.ScopeRead) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "this token lacks the read scope"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	rows, err := n.backend.Pool().Query(ctx, `SELECT member, url, role, applied, seen FROM members
		WHERE seen > now() - interval '10 seconds' ORDER BY member`)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "database unavailable"})
		return
	}
	members := []Member{}
	var m Member
	var applied int64
	_, err = pgx.ForEachRow(rows, []any{&m.Member, &m.URL, &m.Role, &applied, &m.Seen}, func() error {
		m.Applied = uint64(applied)
		members = append(members, m)
		return nil
	})
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "database unavailable"})
		return
	}
	var l leaderInfo
	err = n.backend.Pool().QueryRow(ctx, `SELECT member, url, epoch, since FROM leader WHERE id = 1`).Scan(&l.Member, &l.URL, &l.Epoch, &l.Since)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "database unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"self": n.cfg.Member, "role": n.Role(), "leader": l, "epoch": l.Epoch, "members": members})
}
