package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/scimd/scimd/engine/httpjson"
	"github.com/scimd/scimd/engine/reconcile"
	"github.com/scimd/scimd/scim/server"
	"github.com/scimd/scimd/scim/store"
)

// PolicyStatus is what GET /api/v1/policy shows.
type PolicyStatus interface {
	// StatusJSON returns the policy status as a JSON-encodable value.
	StatusJSON() any
	// Reload reloads the policy directory now.
	Reload(ctx context.Context, trigger string) error
}

// Options configure the API.
type Options struct {
	Store      *store.Store
	Reconciler *reconcile.Reconciler
	Policy     PolicyStatus
	// RequireAdmin wraps handlers with authentication and the check of
	// the route's scope (RouteScope).
	RequireAdmin func(http.Handler) http.Handler
}

// API serves the engine's admin endpoints.
type API struct {
	opts Options
}

// New returns an API.
func New(opts Options) *API { return &API{opts: opts} }

// Register mounts the endpoints on r under /api/v1.
func (a *API) Register(r *mux.Router) {
	sub := r.PathPrefix("/api/v1").Subrouter()
	h := func(path string, fn http.HandlerFunc, methods ...string) {
		sub.Handle(path, a.opts.RequireAdmin(withRequestID(fn))).Methods(methods...)
	}
	h("/teammates", a.listTeammates, http.MethodGet)
	h("/teammates/{id}", a.getTeammate, http.MethodGet)
	h("/teammates/{id}/role", a.setRole, http.MethodPut)
	h("/teammates/{id}/drift", a.reportDrift, http.MethodPost)
	h("/groups", a.listGroups, http.MethodGet)
	h("/policy", a.policyStatus, http.MethodGet)
	h("/policy/reload", a.policyReload, http.MethodPost)
	h("/changes", a.listChanges, http.MethodGet)
	h("/changes/{id}", a.getChange, http.MethodGet)
	h("/changes/{id}/approve", a.approve, http.MethodPost)
	h("/changes/{id}/reject", a.reject, http.MethodPost)
	h("/audit", a.auditEvents, http.MethodGet)
}

type requestIDKey struct{}

func withRequestID(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// scimd's own id (internal/httpstack): never a client's, which
		// could be empty or unbounded.
		id := server.RequestIDFrom(r.Context())
		next(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

func requestID(r *http.Request) string {
	s, _ := r.Context().Value(requestIDKey{}).(string)
	return s
}

func errStatus(err error) int {
	switch {
	case errors.Is(err, reconcile.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, reconcile.ErrNotPending), errors.Is(err, reconcile.ErrManaged):
		return http.StatusConflict
	case errors.Is(err, reconcile.ErrUnknownRole), errors.Is(err, reconcile.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, reconcile.ErrNoPolicy):
		return http.StatusServiceUnavailable
	default:
		return httpjson.StatusOf(err)
	}
}

// teammateJSON is the API shape of a teammate.
func teammateJSON(t reconcile.TeammateView) map[string]any {
	var role any
	if t.Role != "" {
		role = t.Role
	}
	out := map[string]any{
		"id": t.ID, "userName": t.UserName, "role": role, "access": t.Access, "excluded": t.Excluded,
		"reasons": t.Reasons, "revision": t.Revision, "decisionId": t.DecisionID, "changedAt": t.ChangedAt,
		"groups": t.Groups,
	}
	if t.Manual != nil {
		out["manual"] = t.Manual
	}
	if t.UserDeleted {
		out["userDeleted"] = true
	}
	if t.PendingChange != "" {
		out["pendingChange"] = t.PendingChange
	}
	if t.DecisionError != "" {
		out["decisionError"], out["decisionErrorSince"] = t.DecisionError, t.DecisionErrorSince
	}
	if t.Decision != nil {
		out["decision"] = t.Decision
	}
	return out
}

func (a *API) listTeammates(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := reconcile.TeammateFilter{Role: q.Get("role"), Group: q.Get("group")}
	if v := q.Get("access"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			httpjson.Error(w, http.StatusBadRequest, "access must be true or false")
			return
		}
		f.Access = &b
	}
	list, seq := a.opts.Reconciler.Teammates(f)
	out := make([]any, len(list))
	for i, t := range list {
		out[i] = teammateJSON(t)
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"teammates": out, "seq": seq})
}

func (a *API) getTeammate(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	t, ok := a.opts.Reconciler.Teammate(id)
	if !ok {
		httpjson.Error(w, http.StatusNotFound, "no teammate "+strconv.Quote(id))
		return
	}
	httpjson.Write(w, http.StatusOK, teammateJSON(t))
}

