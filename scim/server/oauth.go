package server

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/store"
)

// OAuth 2.0 client credentials (RFC 6749 §4.4) at POST /oauth/token.
// Clients are records of TableOAuthClients; each holds at most two active
// secrets (for rotation), stored as digests. An access token is a Token
// whose Client names its client: revoking the client deletes them at once.

// TableOAuthClients holds the OAuth clients (OAuthClient), keyed by id.
const TableOAuthClients = "oauth_clients"

// Access token lifetimes (--oauth-token-ttl).
const (
	DefaultOAuthTokenTTL = time.Hour
	MinOAuthTokenTTL     = 5 * time.Minute
	MaxOAuthTokenTTL     = 6 * time.Hour
	// maxClientSecrets is how many secrets a client may hold at once.
	maxClientSecrets = 2
	// oauthTokenPrefix names the Token entries of access tokens.
	oauthTokenPrefix = "oauth~"
)

// OAuthClient is an OAuth 2.0 client of the client credentials grant.
type OAuthClient struct {
	ID      string         `json:"id"`
	Name    string         `json:"name"`
	Scopes  []string       `json:"scopes"`
	Created time.Time      `json:"created"`
	Secrets []ClientSecret `json:"secrets"`
}

// ClientSecret is one of a client's secrets: only its digest is stored.
type ClientSecret struct {
	ID      string    `json:"id"`
	Digest  string    `json:"digest"`
	Created time.Time `json:"created"`
}

// Records returns the decoders of the server's record tables.
func Records() map[string]store.RecordDecoder {
	return map[string]store.RecordDecoder{
		TableOAuthClients: func(b []byte) (any, error) {
			var c OAuthClient
			if err := json.Unmarshal(b, &c); err != nil {
				return nil, fmt.Errorf("decode OAuth client: %w", err)
			}
			return &c, nil
		},
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func clientIn(r interface {
	Record(table, key string) (any, bool)
}, id string) (*OAuthClient, bool) {
	v, ok := r.Record(TableOAuthClients, id)
	if !ok {
		return nil, false
	}
	c, ok := v.(*OAuthClient)
	return c, ok
}

// oauthError answers an RFC 6749 §5.2 error.
func oauthError(w http.ResponseWriter, status int, code, description string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="scimd", charset="UTF-8"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}

// oauthToken serves POST /oauth/token.
func (s *Server) oauthToken(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		if e := asError(err); e.Status != http.StatusInternalServerError && e.Status != http.StatusBadRequest {
			oauthError(w, e.Status, "invalid_request", e.Detail)
			return
		}
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body is not a valid form")
		return
	}
	form := r.PostForm
	for name, values := range form {
		if len(values) > 1 {
			oauthError(w, http.StatusBadRequest, "invalid_request", "parameter "+strconv.Quote(name)+" is given more than once")
			return
		}
	}
	grant := form.Get("grant_type")
	if grant == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "grant_type is missing")
		return
	}
	// Client authentication: HTTP Basic, or the client_id and
	// client_secret form parameters; not both.
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			oauthError(w, http.StatusUnauthorized, "invalid_client", "client credentials are not form-encoded")
			return
		}
		if form.Has("client_id") || form.Has("client_secret") {
			oauthError(w, http.StatusBadRequest, "invalid_request", "use one client authentication method: HTTP Basic or client_id/client_secret")
			return
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" || secret == "" {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication is missing")
		return
	}
	client, ok := clientIn(s.store.Read(), id)
	digest := Digest(secret)
	matched := false
	if ok {
		for _, sec := range client.Secrets {
			if subtle.ConstantTimeCompare([]byte(sec.Digest), []byte(digest)) == 1 {
				matched = true
			}
		}
	}
	if !matched {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
		return
	}
	if grant != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only grant_type=client_credentials is supported")
		return
	}
	scopes := client.Scopes
	if raw := strings.TrimSpace(form.Get("scope")); raw != "" {
		scopes = nil
		for _, sc := range strings.Fields(raw) {
			if !slices.Contains(client.Scopes, sc) {
				oauthError(w, http.StatusBadRequest, "invalid_scope", "scope "+strconv.Quote(sc)+" is not granted to this client (it has: "+strings.Join(client.Scopes, " ")+")")
				return
			}
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	access, err := NewSecret()
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "cannot generate a token")
		return
	}
	ttl := s.oauthTTL
	err = s.store.Write(r.Context(), func(tx *store.WriteTxn) error {
		if _, still := clientIn(tx, id); !still {
			return errClientGone
		}
		return tx.PutToken(&store.Token{Name: oauthTokenPrefix + randomHex(12), Digest: Digest(access), Scopes: scopes,
			Created: tx.Now(), Expires: s.now().Add(ttl).UTC(), Client: client.ID, ClientName: client.Name})
	})
	if errors.Is(err, errClientGone) {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "the client was revoked")
		return
	}
	if err != nil {
		e := asError(err)
		if e.Status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", retryAfterUnavailable)
		}
		oauthError(w, e.Status, "server_error", e.Detail)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": access, "token_type": "Bearer",
		"expires_in": int(ttl.Seconds()), "scope": strings.Join(scopes, " ")})
}

