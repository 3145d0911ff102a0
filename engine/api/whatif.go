package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/httpjson"
	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/reconcile"
	"github.com/scimd/scimd/engine/review"
	"github.com/scimd/scimd/scim/server"
)

// ExplainResponse is GET /api/v1/teammates/{id}/explain.
type ExplainResponse struct {
	UserID   string `json:"userId"`
	UserName string `json:"userName"`
	Revision string `json:"revision"`
	*policy.Explanation
}

// explain answers why the live policy decides the teammate (id or
// userName) as it does. Nothing is written.
func (rv *Review) explain(w http.ResponseWriter, r *http.Request) {
	ex, u, err := rv.opts.Reconciler.Explain(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		httpjson.Error(w, errStatus(err), "explain: "+err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, ExplainResponse{UserID: u.ID, UserName: u.Name, Revision: ex.Decision.Revision, Explanation: ex})
}

// WhatIfRequest is the body of POST /api/v1/whatif.
type WhatIfRequest struct {
	// User is the teammate's id or userName.
	User string `json:"user"`
	reconcile.Hypothesis
	// Policies, when given, is a candidate policy set (path → content),
	// gated like a reload, that decides the "after" decision.
	Policies map[string]string `json:"policies,omitempty"`
}

// whatIf decides a teammate now and under a hypothetical change, records
// one policy.whatif audit event and answers both decisions. Nothing is
// applied.
func (rv *Review) whatIf(w http.ResponseWriter, r *http.Request) {
	var req WhatIfRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, rv.opts.MaxPlanBytes))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		httpjson.DecodeError(w, err, `body must be {"user": "<id or userName>", "addGroups": […], "removeGroups": […], "set": {"<path>": <value>}, "policies": {"<path>": "<content>"}}`)
		return
	}
	if req.User == "" {
		httpjson.Error(w, http.StatusBadRequest, "user is required")
		return
	}
	ctx := r.Context()
	var candidate *policy.Set
	if len(req.Policies) > 0 {
		files := make(map[string][]byte, len(req.Policies))
		for name, content := range req.Policies {
			files[name] = []byte(content)
		}
		set, err := rv.opts.Candidate(ctx, files)
		var refused *policy.RefusedError
		switch {
		case errors.As(err, &refused):
			httpjson.Write(w, http.StatusUnprocessableEntity, review.NewRefusal(refused, rv.opts.Active(), ""))
			return
		case err != nil:
			httpjson.Error(w, http.StatusServiceUnavailable, "what-if: "+err.Error())
			return
		}
		candidate = set
	}
	res, err := rv.opts.Reconciler.WhatIf(ctx, req.User, req.Hypothesis, candidate)
	if err != nil {
		httpjson.Error(w, errStatus(err), "what-if: "+err.Error())
		return
	}
	if err := rv.audit(ctx, whatIfEvent(res, req, server.ActorFrom(ctx), requestID(r))); err != nil {
		httpjson.Error(w, httpjson.StatusOf(err), err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, res)
}

// whatIfEvent is the policy.whatif record of a query.
func whatIfEvent(res *reconcile.WhatIf, req WhatIfRequest, actor audit.Actor, reqID string) audit.Event {
	d := map[string]any{
		"before": res.Before.Summary(), "after": res.After.Summary(), "changed": res.Changed,
		"addGroups": len(req.AddGroups), "removeGroups": len(req.RemoveGroups), "set": len(req.Set),
	}
	if res.CandidateRevision != "" {
		d["candidateRevision"] = res.CandidateRevision
	}
	return audit.Event{
		Type: audit.TypePolicyWhatIf, Actor: actor, RequestID: reqID,
		Target:         audit.Target{Type: "User", ID: res.UserID, Name: res.UserName},
		PolicyRevision: res.Revision,
		Reasons: []string{fmt.Sprintf("what-if for %s: %s now, %s after the hypothetical change; nothing applied",
			res.UserName, res.Before.Summary(), res.After.Summary())},
		Details: d,
	}
}
