package app

import (
	"github.com/gorilla/mux"

	"github.com/scimd/scimd/engine/api"
)

// registerReview mounts the review-workflow endpoints: policy plans
// (POST /api/v1/plan), audit chain verification, single audit events,
// teammate histories and the access report. A plan compiles and tests the
// candidate with the policy manager's gate and evaluates it with the
// reconciler against live state; it applies nothing.
func (a *App) registerReview(r *mux.Router) {
	api.NewReview(api.ReviewOptions{
		Store:        a.Store,
		Reconciler:   a.Reconciler,
		Candidate:    a.Policies.Candidate,
		Active:       a.Policies.Active,
		Shadow:       a.Shadow,
		RequireAdmin: a.requireScope,
	}).Register(r)
}
