package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/compat"
	"github.com/scimd/scimd/scim/store"
)

var tokenNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Token rotation and expiry bounds.
const (
	// DefaultRotationGrace is how long the previous secret of a rotated
	// token keeps working when the rotation names no grace period: a day
	// to update every place that holds it.
	DefaultRotationGrace = 24 * time.Hour
	// MaxRotationGrace is the longest grace period a rotation may give.
	MaxRotationGrace = 30 * 24 * time.Hour
	// MinTokenLifetime and MaxTokenLifetime bound expiresIn.
	MinTokenLifetime = time.Second
	MaxTokenLifetime = 10 * 365 * 24 * time.Hour
)

// previousSuffix names the entry that holds a rotated token's previous
// secret during its grace period; token names cannot contain '~'.
const previousSuffix = "~previous"

// AdminTokenName is the bootstrap admin token (SCIMD_ADMIN_TOKEN).
const AdminTokenName = "admin"

// TokenSpec describes a token to create.
type TokenSpec struct {
	Name   string
	Scopes []string
	// Profile is the IdP compatibility profile (compat.Profiles; "" is
	// auto).
	Profile string
	// Expires is when the token stops working; zero for never.
	Expires time.Time
}

// CreateToken creates a token with one scope and returns its secret,
// which is not stored.
func CreateToken(ctx context.Context, st *store.Store, name, scope string, actor audit.Actor) (string, error) {
	return CreateScopedToken(ctx, st, TokenSpec{Name: name, Scopes: []string{scope}}, actor)
}

// CreateScopedToken creates a token and returns its secret, which is not
// stored. Errors wrap errInvalid (bad name or scopes) or store.ErrConflict.
func CreateScopedToken(ctx context.Context, st *store.Store, spec TokenSpec, actor audit.Actor) (string, error) {
	if !tokenNamePattern.MatchString(spec.Name) {
		return "", fmt.Errorf("token name %q: use 1-64 letters, digits, '.', '_' or '-': %w", spec.Name, errInvalid)
	}
	scopes, err := normalizeScopes(spec.Scopes)
	if err != nil {
		return "", err
	}
	profile, err := compat.Check(spec.Profile)
	if err != nil {
		return "", fmt.Errorf("%v: %w", err, errInvalid)
	}
	secret, err := NewSecret()
	if err != nil {
		return "", fmt.Errorf("generate token secret: %w", err)
	}
	err = st.Write(ctx, func(w *store.WriteTxn) error {
		if _, exists := w.Token(spec.Name); exists {
			return fmt.Errorf("token %q already exists: %w", spec.Name, store.ErrConflict)
		}
		tok := &store.Token{Name: spec.Name, Digest: Digest(secret), Scopes: scopes, Created: w.Now(), Expires: spec.Expires.UTC()}
		if profile != compat.Auto {
			tok.Profile = profile
		}
		if err := w.PutToken(tok); err != nil {
			return err
		}
		details := map[string]any{"scopes": stringsToAny(scopes), "profile": profile}
		if !tok.Expires.IsZero() {
			details["expires"] = tok.Expires.Format(time.RFC3339)
		}
		w.Audit(audit.Event{Type: audit.TypeTokenCreated, Actor: actor, RequestID: RequestIDFrom(ctx),
			Target: audit.Target{Type: "Token", ID: spec.Name, Name: spec.Name}, Details: details})
		return nil
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// normalizeScopes checks scopes against Scopes and returns them sorted
// in Scopes' order without duplicates.
func normalizeScopes(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		return nil, fmt.Errorf("a token needs at least one scope (%s): %w", strings.Join(Scopes, ", "), errInvalid)
	}
	var out []string
	for _, known := range Scopes {
		if slices.Contains(scopes, known) {
			out = append(out, known)
		}
	}
	for _, sc := range scopes {
		if !slices.Contains(Scopes, sc) {
			return nil, fmt.Errorf("unknown scope %q: use %s: %w", sc, strings.Join(Scopes, ", "), errInvalid)
		}
	}
	return out, nil
}

func stringsToAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// EnsureAdminToken makes the admin token match secret when secret is set
// (SCIMD_ADMIN_TOKEN). When secret is empty and no admin token exists, it
// generates one and returns it so the caller can print it once; otherwise it
// returns "".
func EnsureAdminToken(ctx context.Context, st *store.Store, secret string) (string, error) {
	const name = AdminTokenName
	system := audit.Actor{Kind: "system", Name: "scimd"}
	existing, ok := st.Read().Token(name)
	if secret == "" {
		if ok {
			return "", nil
		}
		return CreateToken(ctx, st, name, ScopeAdmin, system)
	}
	digest := Digest(secret)
	if ok && existing.Digest == digest && existing.Expires.IsZero() {
		return "", nil
	}
	err := st.Write(ctx, func(w *store.WriteTxn) error {
		if err := w.PutToken(&store.Token{Name: name, Digest: digest, Scopes: []string{ScopeAdmin}, Created: w.Now()}); err != nil {
			return err
		}
		w.Audit(audit.Event{Type: audit.TypeTokenCreated, Actor: system,
			Target:  audit.Target{Type: "Token", ID: name, Name: name},
			Details: map[string]any{"scopes": []any{ScopeAdmin}, "source": "SCIMD_ADMIN_TOKEN"}})
		return nil
	})
	return "", err
}

var errInvalid = errors.New("invalid")

func decodeJSONBody(r *http.Request, v any) *Error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if e := asError(err); e.Status != http.StatusInternalServerError {
			return e // too large, truncated, too slow
		}
		return badRequest("invalidSyntax", "request body is not valid: %v", err)
	}
	return nil
}

