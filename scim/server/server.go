package server

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimd/scimd/scim/filter"
	"github.com/scimd/scimd/scim/patch"
	"github.com/scimd/scimd/scim/schema"
	"github.com/scimd/scimd/scim/store"
)

// BasePath is where the SCIM API is mounted.
const BasePath = "/scim/v2"

// Options configure a Server.
type Options struct {
	Store  *store.Store
	Logger *slog.Logger
	// Registerer receives the HTTP metrics when not nil.
	Registerer prometheus.Registerer
	// MaxBodyBytes limits request bodies (default 1 MiB); larger → 413.
	MaxBodyBytes int64
	// MaxResults is the most resources one list response holds (default
	// 1000), advertised as filter.maxResults.
	MaxResults int
	// ExternalURL is the public origin used in meta.location, e.g.
	// "https://scimd.example.com". Empty: derived from each request.
	ExternalURL string
	// RateLimit is the sustained requests per second allowed per SCIM token
	// (0: unlimited); RateBurst the burst above it.
	RateLimit float64
	RateBurst int
	// Now is the clock of token expiry (tests); default time.Now.
	Now func() time.Time
	// BulkMaxOperations is the most operations one /Bulk request may hold
	// (default 1000), advertised as bulk.maxOperations; more → 413. The
	// bulk payload limit is MaxBodyBytes.
	BulkMaxOperations int
	// OAuthTokenTTL is the lifetime of OAuth access tokens (default
	// DefaultOAuthTokenTTL).
	OAuthTokenTTL time.Duration
	// TrustedProxies are the peers whose Host and X-Forwarded-Host/-Proto
	// headers meta.location may use (when ExternalURL is empty).
	TrustedProxies []netip.Prefix
	// Teammate, when set, fills a User's read-only Teammate extension
	// (schema.TeammateURN) from the records of the snapshot rendered.
	Teammate TeammateFunc
}

// Server serves the SCIM API.
type Server struct {
	store      *store.Store
	log        *slog.Logger
	maxBody    int64
	maxResults int
	bulkMaxOps int
	teammate   TeammateFunc
	external   string
	patcher    *patch.Patcher
	limiter    *tokenLimiter
	metrics    *httpMetrics
	now        func() time.Time
	used       lastUsed
	trusted    []netip.Prefix
	oauthTTL   time.Duration
}

// New returns a Server.
func New(opts Options) *Server {
	s := &Server{
		store:      opts.Store,
		log:        opts.Logger,
		maxBody:    opts.MaxBodyBytes,
		maxResults: opts.MaxResults,
		teammate:   opts.Teammate,
		external:   strings.TrimRight(opts.ExternalURL, "/"),
		metrics:    newHTTPMetrics(opts.Registerer),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.maxBody <= 0 {
		s.maxBody = 1 << 20
	}
	if s.maxResults <= 0 {
		s.maxResults = 1000
	}
	if s.bulkMaxOps = opts.BulkMaxOperations; s.bulkMaxOps <= 0 {
		s.bulkMaxOps = defaultBulkMaxOperations
	}
	s.trusted = opts.TrustedProxies
	if s.oauthTTL = opts.OAuthTokenTTL; s.oauthTTL <= 0 {
		s.oauthTTL = DefaultOAuthTokenTTL
	}
	s.now = opts.Now
	if s.now == nil {
		s.now = time.Now
	}
	s.patcher = newPatcher()
	s.limiter = newTokenLimiter(opts.RateLimit, opts.RateBurst)
	return s
}

func newPatcher() *patch.Patcher {
	return &patch.Patcher{ValueFilterParser: func(expr string) (patch.ValueMatcher, error) {
		f, err := filter.Parse(expr)
		if err != nil {
			return nil, err
		}
		return valueMatcher{f}, nil
	}, ValueFilterChecker: func(rt *schema.ResourceType, valuePath string) error {
		f, err := filter.Parse(valuePath)
		if err != nil {
			return err
		}
		return f.Validate(rt)
	}}
}

// Register mounts the SCIM API under BasePath and the token admin API under
// /api/v1 on r.
func (s *Server) Register(r *mux.Router) {
	scim := r.PathPrefix(BasePath).Subrouter()
	scim.Use(s.limitBody, s.scimAuth)
	for _, kind := range []store.Kind{store.KindUser, store.KindGroup} {
		base := resourceTypeOf(kind).Endpoint
		scim.HandleFunc(base, s.list(kind)).Methods(http.MethodGet)
		scim.HandleFunc(base+"/", s.list(kind)).Methods(http.MethodGet)
		scim.HandleFunc(base, s.create(kind)).Methods(http.MethodPost)
		scim.HandleFunc(base+"/{id}", s.get(kind)).Methods(http.MethodGet)
		scim.HandleFunc(base+"/{id}", s.replace(kind)).Methods(http.MethodPut)
		scim.HandleFunc(base+"/{id}", s.patch(kind)).Methods(http.MethodPatch)
		scim.HandleFunc(base+"/{id}", s.delete(kind)).Methods(http.MethodDelete)
		scim.HandleFunc(base+"/.search", s.search(kind)).Methods(http.MethodPost)
		scim.HandleFunc(base+"/.search", methodNotAllowed(http.MethodPost))
		// gorilla/mux loses a subrouter's method mismatch when a later route
		// shares the path prefix, and answers 404; these catch-alls, after
		// the routes of each path, answer 405 instead.
		scim.HandleFunc(base, methodNotAllowed(http.MethodGet, http.MethodPost))
		scim.HandleFunc(base+"/", methodNotAllowed(http.MethodGet))
		scim.HandleFunc(base+"/{id}", methodNotAllowed(http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete))
	}
	scim.HandleFunc("/.search", s.search(store.KindUser, store.KindGroup)).Methods(http.MethodPost)
	scim.HandleFunc("/.search", methodNotAllowed(http.MethodPost))
	s.registerDiscovery(scim)
	s.registerBulk(scim)
	scim.PathPrefix("/Me").HandlerFunc(s.notImplemented("/Me"))
	scim.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, "", "no SCIM endpoint at %s", r.URL.Path))
	})
	scim.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusMethodNotAllowed, "", "%s is not allowed on %s", r.Method, r.URL.Path))
	})

	api := r.PathPrefix("/api/v1").Subrouter()
	api.Use(s.limitBody)
	api.Handle("/tokens", s.RequireToken(ScopeAdmin, http.HandlerFunc(s.createToken))).Methods(http.MethodPost)
	api.Handle("/tokens", s.RequireToken(ScopeAdmin, http.HandlerFunc(s.listTokens))).Methods(http.MethodGet)
	api.Handle("/tokens/{name}", s.RequireToken(ScopeAdmin, http.HandlerFunc(s.revokeToken))).Methods(http.MethodDelete)
	api.Handle("/tokens/{name}/rotate", s.RequireToken(ScopeAdmin, http.HandlerFunc(s.rotateToken))).Methods(http.MethodPost)
	api.Handle("/clients", s.RequireToken(ScopeAdmin, http.HandlerFunc(s.createClient))).Methods(http.MethodPost)
	api.Handle("/clients", s.RequireToken(ScopeAdmin, http.HandlerFunc(s.listClients))).Methods(http.MethodGet)
	api.Handle("/clients/{id}", s.RequireToken(ScopeAdmin, http.HandlerFunc(s.revokeClient))).Methods(http.MethodDelete)
	api.Handle("/clients/{id}/secrets", s.RequireToken(ScopeAdmin, http.HandlerFunc(s.addClientSecret))).Methods(http.MethodPost)
	api.Handle("/clients/{id}/secrets/{secretId}", s.RequireToken(ScopeAdmin, http.HandlerFunc(s.deleteClientSecret))).Methods(http.MethodDelete)
	r.Handle("/oauth/token", s.limitBody(http.HandlerFunc(s.oauthToken))).Methods(http.MethodPost)
}

