package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/scimd/scimd/scim/server"
	"github.com/scimd/scimd/scim/store"
)

// Cookie names. The session cookie is HttpOnly and SameSite=Strict, and
// Secure when the console is served over TLS.
const (
	sessionCookie = "scimd_session"
	loginCookie   = "scimd_login"
)

// maxSessions bounds the sessions held in memory; the oldest is dropped
// when a sign-in would exceed it.
const maxSessions = 10000

// grant is what a token may do in the console.
type grant struct {
	// Name is the token's name: the actor of everything the session does.
	Name string
	// Kind is the audit actor kind ("admin" or "token").
	Kind string
	// Scopes are the token's scopes, for display.
	Scopes []string
	// Read lets the session see every page; Approve lets it approve and
	// reject held changes.
	Read, Approve bool
}

// grantOf returns what a token may do in the console, and false for tokens
// that cannot sign in: without the read scope (an identity provider's scim
// token, a plan-only or approve-only token) or expired. A read token sees
// everything and acts on nothing; approve (with read) and admin tokens may
// also approve and reject held changes. The scopes mean what they mean on
// the admin API (server.Grants).
func grantOf(tok *store.Token, now time.Time) (grant, bool) {
	name := tok.Name
	if tok.RotatedFrom != "" {
		name = tok.RotatedFrom // a rotated token's previous secret acts as it
	}
	scopes := tok.ScopeList()
	g := grant{Name: name, Kind: "token", Scopes: scopes,
		Read: server.Grants(scopes, server.ScopeRead), Approve: server.Grants(scopes, server.ScopeApprove)}
	if slices.Contains(scopes, server.ScopeAdmin) {
		g.Kind = "admin"
	}
	if !tok.Expires.IsZero() && !now.Before(tok.Expires) {
		return g, false
	}
	return g, g.Read
}

// session is one signed-in browser.
type session struct {
	id      string
	ref     string // a short public reference for audit events
	digest  string // the token's digest: the session follows the token
	csrf    string
	created time.Time
	expires time.Time
	grant   grant
}

// sessions holds the signed-in sessions in memory: a restart signs
// everyone out.
type sessions struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*session
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, m: map[string]*session{}}
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for a token.
func (s *sessions) create(digest string, g grant) *session {
	now := s.now()
	id := randomString(32)
	sum := sha256.Sum256([]byte(id))
	sess := &session{id: id, ref: hex.EncodeToString(sum[:6]), digest: digest, csrf: randomString(32),
		created: now, expires: now.Add(s.ttl), grant: g}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSessions {
		var oldest *session
		for _, o := range s.m {
			if !o.expires.After(now) {
				delete(s.m, o.id)
			} else if oldest == nil || o.created.Before(oldest.created) {
				oldest = o
			}
		}
		if len(s.m) >= maxSessions && oldest != nil {
			delete(s.m, oldest.id)
		}
	}
	s.m[id] = sess
	return sess
}

// get returns the live session with the given id.
func (s *sessions) get(id string) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[id]
	if !ok {
		return nil, false
	}
	if !sess.expires.After(s.now()) {
		delete(s.m, id)
		return nil, false
	}
	return sess, true
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// sessionOf returns the request's session, checked against the token it was
// made from: a revoked token ends its sessions at once, and a token whose
// scopes changed acts with its new scopes.
func (c *Console) sessionOf(r *http.Request) (*session, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, false
	}
	sess, ok := c.sessions.get(ck.Value)
	if !ok {
		return nil, false
	}
	tok, ok := c.opts.Store.Read().TokenByDigest(sess.digest)
	if !ok {
		c.sessions.end(sess.id)
		return nil, false
	}
	g, ok := grantOf(tok, c.opts.Now())
	if !ok {
		c.sessions.end(sess.id)
		return nil, false
	}
	cp := *sess
	cp.grant = g
	return &cp, true
}

// tokenFor looks a bearer secret up.
func (c *Console) tokenFor(secret string) (*store.Token, string, bool) {
	digest := server.Digest(secret)
	tok, ok := c.opts.Store.Read().TokenByDigest(digest)
	if !ok || subtle.ConstantTimeCompare([]byte(tok.Digest), []byte(digest)) != 1 {
		return nil, "", false
	}
	return tok, digest, true
}

// setCookie sets an HttpOnly, SameSite=Strict cookie, Secure when the
// request came over TLS or the console is published over HTTPS.
func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, expires time.Time) {
	ck := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, Secure: r.TLS != nil || c.opts.SecureCookies,
		SameSite: http.SameSiteStrictMode}
	if value == "" {
		ck.MaxAge = -1
	} else {
		ck.Expires = expires.UTC()
		ck.MaxAge = int(time.Until(expires).Seconds())
		if ck.MaxAge < 1 {
			ck.MaxAge = 1
		}
	}
	http.SetCookie(w, ck)
}

// sameOrigin refuses requests a browser marks as coming from another site:
// a second line behind the CSRF token and the SameSite cookie.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	if origin := r.Header.Get("Origin"); origin != "" && origin != "null" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return true
}

func equalSecret(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
