package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/scimd/scimd/engine/httpjson"
	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/policywatch"
	"github.com/scimd/scimd/engine/reconcile"
	"github.com/scimd/scimd/engine/review"
	"github.com/scimd/scimd/scim/server"
)

// ShadowResponse is GET /api/v1/policy/shadow: the shadow set and the
// teammates it decides differently from the live policy.
type ShadowResponse struct {
	policywatch.ShadowStatus
	Report reconcile.ShadowReport `json:"report"`
}

// ShadowRequest is the body of PUT /api/v1/policy/shadow.
type ShadowRequest struct {
	Files map[string]string `json:"files"`
}

func (rv *Review) shadowReport(w http.ResponseWriter, _ *http.Request) {
	if rv.opts.Shadow == nil {
		httpjson.Error(w, http.StatusNotFound, "shadow policies are not available")
		return
	}
	httpjson.Write(w, http.StatusOK, ShadowResponse{ShadowStatus: rv.opts.Shadow.Status(), Report: rv.opts.Reconciler.ShadowReport()})
}

// setShadow gates the files as a reload would and makes them the shadow
// set (200 with its status), or answers the refusal (422), which is
// audited. Nothing is applied either way.
func (rv *Review) setShadow(w http.ResponseWriter, r *http.Request) {
	if rv.opts.Shadow == nil {
		httpjson.Error(w, http.StatusNotFound, "shadow policies are not available")
		return
	}
	var req ShadowRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, rv.opts.MaxPlanBytes))
	dec.DisallowUnknownFields()
	const usage = `body must be {"files": {"<path>": "<content>", …}}`
	if err := dec.Decode(&req); err != nil {
		httpjson.DecodeError(w, err, usage)
		return
	}
	if len(req.Files) == 0 {
		httpjson.Error(w, http.StatusBadRequest, usage+": no policy files in the request")
		return
	}
	files := make(map[string][]byte, len(req.Files))
	for name, content := range req.Files {
		files[name] = []byte(content)
	}
	_, err := rv.opts.Shadow.Set(r.Context(), files, server.ActorFrom(r.Context()))
	var refused *policy.RefusedError
	switch {
	case errors.As(err, &refused):
		httpjson.Write(w, http.StatusUnprocessableEntity, review.NewRefusal(refused, rv.opts.Active(), ""))
		return
	case err != nil:
		httpjson.Error(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, rv.opts.Shadow.Status())
}

func (rv *Review) clearShadow(w http.ResponseWriter, r *http.Request) {
	if rv.opts.Shadow == nil {
		httpjson.Error(w, http.StatusNotFound, "shadow policies are not available")
		return
	}
	rv.opts.Shadow.Clear(r.Context(), server.ActorFrom(r.Context()))
	w.WriteHeader(http.StatusNoContent)
}