// CanonicalPaths rewrites the SCIM endpoint names in a request path to
// their canonical case (Microsoft's test collection requests "/users").
// Wrap the root handler with it.
func CanonicalPaths(next http.Handler) http.Handler {
	names := []string{"Users", "Groups", "ServiceProviderConfig", "ResourceTypes", "Schemas", "Bulk", "Me"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasPrefix(p, BasePath+"/") {
			rest := p[len(BasePath)+1:]
			seg, tail, _ := strings.Cut(rest, "/")
			for _, n := range names {
				if strings.EqualFold(seg, n) && seg != n {
					r.URL.Path = BasePath + "/" + n
					if tail != "" || strings.HasSuffix(rest, "/") {
						r.URL.Path += "/" + tail
					}
					r.URL.RawPath = ""
					break
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// scimAuth authenticates SCIM tokens, applies the per-token rate limit and
// assigns a request id.
func (s *Server) scimAuth(next http.Handler) http.Handler {
	return s.RequireToken(ScopeSCIM, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actor := ActorFrom(r.Context())
		if wait, ok := s.limiter.allow(actor.Name); !ok {
			secs := int(wait.Seconds() + 0.999)
			if secs < 1 {
				secs = 1
			}
			w.Header().Set("Retry-After", itoa(secs))
			s.metrics.throttled.WithLabelValues(actor.Name).Inc()
			writeError(w, errorf(http.StatusTooManyRequests, "", "rate limit for token %q exceeded; retry after %d s", actor.Name, secs))
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// baseURL is the absolute SCIM base URL for a request: ExternalURL when
// set; otherwise the address the request arrived at, and only when the
// peer is a trusted proxy its Host and X-Forwarded-Host/-Proto, so a
// client cannot make scimd hand out locations on another host.
func (s *Server) baseURL(r *http.Request) string {
	if s.external != "" {
		return s.external + BasePath
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		host = a.String()
	}
	if s.trustedPeer(r) {
		host = r.Host
		if fh, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Host"), ","); validHost(strings.TrimSpace(fh)) {
			host = strings.TrimSpace(fh)
		}
		if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
			scheme = p
		}
	}
	return scheme + "://" + host + BasePath
}

// trustedPeer reports whether the request comes straight from a trusted
// proxy (Options.TrustedProxies).
func (s *Server) trustedPeer(r *http.Request) bool {
	if len(s.trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range s.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// validHost accepts a host[:port] made of the characters a DNS name, an
// IPv4 or a bracketed IPv6 address uses.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)) {
			return false
		}
	}
	return true
}

// methodNotAllowed answers 405 with the methods the path allows.
func methodNotAllowed(allowed ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, errorf(http.StatusMethodNotAllowed, "", "%s is not allowed on %s", r.Method, r.URL.Path))
	}
}

func (s *Server) notImplemented(what string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotImplemented, "", "%s is not supported by this service provider", what))
	}
}

// newID returns a random RFC 4122 version 4 UUID.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
