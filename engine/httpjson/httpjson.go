// Package httpjson writes the JSON answers of scimd's admin API, so every
// admin endpoint shapes its responses and errors the same way.
package httpjson

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/scimd/scimd/internal/httpstack"
	"github.com/scimd/scimd/scim/store"
)

// RetryAfterSeconds is the Retry-After of a 503 answer: long enough for a
// supervisor to notice the failing /healthz and restart scimd.
const RetryAfterSeconds = "30"

// Write answers with v encoded as JSON.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", RetryAfterSeconds)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Error answers with {"error": msg, "status": status}.
func Error(w http.ResponseWriter, status int, msg string) {
	Write(w, status, map[string]any{"error": msg, "status": status})
}

// DecodeError answers a failure to read or decode a JSON request body:
// 408 when the client was too slow to send it, 413 when it was larger
// than the route accepts, 400 otherwise, with usage (what the body must
// be) before the decoder's message.
func DecodeError(w http.ResponseWriter, err error, usage string) {
	be := httpstack.ClassifyBodyError(err)
	switch be.Status {
	case http.StatusRequestTimeout, http.StatusRequestEntityTooLarge:
		Error(w, be.Status, be.Error())
	default:
		Error(w, http.StatusBadRequest, usage+": "+err.Error())
	}
}

// StatusOf is the status of an unexpected error: 503 when the store
// refuses writes after a failed commit (the client may retry once scimd
// restarts), 500 otherwise.
func StatusOf(err error) int {
	if errors.Is(err, store.ErrUnavailable) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