// parseLifetime parses a Go duration ("720h", "90m") within [min, max].
func parseLifetime(field, v string, minimum, maximum time.Duration) (time.Duration, *Error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, badRequest("invalidValue", "%s %q is not a duration such as \"720h\" or \"90m\"", field, v)
	}
	if d < minimum || d > maximum {
		return 0, badRequest("invalidValue", "%s %s is outside %s..%s", field, v, minimum, maximum)
	}
	return d, nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name      string   `json:"name"`
		Scopes    []string `json:"scopes"`
		ExpiresIn string   `json:"expiresIn"`
		Profile   string   `json:"profile"`
	}
	if e := decodeJSONBody(r, &req); e != nil {
		writeError(w, e)
		return
	}
	spec := TokenSpec{Name: req.Name, Scopes: req.Scopes, Profile: req.Profile}
	if req.Scopes == nil {
		// Tokens are for identity providers unless told otherwise.
		spec.Scopes = []string{ScopeSCIM}
	}
	if req.ExpiresIn != "" {
		d, e := parseLifetime("expiresIn", req.ExpiresIn, MinTokenLifetime, MaxTokenLifetime)
		if e != nil {
			writeError(w, e)
			return
		}
		spec.Expires = s.now().Add(d)
	}
	secret, err := CreateScopedToken(r.Context(), s.store, spec, ActorFrom(r.Context()))
	switch {
	case errors.Is(err, errInvalid):
		writeError(w, badRequest("invalidValue", "%v", strings.TrimSuffix(err.Error(), ": "+errInvalid.Error())))
		return
	case errors.Is(err, store.ErrConflict):
		writeError(w, errorf(http.StatusConflict, "uniqueness", "a token named %q already exists; revoke it first", req.Name))
		return
	case err != nil:
		s.log.Error("create token", "err", err)
		writeError(w, asError(err))
		return
	}
	tok, _ := s.store.Read().Token(req.Name)
	out := s.tokenView(tok, nil)
	out["token"] = secret
	writeJSON(w, http.StatusCreated, out)
}

