package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/api"
	"github.com/scimd/scimd/engine/buildinfo"
	"github.com/scimd/scimd/engine/datadir"
	"github.com/scimd/scimd/engine/egress"
	"github.com/scimd/scimd/engine/httpjson"
	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/policywatch"
	"github.com/scimd/scimd/engine/reconcile"
	"github.com/scimd/scimd/internal/httpstack"
	"github.com/scimd/scimd/scim/server"
	"github.com/scimd/scimd/scim/store"
	"github.com/scimd/scimd/scim/store/postgres"
	"github.com/scimd/scimd/scim/store/sqlite"
)

// Config is what an App needs.
type Config struct {
	// Data is the data directory; Policies the policy directory.
	Data, Policies string
	// Database, when set, is a postgres:// URL: the state lives in
	// PostgreSQL instead of SQLite in Data.
	Database string
	// AdminToken, when set, becomes the admin token (SCIMD_ADMIN_TOKEN).
	AdminToken   string
	ExternalURL  string
	MaxBodyBytes int64
	MaxResults   int
	RateLimit    float64
	RateBurst    int
	Guard        reconcile.Threshold
	// EvalTimeout bounds each teammate's policy evaluation (default
	// reconcile.DefaultEvalTimeout).
	EvalTimeout time.Duration
	// ReadyMaxBacklogAge makes /readyz fail while a trigger has waited
	// longer than this for its decisions (default DefaultReadyMaxBacklogAge).
	ReadyMaxBacklogAge time.Duration
	// ShadowPolicies, when set, is a policy directory evaluated beside the
	// live one as a shadow set: gated alike, never applied (see
	// policywatch.Shadow).
	ShadowPolicies string
	// PolicyDebounce overrides the policy watcher's debounce (tests).
	PolicyDebounce time.Duration
	Logger         *slog.Logger
	// ProcessMetrics adds Go runtime and process collectors (the binary
	// does; tests running several apps in one process do not).
	ProcessMetrics bool
	// Delivery tunes webhook delivery (retries, backoff, timeouts).
	Delivery DeliveryConfig
	// WebhookEgress decides where webhooks may be registered and
	// delivered (nil: the built-in deny list of package egress).
	WebhookEgress *egress.Policy
	// AuditVerifyInterval is how often the audit chain is verified in the
	// background (0: DefaultAuditVerifyInterval; negative: never).
	AuditVerifyInterval time.Duration
	// TokenSweep is how often token expiry is audited and last-used
	// times are stored (default one minute).
	TokenSweep time.Duration
	// TrustedProxies are the peers whose Host and X-Forwarded-Host/-Proto
	// headers meta.location may use.
	TrustedProxies []netip.Prefix
	// MetricsAuth makes /metrics require a token with the read scope.
	MetricsAuth bool
	// Store, when set, is the open store to run on (a cluster member
	// taking over as leader, whose state is already in memory): Open
	// opens no backend, and Close closes it. Its metrics are the caller's.
	Store *store.Store
	// OAuthTokenTTL is the lifetime of OAuth 2.0 access tokens.
	OAuthTokenTTL time.Duration
	// DeferAdminToken: without AdminToken, Open does not generate the
	// admin token; the caller calls GenerateAdminToken once it listens,
	// so a failed start leaves no token nobody saw.
	DeferAdminToken bool
}

// App is a running scimd.
type App struct {
	Store    *store.Store
	Policies *policywatch.Manager
	// Shadow holds the shadow policy set.
	Shadow     *policywatch.Shadow
	Reconciler *reconcile.Reconciler
	SCIM       *server.Server
	Registry   *prometheus.Registry
	// Handler serves everything: /scim/v2, /api/v1, /healthz, /readyz,
	// /metrics, behind the one middleware stack (internal/httpstack).
	Handler http.Handler

	// Router holds every route behind Handler (route listings and tests).
	Router *mux.Router
	// GeneratedAdminToken is set when Open generated the admin token (first
	// start without AdminToken): print it once.
	GeneratedAdminToken string

	log     *slog.Logger
	stops   []func() // run first on Close, in reverse order
	drains  []func() // run by Drain
	stopRec context.CancelFunc
	recDone chan struct{}
	lock    *datadir.Lock
	stack   *httpstack.Stack
	metrics *namingRegistry
	// Audit verification metrics (watch.go).
	auditFailures                  prometheus.Counter
	auditVerifiedAt, auditVerified prometheus.Gauge
	closeOnce                      sync.Once
	closeErr                       error
	// maxBacklogAge is Config.ReadyMaxBacklogAge.
	maxBacklogAge time.Duration
}

