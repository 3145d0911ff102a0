package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/internal/httpstack"
	"github.com/scimd/scimd/scim/compat"
	"github.com/scimd/scimd/scim/store"
)

// Token scopes. A route needs one scope; a token may hold several.
const (
	// ScopeSCIM is the SCIM API (/scim/v2): what an identity provider holds.
	ScopeSCIM = "scim"
	// ScopeRead reads the admin API: teammates, groups, policy status,
	// pending changes, audit, report, history, feed.
	ScopeRead = "read"
	// ScopePlan plans a candidate policy (POST /api/v1/plan).
	ScopePlan = "plan"
	// ScopeApprove approves or rejects pending changes.
	ScopeApprove = "approve"
	// ScopeAdmin is every admin API route, tokens and webhooks included.
	// It does not include the SCIM API: an identity provider's token is
	// a token of its own.
	ScopeAdmin = "admin"
)

// Scopes lists every scope.
var Scopes = []string{ScopeSCIM, ScopeRead, ScopePlan, ScopeApprove, ScopeAdmin}

// Grants reports whether a token holding scopes may use a route that
// needs scope: it holds it, or it holds admin and scope is not scim.
func Grants(scopes []string, scope string) bool {
	if slices.Contains(scopes, scope) {
		return true
	}
	return scope != ScopeSCIM && slices.Contains(scopes, ScopeAdmin)
}

// NewSecret returns a new random bearer token secret (256 bits).
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "scimd_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// Digest returns the hex SHA-256 of a secret: the only form the store keeps.
func Digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

type ctxKey int

const actorKey ctxKey = 0

// ActorFrom returns the actor of an authenticated request.
func ActorFrom(ctx context.Context) audit.Actor {
	a, _ := ctx.Value(actorKey).(audit.Actor)
	return a
}

// RequestIDFrom returns the request id scimd assigned to the request
// (internal/httpstack), never one a client sent.
func RequestIDFrom(ctx context.Context) string {
	if i := httpstack.InfoFrom(ctx); i != nil {
		return i.RequestID
	}
	return ""
}

// WithActor returns ctx carrying an actor (used by other components that
// write on behalf of someone).
func WithActor(ctx context.Context, a audit.Actor) context.Context {
	return context.WithValue(ctx, actorKey, a)
}

// actorOf is the audit actor of requests made with tok: its name (the
// rotated token's name for a previous secret), of kind "admin" when it
// holds the admin scope and "token" otherwise.
func actorOf(tok *store.Token) audit.Actor {
	if tok.Client != "" {
		return audit.Actor{Kind: "client", Name: tok.ClientName}
	}
	name := tok.Name
	if tok.RotatedFrom != "" {
		name = tok.RotatedFrom
	}
	kind := "token"
	if slices.Contains(tok.ScopeList(), ScopeAdmin) {
		kind = "admin"
	}
	return audit.Actor{Kind: kind, Name: name}
}

// authenticate finds the token a request bears, comparing digests in
// constant time. It answers 401 for a missing, unknown or expired token.
func (s *Server) authenticate(r *http.Request) (*store.Token, *Error) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return nil, errorf(http.StatusUnauthorized, "", "missing or invalid bearer token")
	}
	digest := Digest(strings.TrimSpace(secret))
	tok, found := s.store.Read().TokenByDigest(digest)
	if !found || subtle.ConstantTimeCompare([]byte(tok.Digest), []byte(digest)) != 1 {
		return nil, errorf(http.StatusUnauthorized, "", "missing or invalid bearer token")
	}
	if !tok.Expires.IsZero() && !s.now().Before(tok.Expires) {
		what := fmt.Sprintf("token %q", actorOf(tok).Name)
		if tok.RotatedFrom != "" {
			what = fmt.Sprintf("the previous secret of token %q (rotated)", tok.RotatedFrom)
		}
		return nil, &Error{Status: http.StatusUnauthorized, Detail: fmt.Sprintf("%s expired at %s", what, tok.Expires.UTC().Format(time.RFC3339)), expired: true}
	}
	return tok, nil
}

// RequireToken is middleware that admits requests bearing a token with
// the given scope and records the token as the actor. A missing, unknown
// or expired token gets 401; a token without the scope 403, naming the
// scope, audited as access.denied.
func (s *Server) RequireToken(scope string, next http.Handler) http.Handler {
	return s.RequireRouteScope(func(*http.Request) string { return scope }, next)
}

// RequireRouteScope is RequireToken for handlers whose scope depends on
// the request's route: scopeOf returns it.
func (s *Server) RequireRouteScope(scopeOf func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, e := s.authenticate(r)
		if e != nil {
			writeError(w, e)
			return
		}
		actor := actorOf(tok)
		httpstack.SetActor(r.Context(), actor.Kind, actor.Name)
		s.used.touch(tok.Name, s.now())
		scope := scopeOf(r)
		if !Grants(tok.ScopeList(), scope) {
			s.denied(r, actor, scope)
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="scimd", error="insufficient_scope", scope=%q`, scope))
			writeError(w, errorf(http.StatusForbidden, "", "token %q lacks the %q scope that %s %s needs (it has: %s)",
				actor.Name, scope, r.Method, r.URL.Path, strings.Join(tok.ScopeList(), ", ")))
			return
		}
		next.ServeHTTP(w, r.WithContext(compat.WithProfile(WithActor(r.Context(), actor), tok.Profile)))
	})
}

// denied audits a request refused for want of a scope.
func (s *Server) denied(r *http.Request, actor audit.Actor, scope string) {
	err := s.store.Write(r.Context(), func(w *store.WriteTxn) error {
		w.Audit(audit.Event{Type: audit.TypeAccessDenied, Actor: actor, RequestID: RequestIDFrom(r.Context()),
			Target:  audit.Target{Type: "Route", ID: r.Method + " " + r.URL.Path},
			Details: map[string]any{"scope": scope}})
		return nil
	})
	if err != nil {
		s.log.Warn("audit access.denied", "err", err, "actor", actor.Name, "scope", scope)
	}
}

// lastUsed keeps when each token last authenticated a request, in memory;
// FlushTokenUse writes it to the store.
type lastUsed struct {
	mu sync.Mutex
	at map[string]time.Time
}

// touch records a use of token name at now, to the minute.
func (u *lastUsed) touch(name string, now time.Time) {
	now = now.Truncate(time.Minute)
	u.mu.Lock()
	if u.at == nil {
		u.at = make(map[string]time.Time)
	}
	if !u.at[name].Equal(now) {
		u.at[name] = now
	}
	u.mu.Unlock()
}

func (u *lastUsed) get(name string) time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.at[name]
}
