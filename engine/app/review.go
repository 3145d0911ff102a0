package app

import "github.com/gorilla/mux"

// registerReview mounts the review-workflow endpoints (policy plan). It is
// the wiring point for that feature.
func (a *App) registerReview(r *mux.Router) {}
