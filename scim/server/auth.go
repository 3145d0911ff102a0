package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/store"
)

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

const (
	actorKey ctxKey = iota
	requestIDKey
)

// ActorFrom returns the actor of an authenticated request.
func ActorFrom(ctx context.Context) audit.Actor {
	a, _ := ctx.Value(actorKey).(audit.Actor)
	return a
}

// RequestIDFrom returns the request id assigned by the server.
func RequestIDFrom(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

// WithActor returns ctx carrying an actor (used by other components that
// write on behalf of someone).
func WithActor(ctx context.Context, a audit.Actor) context.Context {
	return context.WithValue(ctx, actorKey, a)
}

// authenticate checks a bearer token against the stored digests, in
// constant time for the comparison of digests. It returns the token when
// it is valid and has the wanted role.
func authenticate(snap *store.Snapshot, r *http.Request, role string) (*store.Token, bool) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return nil, false
	}
	digest := Digest(strings.TrimSpace(secret))
	tok, found := snap.TokenByDigest(digest)
	if !found {
		return nil, false
	}
	if subtle.ConstantTimeCompare([]byte(tok.Digest), []byte(digest)) != 1 || tok.Role != role {
		return nil, false
	}
	return tok, true
}

// RequireToken is middleware that admits requests bearing a token of the
// given role and records its name as the actor.
func (s *Server) RequireToken(role string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := authenticate(s.store.Read(), r, role)
		if !ok {
			writeError(w, errorf(http.StatusUnauthorized, "", "missing or invalid bearer token"))
			return
		}
		kind := "token"
		if role == store.TokenRoleAdmin {
			kind = "admin"
		}
		ctx := WithActor(r.Context(), audit.Actor{Kind: kind, Name: tok.Name})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
