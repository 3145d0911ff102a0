package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/gorilla/mux"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/store"
)

var tokenNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CreateToken creates a token and returns its secret, which is not stored.
func CreateToken(ctx context.Context, st *store.Store, name, role string, actor audit.Actor) (string, error) {
	if !tokenNamePattern.MatchString(name) {
		return "", fmt.Errorf("token name %q: use 1-64 letters, digits, '.', '_' or '-': %w", name, errInvalid)
	}
	secret, err := NewSecret()
	if err != nil {
		return "", fmt.Errorf("generate token secret: %w", err)
	}
	err = st.Write(ctx, func(w *store.WriteTxn) error {
		if _, exists := w.Token(name); exists {
			return fmt.Errorf("token %q already exists: %w", name, store.ErrConflict)
		}
		if err := w.PutToken(&store.Token{Name: name, Digest: Digest(secret), Role: role, Created: w.Now()}); err != nil {
			return err
		}
		w.Audit(audit.Event{Type: audit.TypeTokenCreated, Actor: actor, RequestID: RequestIDFrom(ctx),
			Target: audit.Target{Type: "Token", ID: name, Name: name}, Details: map[string]any{"role": role}})
		return nil
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// EnsureAdminToken makes the admin token match secret when secret is set
// (SCIMD_ADMIN_TOKEN). When secret is empty and no admin token exists, it
// generates one and returns it so the caller can print it once; otherwise it
// returns "".
func EnsureAdminToken(ctx context.Context, st *store.Store, secret string) (string, error) {
	const name = "admin"
	system := audit.Actor{Kind: "system", Name: "scimd"}
	existing, ok := st.Read().Token(name)
	if secret == "" {
		if ok {
			return "", nil
		}
		return CreateToken(ctx, st, name, store.TokenRoleAdmin, system)
	}
	digest := Digest(secret)
	if ok && existing.Digest == digest {
		return "", nil
	}
	err := st.Write(ctx, func(w *store.WriteTxn) error {
		if err := w.PutToken(&store.Token{Name: name, Digest: digest, Role: store.TokenRoleAdmin, Created: w.Now()}); err != nil {
			return err
		}
		w.Audit(audit.Event{Type: audit.TypeTokenCreated, Actor: system,
			Target:  audit.Target{Type: "Token", ID: name, Name: name},
			Details: map[string]any{"role": store.TokenRoleAdmin, "source": "SCIMD_ADMIN_TOKEN"}})
		return nil
	})
	return "", err
}

var errInvalid = errors.New("invalid")

func decodeJSONBody(r *http.Request, v any) *Error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		if e := asError(err); e.Status == http.StatusRequestEntityTooLarge {
			return e
		}
		return badRequest("invalidSyntax", "request body is not valid JSON: %v", err)
	}
	return nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if e := decodeJSONBody(r, &req); e != nil {
		writeError(w, e)
		return
	}
	secret, err := CreateToken(r.Context(), s.store, req.Name, store.TokenRoleSCIM, ActorFrom(r.Context()))
	switch {
	case errors.Is(err, errInvalid):
		writeError(w, badRequest("invalidValue", "%v", err))
		return
	case errors.Is(err, store.ErrConflict):
		writeError(w, errorf(http.StatusConflict, "uniqueness", "a token named %q already exists; revoke it first", req.Name))
		return
	case err != nil:
		s.log.Error("create token", "err", err)
		writeError(w, asError(err))
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"name": req.Name, "token": secret})
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	out := []any{}
	for _, t := range s.store.Read().Tokens() {
		if t.Role != store.TokenRoleSCIM {
			continue
		}
		out = append(out, map[string]any{"name": t.Name, "created": t.Created.Format(time.RFC3339)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	err := s.store.Write(r.Context(), func(tx *store.WriteTxn) error {
		t, ok := tx.Token(name)
		if !ok || t.Role != store.TokenRoleSCIM {
			return notFound("token", name)
		}
		if err := tx.DeleteToken(name); err != nil {
			return err
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
