package delivery

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimd/scimd/engine/egress"
	"github.com/scimd/scimd/scim/store"
)

// Config tunes webhook delivery. Zero fields take the defaults.
type Config struct {
	// MaxFailures is how many consecutive failed attempts pause an
	// endpoint (default 10).
	MaxFailures int
	// MinBackoff is the delay after the first failure; each further
	// failure doubles it, up to MaxBackoff, with jitter (defaults 5s, 1h).
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// MaxRetryAfter caps the delay a receiver asks for with Retry-After
	// (default 1h).
	MaxRetryAfter time.Duration
	// Timeout bounds one delivery attempt, from connecting to reading the
	// answer (default 10s).
	Timeout time.Duration
}

// Defaults.
const (
	DefaultMaxFailures   = 10
	DefaultMinBackoff    = 5 * time.Second
	DefaultMaxBackoff    = time.Hour
	DefaultMaxRetryAfter = time.Hour
	DefaultTimeout       = 10 * time.Second
)

func (c Config) withDefaults() Config {
	if c.MaxFailures <= 0 {
		c.MaxFailures = DefaultMaxFailures
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Options configure a Service.
type Options struct {
	// Store holds the feed and the endpoints. Required; it must have been
	// opened with Records() among its record decoders.
	Store  *store.Store
	Config Config
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the delivery metrics when not nil.
	Registerer prometheus.Registerer
	// RequireAdmin wraps every handler with authentication and the check
	// of the route's scope.
	// Required.
	RequireAdmin func(http.Handler) http.Handler
	// Egress decides which addresses endpoints may be registered at and
	// delivered to (default: the built-in deny list of egress.Policy).
	Egress *egress.Policy
	// Client sends the webhooks (default: an HTTP client that does not
	// follow redirects, with Config.Timeout per attempt, that connects
	// only where Egress allows).
	Client *http.Client
}

// Service is the change feed and webhook delivery.
type Service struct {
	store        *store.Store
	log          *slog.Logger
	requireAdmin func(http.Handler) http.Handler
	registry     registry
	dispatcher   *dispatcher
	signal       *signal
	// draining is closed by Drain: long-polls answer at once.
	draining  chan struct{}
	drainOnce sync.Once
}

// Drain makes waiting long-polls return their (empty) page now and new
// ones return without waiting, so an HTTP server shutting down does not
// wait for them. Call it when shutdown begins.
func (s *Service) Drain() { s.drainOnce.Do(func() { close(s.draining) }) }

// New returns a Service. Start the dispatcher with Start.
func New(opts Options) (*Service, error) {
	if opts.Store == nil || opts.RequireAdmin == nil {
		return nil, errors.New("delivery: Store and RequireAdmin are required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	cfg := opts.Config.withDefaults()
	policy := opts.Egress
	if policy == nil {
		policy = &egress.Policy{}
	}
	client := opts.Client
	if client == nil {
		client = newClient(cfg.Timeout, policy)
	}
	m := newMetrics(opts.Registerer)
	sig := newSignal()
	opts.Store.OnCommit(sig.onCommit)
	return &Service{
		store:        opts.Store,
		log:          log,
		requireAdmin: opts.RequireAdmin,
		registry:     registry{store: opts.Store, egress: policy},
		dispatcher:   newDispatcher(opts.Store, sig, cfg, client, log, m),
		signal:       sig,
		draining:     make(chan struct{}),
	}, nil
}

// Start runs the dispatcher: one goroutine per endpoint. The returned
// function stops it and waits for every delivery goroutine to end; an
// attempt in flight is abandoned and repeated after the next start.
func (s *Service) Start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.dispatcher.run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}