var errClientGone = errors.New("client revoked")

// clientView is the API shape of a client: never its secrets' digests.
func clientView(c *OAuthClient) map[string]any {
	secrets := make([]any, len(c.Secrets))
	for i, sec := range c.Secrets {
		secrets[i] = map[string]any{"id": sec.ID, "created": sec.Created.UTC().Format(time.RFC3339)}
	}
	return map[string]any{"clientId": c.ID, "name": c.Name, "scopes": stringsToAny(c.Scopes),
		"created": c.Created.UTC().Format(time.RFC3339), "secrets": secrets}
}

func (s *Server) createClient(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
	}
	if e := decodeJSONBody(r, &req); e != nil {
		writeError(w, e)
		return
	}
	if !tokenNamePattern.MatchString(req.Name) {
		writeError(w, badRequest("invalidValue", "client name %q: use 1-64 letters, digits, '.', '_' or '-'", req.Name))
		return
	}
	if req.Scopes == nil {
		req.Scopes = []string{ScopeSCIM}
	}
	scopes, err := normalizeScopes(req.Scopes)
	if err != nil {
		writeError(w, badRequest("invalidValue", "%s", strings.TrimSuffix(err.Error(), ": "+errInvalid.Error())))
		return
	}
	secret, err := NewSecret()
	if err != nil {
		writeError(w, asError(err))
		return
	}
	c := &OAuthClient{ID: "client_" + randomHex(12), Name: req.Name, Scopes: scopes}
	err = s.store.Write(r.Context(), func(tx *store.WriteTxn) error {
		var dup bool
		tx.Records(TableOAuthClients, func(_ string, v any) bool {
			if o, ok := v.(*OAuthClient); ok && o.Name == req.Name {
				dup = true
			}
			return !dup
		})
		if dup {
			return errorf(http.StatusConflict, "uniqueness", "a client named %q already exists", req.Name)
		}
		c.Created = tx.Now()
		c.Secrets = []ClientSecret{{ID: "secret_" + randomHex(6), Digest: Digest(secret), Created: tx.Now()}}
		if err := tx.PutRecord(TableOAuthClients, c.ID, c); err != nil {
			return err
		}
		tx.Audit(audit.Event{Type: audit.TypeClientCreated, Actor: ActorFrom(r.Context()), RequestID: RequestIDFrom(r.Context()),
			Target:  audit.Target{Type: "OAuthClient", ID: c.ID, Name: c.Name},
			Details: map[string]any{"scopes": stringsToAny(scopes), "secretId": c.Secrets[0].ID}})
		return nil
	})
	if err != nil {
		writeError(w, asError(err))
		return
	}
	out := clientView(c)
	out["clientSecret"] = secret
	out["secretId"] = c.Secrets[0].ID
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listClients(w http.ResponseWriter, r *http.Request) {
	out := []any{}
	s.store.Read().Records(TableOAuthClients, func(_ string, v any) bool {
		if c, ok := v.(*OAuthClient); ok {
			out = append(out, clientView(c))
		}
		return true
	})
	writeJSON(w, http.StatusOK, map[string]any{"clients": out})
}

