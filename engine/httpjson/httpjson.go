// Package httpjson writes the JSON answers of scimd's admin API, so every
// admin endpoint shapes its responses and errors the same way.
package httpjson

import (
	"encoding/json"
	"net/http"
)

// Write answers with v encoded as JSON.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Error answers with {"error": msg, "status": status}.
func Error(w http.ResponseWriter, status int, msg string) {
	Write(w, status, map[string]any{"error": msg, "status": status})
}