// tokenView is the API shape of a token: never its digest.
func (s *Server) tokenView(t *store.Token, previous *store.Token) map[string]any {
	out := map[string]any{"name": t.Name, "scopes": stringsToAny(t.ScopeList()), "created": t.Created.UTC().Format(time.RFC3339),
		"expires": nil, "lastUsed": nil, "expired": false, "profile": compat.Auto}
	if t.Profile != "" {
		out["profile"] = t.Profile
	}
	if !t.Expires.IsZero() {
		out["expires"] = t.Expires.UTC().Format(time.RFC3339)
		out["expired"] = !s.now().Before(t.Expires)
	}
	used := t.LastUsed
	if mem := s.used.get(t.Name); mem.After(used) {
		used = mem
	}
	if !used.IsZero() {
		out["lastUsed"] = used.UTC().Format(time.RFC3339)
	}
	if previous != nil && s.now().Before(previous.Expires) {
		out["previousSecretExpires"] = previous.Expires.UTC().Format(time.RFC3339)
	}
	return out
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	snap := s.store.Read()
	out := []any{}
	for _, t := range snap.Tokens() {
		if t.RotatedFrom != "" || t.Client != "" {
			continue
		}
		prev, _ := snap.Token(t.Name + previousSuffix)
		out = append(out, s.tokenView(t, prev))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	if name == AdminTokenName {
		writeError(w, errorf(http.StatusConflict, "mutability", "the admin token is set by SCIMD_ADMIN_TOKEN (or generated on first start) and cannot be revoked; rotate it instead"))
		return
	}
	err := s.store.Write(r.Context(), func(tx *store.WriteTxn) error {
		t, ok := tx.Token(name)
		if !ok || t.RotatedFrom != "" || t.Client != "" {
			return notFound("token", name)
		}
		if err := tx.DeleteToken(name); err != nil {
			return err
		}
		if _, ok := tx.Token(name + previousSuffix); ok {
			if err := tx.DeleteToken(name + previousSuffix); err != nil {
				return err
			}
		}
		tx.Audit(audit.Event{Type: audit.TypeTokenRevoked, Actor: ActorFrom(r.Context()), RequestID: RequestIDFrom(r.Context()),
			Target: audit.Target{Type: "Token", ID: name, Name: name}})
		return nil
	})
	if err != nil {
		writeError(w, asError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// rotateToken gives a token a new secret. The previous secret keeps
// working for the grace period (body {"grace": "24h"}, default
// DefaultRotationGrace, "0s" to end it at once); a second rotation within
// it ends the first previous secret at once.
func (s *Server) rotateToken(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	var req struct {
		Grace string `json:"grace"`
	}
	if raw, err := io.ReadAll(r.Body); err != nil {
		writeError(w, asError(err))
		return
	} else if strings.TrimSpace(string(raw)) != "" {
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, badRequest("invalidSyntax", "request body is not valid: %v", err))
			return
		}
	}
	grace := DefaultRotationGrace
	if req.Grace != "" {
		d, e := parseLifetime("grace", req.Grace, 0, MaxRotationGrace)
		if e != nil {
			writeError(w, e)
			return
		}
		grace = d
	}
	secret, err := NewSecret()
	if err != nil {
		writeError(w, asError(err))
		return
	}
	now := s.now()
	var rotated *store.Token
	err = s.store.Write(r.Context(), func(tx *store.WriteTxn) error {
		t, ok := tx.Token(name)
		if !ok || t.RotatedFrom != "" || t.Client != "" {
			return notFound("token", name)
		}
		if !t.Expires.IsZero() && !now.Before(t.Expires) {
			return errorf(http.StatusConflict, "mutability", "token %q expired at %s; create a new one", name, t.Expires.UTC().Format(time.RFC3339))
		}
		if _, ok := tx.Token(name + previousSuffix); ok {
			if err := tx.DeleteToken(name + previousSuffix); err != nil {
				return err
			}
		}
		if grace > 0 {
			prev := *t
			prev.Name, prev.RotatedFrom, prev.Expires, prev.ExpiryAudited = name+previousSuffix, name, now.Add(grace).UTC(), false
			if !t.Expires.IsZero() && t.Expires.Before(prev.Expires) {
				prev.Expires = t.Expires
			}
			if err := tx.PutToken(&prev); err != nil {
				return err
			}
		}
		next := *t
		next.Digest = Digest(secret)
		if err := tx.PutToken(&next); err != nil {
			return err
		}
		rotated = &next
		tx.Audit(audit.Event{Type: audit.TypeTokenRotated, Actor: ActorFrom(r.Context()), RequestID: RequestIDFrom(r.Context()),
			Target: audit.Target{Type: "Token", ID: name, Name: name}, Details: map[string]any{"grace": grace.String()}})
		return nil
	})
	if err != nil {
		writeError(w, asError(err))
		return
	}
	prev, _ := s.store.Read().Token(name + previousSuffix)
	out := s.tokenView(rotated, prev)
	out["token"] = secret
	writeJSON(w, http.StatusOK, out)
}

// SweepTokens audits tokens that expired since the last sweep
// (token.expired), removes expired previous secrets of rotated tokens,
// and stores when each token was last used. scimd runs it every minute.
func (s *Server) SweepTokens(ctx context.Context) error {
	now := s.now()
	snap := s.store.Read()
	var work bool
	for _, t := range snap.Tokens() {
		if (!t.Expires.IsZero() && !now.Before(t.Expires) && !t.ExpiryAudited) || s.used.get(t.Name).After(t.LastUsed) {
			work = true
			break
		}
	}
	if !work {
		return nil
	}
	system := audit.Actor{Kind: "system", Name: "scimd"}
	return s.store.Write(ctx, func(tx *store.WriteTxn) error {
		for _, t := range tx.Tokens() {
			next := *t
			changed := false
			if used := s.used.get(t.Name); used.After(t.LastUsed) {
				next.LastUsed, changed = used.UTC(), true
			}
			if t.Client != "" && !now.Before(t.Expires) {
				// An OAuth access token: short-lived and issued often, so
				// its end is not an audit event.
				if err := tx.DeleteToken(t.Name); err != nil {
					return err
				}
				continue
			}
			if !t.Expires.IsZero() && !now.Before(t.Expires) && !t.ExpiryAudited {
				target := audit.Target{Type: "Token", ID: actorOf(t).Name, Name: actorOf(t).Name}
				details := map[string]any{"expires": t.Expires.UTC().Format(time.RFC3339)}
				if t.RotatedFrom != "" {
					details["previousSecret"] = true
				}
				tx.Audit(audit.Event{Type: audit.TypeTokenExpired, Actor: system, Target: target, Details: details})
				if t.RotatedFrom != "" {
					if err := tx.DeleteToken(t.Name); err != nil {
						return err
					}
					continue
				}
				next.ExpiryAudited, changed = true, true
			}
			if changed {
				if err := tx.PutToken(&next); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