// revokeClient deletes a client and every access token issued to it.
func (s *Server) revokeClient(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	err := s.store.Write(r.Context(), func(tx *store.WriteTxn) error {
		c, ok := clientIn(tx, id)
		if !ok {
			return notFound("client", id)
		}
		if err := tx.DeleteRecord(TableOAuthClients, id); err != nil {
			return err
		}
		n := 0
		for _, t := range tx.Tokens() {
			if t.Client == id {
				if err := tx.DeleteToken(t.Name); err != nil {
					return err
				}
				n++
			}
		}
		tx.Audit(audit.Event{Type: audit.TypeClientRevoked, Actor: ActorFrom(r.Context()), RequestID: RequestIDFrom(r.Context()),
			Target: audit.Target{Type: "OAuthClient", ID: id, Name: c.Name}, Details: map[string]any{"accessTokens": n}})
		return nil
	})
	if err != nil {
		writeError(w, asError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// addClientSecret gives a client a new secret; a client holds at most two.
func (s *Server) addClientSecret(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	secret, err := NewSecret()
	if err != nil {
		writeError(w, asError(err))
		return
	}
	var c OAuthClient
	var sec ClientSecret
	err = s.store.Write(r.Context(), func(tx *store.WriteTxn) error {
		old, ok := clientIn(tx, id)
		if !ok {
			return notFound("client", id)
		}
		if len(old.Secrets) >= maxClientSecrets {
			return errorf(http.StatusConflict, "", "client %s already has %d active secrets; delete one first (DELETE /api/v1/clients/%s/secrets/{secretId})", id, maxClientSecrets, id)
		}
		c = *old
		sec = ClientSecret{ID: "secret_" + randomHex(6), Digest: Digest(secret), Created: tx.Now()}
		c.Secrets = append(slices.Clone(old.Secrets), sec)
		if err := tx.PutRecord(TableOAuthClients, id, &c); err != nil {
			return err
		}
		tx.Audit(audit.Event{Type: audit.TypeClientSecretAdded, Actor: ActorFrom(r.Context()), RequestID: RequestIDFrom(r.Context()),
			Target: audit.Target{Type: "OAuthClient", ID: id, Name: c.Name}, Details: map[string]any{"secretId": sec.ID}})
		return nil
	})
	if err != nil {
		writeError(w, asError(err))
		return
	}
	out := clientView(&c)
	out["clientSecret"] = secret
	out["secretId"] = sec.ID
	writeJSON(w, http.StatusCreated, out)
}

// deleteClientSecret removes one of a client's secrets; not its last one
// (revoke the client instead).
func (s *Server) deleteClientSecret(w http.ResponseWriter, r *http.Request) {
	id, secretID := mux.Vars(r)["id"], mux.Vars(r)["secretId"]
	err := s.store.Write(r.Context(), func(tx *store.WriteTxn) error {
		old, ok := clientIn(tx, id)
		if !ok {
			return notFound("client", id)
		}
		i := slices.IndexFunc(old.Secrets, func(s ClientSecret) bool { return s.ID == secretID })
		if i < 0 {
			return notFound("client secret", secretID)
		}
		if len(old.Secrets) == 1 {
			return errorf(http.StatusConflict, "", "%s is the client's only secret; revoke the client instead", secretID)
		}
		c := *old
		c.Secrets = slices.Delete(slices.Clone(old.Secrets), i, i+1)
		if err := tx.PutRecord(TableOAuthClients, id, &c); err != nil {
			return err
		}
		tx.Audit(audit.Event{Type: audit.TypeClientSecretRemoved, Actor: ActorFrom(r.Context()), RequestID: RequestIDFrom(r.Context()),
			Target: audit.Target{Type: "OAuthClient", ID: id, Name: c.Name}, Details: map[string]any{"secretId": secretID}})
		return nil
	})
	if err != nil {
		writeError(w, asError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