// DefaultReadyMaxBacklogAge is how long the oldest undecided trigger may
// wait before /readyz reports scimd not ready.
const DefaultReadyMaxBacklogAge = 30 * time.Second

// Open loads the state, starts the policy watcher and the reconciler, and
// builds the handler. Close stops them.
func Open(ctx context.Context, cfg Config) (*App, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	reg := &namingRegistry{Registry: prometheus.NewRegistry(), names: map[string]bool{}}
	reg.MustRegister(buildinfo.Read().Collector())
	if cfg.ProcessMetrics {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	st, lock := cfg.Store, (*datadir.Lock)(nil)
	var err error
	if st == nil {
		if st, lock, err = openStore(ctx, cfg, reg, log); err != nil {
			return nil, err
		}
	}
	a := &App{Store: st, Registry: reg.Registry, metrics: reg, log: log, lock: lock, maxBacklogAge: cfg.ReadyMaxBacklogAge}
	if a.maxBacklogAge <= 0 {
		a.maxBacklogAge = DefaultReadyMaxBacklogAge
	}
	a.registerHealthMetrics(reg)
	if cfg.AdminToken == "" && cfg.DeferAdminToken {
		// GenerateAdminToken, once the caller listens.
	} else if a.GeneratedAdminToken, err = server.EnsureAdminToken(ctx, st, cfg.AdminToken); err != nil {
		a.Close()
		return nil, fmt.Errorf("admin token: %w", err)
	}

	var rec *reconcile.Reconciler
	a.Policies, err = policywatch.New(policywatch.Options{
		Dir: cfg.Policies, Logger: log, Registerer: reg, Debounce: cfg.PolicyDebounce,
		Audit: func(ctx context.Context, e audit.Event) error {
			return st.Write(ctx, func(tx *store.WriteTxn) error { tx.Audit(e); return nil })
		},
		OnActivate: func(ctx context.Context, s *policy.Set) { rec.PolicyActivated(ctx, s) },
		FindPlan: func(ctx context.Context, revision string) (map[string]any, bool) {
			p, ok, err := reconcile.LatestPlan(ctx, st, revision)
			if err != nil || !ok {
				return nil, false
			}
			return p.Detail(), true
		},
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	guard := cfg.Guard.WithDefaults()
	rec = reconcile.New(reconcile.Options{Store: st, Policy: a.Policies, Logger: log, Registerer: reg, Threshold: &guard,
		EvalTimeout: cfg.EvalTimeout})
	a.Reconciler = rec
	recCtx, stop := context.WithCancel(context.Background())
	a.stopRec, a.recDone = stop, make(chan struct{})
	go func() { defer close(a.recDone); rec.Run(recCtx) }()
	if err := a.Policies.Start(ctx); err != nil {
		a.Close()
		return nil, fmt.Errorf("policy watcher: %w", err)
	}
	if a.Shadow, err = policywatch.NewShadow(policywatch.ShadowOptions{
		Dir: cfg.ShadowPolicies, Logger: log, Debounce: cfg.PolicyDebounce,
		Audit: func(ctx context.Context, e audit.Event) error {
			return st.Write(ctx, func(tx *store.WriteTxn) error { tx.Audit(e); return nil })
		},
		OnChange: rec.SetShadow,
	}); err != nil {
		a.Close()
		return nil, fmt.Errorf("shadow policies: %w", err)
	}
	if err := a.Shadow.Start(ctx); err != nil {
		a.Close()
		return nil, fmt.Errorf("shadow policy watcher: %w", err)
	}
	if ok, why := a.Policies.Ready(); !ok {
		log.Error("no valid policy: serving SCIM, but not ready and no roles change until one loads", "reason", why)
	}

	a.SCIM = server.New(server.Options{
		Store: st, Logger: log, Registerer: reg,
		MaxBodyBytes: cfg.MaxBodyBytes, MaxResults: cfg.MaxResults, ExternalURL: cfg.ExternalURL,
		RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst, TrustedProxies: cfg.TrustedProxies,
		Teammate:      scimTeammate,
		OAuthTokenTTL: cfg.OAuthTokenTTL,
	})
	a.startTokenSweep(cfg.TokenSweep)
	router := mux.NewRouter()
	router.Use(httpstack.RouteLabel)
	a.SCIM.Register(router)
	api.New(api.Options{Store: st, Reconciler: rec, Policy: policyStatus{a.Policies},
		RequireAdmin: a.requireScope,
	}).Register(router)
	a.registerReview(router)
	a.registerBackup(router, cfg.Data, cfg.Database != "")
	if err := a.startDelivery(router, cfg.Delivery, cfg.WebhookEgress); err != nil {
		a.Close()
		return nil, fmt.Errorf("delivery: %w", err)
	}
	router.HandleFunc("/healthz", a.healthy)
	router.HandleFunc("/readyz", a.ready)
	var metrics http.Handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if cfg.MetricsAuth {
		metrics = a.SCIM.RequireToken(server.ScopeRead, metrics)
	}
	router.Handle("/metrics", metrics)
	a.startAuditVerifier(cfg.AuditVerifyInterval)
	a.Router = router
	a.stack = httpstack.New(httpstack.Options{Logger: log, Registerer: reg, MaxBodyBytes: cfg.MaxBodyBytes})
	a.Handler, _, _ = a.Handlers(nil)
	return a, nil
}

// GenerateAdminToken creates the admin token when none exists and returns
// its secret (to show once), or "" when one exists.
func (a *App) GenerateAdminToken(ctx context.Context) (string, error) {
	return server.EnsureAdminToken(ctx, a.Store, "")
}

// LimitListener wraps a listener with connection limits, counted in the
// app's metrics under name.
func (a *App) LimitListener(ln net.Listener, limits httpstack.Limits, name string) net.Listener {
	return a.stack.LimitListener(ln, limits, name)
}

// Handlers returns the handlers the listeners serve, each behind the one
// middleware stack: all routes, the public ones (SCIM, health; no admin
// API, metrics or console) and the admin ones (everything but SCIM).
// mount, when not nil, adds routes in front of the app's (the console).
func (a *App) Handlers(mount func(http.Handler) http.Handler) (all, public, admin http.Handler) {
	inner := server.CanonicalPaths(a.Router)
	if mount != nil {
		inner = mount(inner)
	}
	return a.stack.Wrap(inner),
		a.stack.Wrap(refusePaths(inner, "/api/", "/metrics", "/ui")),
		a.stack.Wrap(refusePaths(inner, server.BasePath))
}

// refusePaths answers 404 for the paths under any of prefixes (the other
// listener serves them) and passes the rest to next.
func refusePaths(next http.Handler, prefixes ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range prefixes {
			if r.URL.Path == strings.TrimSuffix(p, "/") || strings.HasPrefix(r.URL.Path, strings.TrimSuffix(p, "/")+"/") {
				httpjson.Error(w, http.StatusNotFound, "not served on this listener")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// healthy answers /healthz: 200 while the process can do its job, 503
// once the store has disabled writes after a failed commit, so a
// supervisor restarts it.
func (a *App) healthy(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if err := a.Store.Failed(); err != nil {
		w.Header().Set("Retry-After", httpjson.RetryAfterSeconds)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, `{"status":"failing","reason":%q}`+"\n", err.Error())
		return
	}
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// startTokenSweep runs the SCIM server's token sweep every interval and
// once more on Close, so last-used times survive a restart.
func (a *App) startTokenSweep(interval time.Duration) {
	if interval <= 0 {
		interval = time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if err := a.SCIM.SweepTokens(ctx); err != nil && ctx.Err() == nil {
					a.log.Warn("token sweep", "err", err)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	a.stops = append(a.stops, func() {
		cancel()
		<-done
		if err := a.SCIM.SweepTokens(context.Background()); err != nil {
			a.log.Warn("token sweep on close", "err", err)
		}
	})
}

// requireScope authenticates admin API requests and admits those whose
// token holds the scope of the matched route (api.ScopeFor).
func (a *App) requireScope(h http.Handler) http.Handler {
	return a.SCIM.RequireRouteScope(api.RouteScope, h)
}

// openStore opens the durable store and loads it into memory; for
// SQLite it first locks the data directory, which is one process's at a
// time (processes sharing a PostgreSQL database coordinate through it).
func openStore(ctx context.Context, cfg Config, reg prometheus.Registerer, log *slog.Logger) (*store.Store, *datadir.Lock, error) {
	var lock *datadir.Lock
	if cfg.Database == "" {
		var err error
		if lock, err = datadir.Acquire(cfg.Data); err != nil {
			return nil, nil, err
		}
	}
	backend, where, err := openBackend(ctx, cfg, log)
	if err != nil {
		lock.Release()
		return nil, nil, err
	}
	started := time.Now()
	st, err := store.Open(ctx, store.Options{Backend: backend, Logger: log, Registerer: reg, Records: Records()})
	if err != nil {
		backend.Close()
		lock.Release()
		return nil, nil, err
	}
	log.Info("state loaded", "store", where, "duration", time.Since(started))
	return st, lock, nil
}

// openBackend opens the durable store the configuration names: PostgreSQL
// when Database is set, else SQLite in the data directory. where describes
// it for logs (without a password).
func openBackend(ctx context.Context, cfg Config, log *slog.Logger) (b store.Backend, where string, err error) {
	if cfg.Database != "" {
		if !strings.HasPrefix(cfg.Database, "postgres://") && !strings.HasPrefix(cfg.Database, "postgresql://") {
			return nil, "", fmt.Errorf("database %q: only postgres:// URLs are supported", postgres.Describe(cfg.Database))
		}
		pg, err := postgres.Open(ctx, cfg.Database)
		if err != nil {
			return nil, "", err
		}
		return pg, postgres.Describe(cfg.Database), nil
	}
	lite, err := sqlite.Open(ctx, cfg.Data)
	if err != nil {
		return nil, "", err
	}
	if m := lite.Migrated; m != nil {
		log.Info("store migrated to a new schema version", "from", m.From, "to", m.To, "backup", m.Backup)
	}
	return lite, lite.Path(), nil
}

func (a *App) ready(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	reason := ""
	if err := a.Store.Failed(); err != nil {
		reason = err.Error()
	} else if ok, why := a.Policies.Ready(); !ok {
		reason = why
	} else if b := a.Reconciler.Backlog(); b.Age(time.Now()) > a.maxBacklogAge {
		reason = fmt.Sprintf("reconciler backlog: the oldest undecided trigger has waited %s (more than %s); %d teammates keep a previous decision because their evaluation failed",
			b.Age(time.Now()).Round(time.Millisecond), a.maxBacklogAge, b.Failing)
	}
	if reason != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, `{"status":"not ready","reason":%q}`+"\n", reason)
		return
	}
	_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
}

// Drain tells long-lived requests (feed long-polls) to finish now. Call it
// when HTTP shutdown begins (http.Server.RegisterOnShutdown), so that
// shutdown waits only for ordinary in-flight requests.
func (a *App) Drain() {
	for _, d := range a.drains {
		d()
	}
}

// Close stops the reconciler and the watcher and closes the store; call it
// after the HTTP server has finished its in-flight requests.
func (a *App) Close() error {
	a.closeOnce.Do(func() { a.closeErr = a.close() })
	return a.closeErr
}

func (a *App) close() error {
	for i := len(a.stops) - 1; i >= 0; i-- {
		a.stops[i]()
	}
	if a.stopRec != nil {
		a.stopRec()
		<-a.recDone
	}
	var errs []error
	if a.Shadow != nil {
		if err := a.Shadow.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if a.Policies != nil {
		if err := a.Policies.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := a.Store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	if err := a.lock.Release(); err != nil {
		errs = append(errs, fmt.Errorf("unlock data directory: %w", err))
	}
	return errors.Join(errs...)
}

// policyStatus adapts the policy manager to the admin API.
type policyStatus struct{ m *policywatch.Manager }

func (p policyStatus) StatusJSON() any { return p.m.Status() }

func (p policyStatus) Reload(ctx context.Context, trigger string) error {
	return p.m.Reload(ctx, trigger)
}

// scimTeammate reads a user's decided state for the SCIM Teammate
// extension. A teammate whose user was deleted is not shown.
func scimTeammate(records server.RecordReader, userID string) (server.Teammate, bool) {
	v, ok := records.Record(reconcile.TableTeammates, userID)
	tm, _ := v.(*reconcile.Teammate)
	if !ok || tm == nil || tm.UserDeleted {
		return server.Teammate{}, false
	}
	return server.Teammate{Role: tm.Role, Access: tm.Access, Excluded: tm.Excluded,
		Reasons: tm.Reasons, PolicyRevision: tm.Revision}, true
}
