package console

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/policywatch"
	"github.com/scimd/scimd/engine/reconcile"
	"github.com/scimd/scimd/scim/store"
)

// Prefix is the path the console is served under.
const Prefix = "/ui/"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Policies is what the console needs of the policy manager.
type Policies interface {
	Status() policywatch.Status
	Active() *policy.Set
}

// Options configure a Console.
type Options struct {
	Store      *store.Store
	Reconciler *reconcile.Reconciler
	Policies   Policies
	// Gatherer, when set, is read for the reconciler's backlog
	// (scimd_reconcile_queue_depth).
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
	// SessionTTL is how long a session lasts after sign-in (default 8h).
	SessionTTL time.Duration
	// PageSize is the number of rows per page of lists (default 50).
	PageSize int
	// SecureCookies marks cookies Secure even on plain-HTTP requests: set
	// it when a TLS-terminating proxy publishes the console over HTTPS.
	SecureCookies bool
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Console serves the web console.
type Console struct {
	opts     Options
	log      *slog.Logger
	pages    map[string]*template.Template
	mux      *http.ServeMux
	sessions *sessions
	hourly   *hourlyChanges
	// groupEvals caches the policy's answers about groups.
	groupEvals groupEvals
	static     http.Handler
	stop       context.CancelFunc
	done       chan struct{}
}

// New returns a console and starts counting teammate changes per hour (a
// hook on the store's commits, plus one bounded scan of the audit log of
// the last days in the background).
func New(opts Options) (*Console, error) {
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 8 * time.Hour
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 50
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	c := &Console{
		opts: opts, log: log, pages: pages,
		sessions: newSessions(opts.SessionTTL, opts.Now),
		hourly:   newHourlyChanges(opts.Store, opts.Now, log),
		static:   http.StripPrefix(Prefix+"static/", http.FileServerFS(sub)),
	}
	c.routes()
	ctx, stop := context.WithCancel(context.Background())
	c.stop, c.done = stop, make(chan struct{})
	go func() { defer close(c.done); c.hourly.run(ctx) }()
	return c, nil
}

// Close stops the console's background work (counting changes, verifying
// the audit chain). Call it before closing the store; calling it again
// does nothing.
func (c *Console) Close() {
	c.stop()
	<-c.done
}

// Mount returns a handler that serves the console under /ui/ and passes
// every other request to next.
func (c *Console) Mount(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, Prefix) {
			c.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP serves the console's pages with its security headers.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if !strings.HasPrefix(r.URL.Path, Prefix+"static/") {
		h.Set("Cache-Control", "no-store")
	}
	c.mux.ServeHTTP(w, r)
}

func (c *Console) routes() {
	m := http.NewServeMux()
	m.Handle("GET /ui/static/", c.static)
	m.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
	})
	m.HandleFunc("GET /ui/login", c.loginPage)
	m.HandleFunc("POST /ui/login", c.login)
	m.HandleFunc("POST /ui/logout", c.form(c.logout))
	m.HandleFunc("GET /ui/{$}", c.page(c.overview))
	m.HandleFunc("GET /ui/teammates", c.page(c.teammates))
	m.HandleFunc("GET /ui/teammates/{id}", c.page(c.teammate))
	m.HandleFunc("GET /ui/groups", c.page(c.groups))
	m.HandleFunc("GET /ui/changes", c.page(c.changes))
	m.HandleFunc("GET /ui/changes/{id}", c.page(c.change))
	m.HandleFunc("POST /ui/changes/{id}/approve", c.form(c.decide(true)))
	m.HandleFunc("POST /ui/changes/{id}/reject", c.form(c.decide(false)))
	m.HandleFunc("GET /ui/audit", c.page(c.auditList))
	m.HandleFunc("GET /ui/audit/{seq}", c.page(c.auditEvent))
	m.HandleFunc("GET /ui/policy", c.page(c.policy))
	m.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusNotFound, "error", nil, &view{Title: "Not found", Message: "There is no page at " + r.URL.Path + "."})
	})
	c.mux = m
}