// reportDrift records a role the application reports for a teammate; the
// feed carries only the correction.
func (a *API) reportDrift(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Role *string `json:"role"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		httpjson.DecodeError(w, err, `body must be {"role": "<role the application has>"} or {"role": null}`)
		return
	}
	role := ""
	if req.Role != nil {
		role = *req.Role
	}
	id := mux.Vars(r)["id"]
	if _, err := a.opts.Reconciler.ObserveDrift(r.Context(), id, role, server.ActorFrom(r.Context()), requestID(r)); err != nil {
		httpjson.Error(w, errStatus(err), err.Error())
		return
	}
	t, _ := a.opts.Reconciler.Teammate(id)
	httpjson.Write(w, http.StatusOK, teammateJSON(t))
}

func (a *API) setRole(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Role *string `json:"role"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		httpjson.DecodeError(w, err, `body must be {"role": "<role>"} or {"role": null}`)
		return
	}
	role := ""
	if req.Role != nil {
		role = *req.Role
	}
	id := mux.Vars(r)["id"]
	if _, err := a.opts.Reconciler.SetRole(r.Context(), id, role, server.ActorFrom(r.Context()), requestID(r)); err != nil {
		httpjson.Error(w, errStatus(err), err.Error())
		return
	}
	t, _ := a.opts.Reconciler.Teammate(id)
	httpjson.Write(w, http.StatusOK, teammateJSON(t))
}

func (a *API) listGroups(w http.ResponseWriter, r *http.Request) {
	httpjson.Write(w, http.StatusOK, map[string]any{"groups": a.opts.Reconciler.Groups(r.Context())})
}

func (a *API) policyStatus(w http.ResponseWriter, _ *http.Request) {
	httpjson.Write(w, http.StatusOK, a.opts.Policy.StatusJSON())
}

func (a *API) policyReload(w http.ResponseWriter, r *http.Request) {
	err := a.opts.Policy.Reload(r.Context(), "api:"+server.ActorFrom(r.Context()).Name)
	status := a.opts.Policy.StatusJSON()
	if err != nil {
		httpjson.Write(w, http.StatusUnprocessableEntity, map[string]any{"error": err.Error(), "policy": status})
		return
	}
	httpjson.Write(w, http.StatusOK, status)
}

func (a *API) listChanges(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	if state == "" {
		state = reconcile.ChangePending
	}
	if state == "all" {
		state = ""
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"changes": a.opts.Reconciler.Changes(state)})
}

func (a *API) getChange(w http.ResponseWriter, r *http.Request) {
	c, ok := a.opts.Reconciler.Change(mux.Vars(r)["id"])
	if !ok {
		httpjson.Error(w, http.StatusNotFound, "no change "+strconv.Quote(mux.Vars(r)["id"]))
		return
	}
	httpjson.Write(w, http.StatusOK, c)
}

func (a *API) decide(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := mux.Vars(r)["id"]
		actor := server.ActorFrom(r.Context())
		var err error
		if approve {
			err = a.opts.Reconciler.Approve(r.Context(), id, actor, requestID(r))
		} else {
			err = a.opts.Reconciler.Reject(r.Context(), id, actor, requestID(r))
		}
		if err != nil {
			httpjson.Error(w, errStatus(err), err.Error())
			return
		}
		c, _ := a.opts.Reconciler.Change(id)
		if approve {
			// Answer with what the approval applied, when that takes a
			// moment; a large change answers before and shows its outcome
			// in GET /api/v1/changes/{id} later.
			ctx, cancel := context.WithTimeout(r.Context(), approvalWait)
			c, _ = a.opts.Reconciler.WaitApplied(ctx, id)
			cancel()
		}
		httpjson.Write(w, http.StatusOK, c)
	}
}

// approvalWait bounds how long POST /api/v1/changes/{id}/approve waits for
// the approved change to be applied before answering.
const approvalWait = 10 * time.Second

func (a *API) approve(w http.ResponseWriter, r *http.Request) { a.decide(true)(w, r) }
func (a *API) reject(w http.ResponseWriter, r *http.Request)  { a.decide(false)(w, r) }

// auditEvents serves GET /api/v1/audit?teammate=&group=&type=&actor=&after=&since=&until=&limit=
// with cursor paging: "next" is the "after" of the next page. teammate is
// a user id or userName, group a group id or displayName; see queryAudit
// for what they select.
func (a *API) auditEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	aq := store.AuditQuery{Actor: q.Get("actor"), Limit: 100}
	teammate := resolveUser(a.opts.Store, q.Get("teammate"))
	group := resolveGroup(a.opts.Store, q.Get("group"))
	if v := q.Get("type"); v != "" {
		aq.Types = strings.Split(v, ",")
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			httpjson.Error(w, http.StatusBadRequest, "after must be a sequence number")
			return
		}
		aq.AfterSeq = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			httpjson.Error(w, http.StatusBadRequest, "limit must be between 1 and 10000")
			return
		}
		aq.Limit = n
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &aq.Since}, {"until", &aq.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				httpjson.Error(w, http.StatusBadRequest, p.name+" must be an RFC 3339 time")
				return
			}
			*p.dst = t
		}
	}
	events, err := queryAudit(r.Context(), a.opts.Store, aq, teammate, group)
	if err != nil {
		httpjson.Error(w, httpjson.StatusOf(err), err.Error())
		return
	}
	out := map[string]any{"events": events}
	if len(events) == aq.Limit {
		out["next"] = events[len(events)-1].Seq
	}
	httpjson.Write(w, http.StatusOK, out)
}
