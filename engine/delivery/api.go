package delivery

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/scimd/scimd/engine/httpjson"
	"github.com/scimd/scimd/scim/server"
)

// maxRegistrationBytes bounds a registration body.
const maxRegistrationBytes = 1 << 16

// Register mounts the feed and webhook endpoints on r under /api/v1, each
// behind the admin authentication middleware.
func (s *Service) Register(r *mux.Router) {
	sub := r.PathPrefix("/api/v1").Subrouter()
	h := func(path string, fn http.HandlerFunc, methods ...string) {
		sub.Handle(path, s.requireAdmin(fn)).Methods(methods...)
	}
	h("/feed", s.serveFeed, http.MethodGet)
	h("/webhooks", s.createWebhook, http.MethodPost)
	h("/webhooks", s.listWebhooks, http.MethodGet)
	h("/webhooks/{id}", s.getWebhook, http.MethodGet)
	h("/webhooks/{id}", s.deleteWebhook, http.MethodDelete)
	h("/webhooks/{id}/resume", s.resumeWebhook, http.MethodPost)
}

// requestID is scimd's id of the request (never a client's).
func requestID(r *http.Request) string { return server.RequestIDFrom(r.Context()) }

func (s *Service) errStatus(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrInvalid):
		httpjson.Error(w, http.StatusBadRequest, err.Error())
	default:
		s.log.Error("webhook request failed", "err", err)
		httpjson.Error(w, httpjson.StatusOf(err), err.Error())
	}
}

// createWebhook serves POST /api/v1/webhooks {"url","secret","events"}.
func (s *Service) createWebhook(w http.ResponseWriter, r *http.Request) {
	var reg Registration
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRegistrationBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&reg); err != nil {
		httpjson.DecodeError(w, err, `body must be a JSON object {"url": "https://…", "secret": "…", "events": ["teammate.role.changed", …]}`)
		return
	}
	e, err := s.registry.create(r.Context(), reg, server.ActorFrom(r.Context()), requestID(r))
	if err != nil {
		s.errStatus(w, err)
		return
	}
	httpjson.Write(w, http.StatusCreated, viewOf(&e, s.store.Read().FeedSeq))
}

// listWebhooks serves GET /api/v1/webhooks.
func (s *Service) listWebhooks(w http.ResponseWriter, _ *http.Request) {
	snap := s.store.Read()
	out := []View{}
	for _, e := range endpoints(snap) {
		out = append(out, viewOf(e, snap.FeedSeq))
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"webhooks": out})
}

// getWebhook serves GET /api/v1/webhooks/{id}.
func (s *Service) getWebhook(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	snap := s.store.Read()
	e, ok := endpointIn(snap, id)
	if !ok {
		httpjson.Error(w, http.StatusNotFound, "no webhook "+strconv.Quote(id))
		return
	}
	httpjson.Write(w, http.StatusOK, viewOf(e, snap.FeedSeq))
}

// deleteWebhook serves DELETE /api/v1/webhooks/{id}.
func (s *Service) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	if err := s.registry.remove(r.Context(), mux.Vars(r)["id"], server.ActorFrom(r.Context()), requestID(r)); err != nil {
		s.errStatus(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// resumeWebhook serves POST /api/v1/webhooks/{id}/resume.
func (s *Service) resumeWebhook(w http.ResponseWriter, r *http.Request) {
	e, err := s.registry.resume(r.Context(), mux.Vars(r)["id"], server.ActorFrom(r.Context()), requestID(r))
	if err != nil {
		s.errStatus(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, viewOf(&e, s.store.Read().FeedSeq))
}
