package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/scimd/scimd/audit/jsonenc"
	"github.com/scimd/scimd/scim/schema"
	"github.com/scimd/scimd/scim/store"
)

// ContentType is the media type of every SCIM response.
const ContentType = "application/scim+json"

// retryAfterUnavailable is the Retry-After of a 503 (seconds): long enough
// for a supervisor to notice the failing /healthz and restart scimd.
const retryAfterUnavailable = "30"

// Error is a SCIM error response (RFC 7644 §3.12).
type Error struct {
	Status   int
	ScimType string
	Detail   string
	// expired marks a 401 for an expired token (RFC 6750 invalid_token).
	expired bool
}

func (e *Error) Error() string {
	if e.ScimType != "" {
		return fmt.Sprintf("%d %s: %s", e.Status, e.ScimType, e.Detail)
	}
	return fmt.Sprintf("%d: %s", e.Status, e.Detail)
}

func errorf(status int, scimType, format string, args ...any) *Error {
	return &Error{Status: status, ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

func badRequest(scimType, format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, scimType, format, args...)
}

func notFound(kind, id string) *Error {
	return errorf(http.StatusNotFound, "", "%s %q not found", kind, id)
}

// asError converts any error into a SCIM error; unknown errors are 500s.
func asError(err error) *Error {
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errorf(http.StatusRequestEntityTooLarge, "", "request body exceeds %d bytes", mbe.Limit)
	}
	var hs interface{ HTTPStatus() int }
	if errors.As(err, &hs) && hs.HTTPStatus() >= 400 && hs.HTTPStatus() < 500 {
		return errorf(hs.HTTPStatus(), "", "%v", err)
	}
	if errors.Is(err, store.ErrUnavailable) {
		return errorf(http.StatusServiceUnavailable, "", "writes are disabled after a failed commit (disk full or I/O error); retry once scimd restarts")
	}
	return errorf(http.StatusInternalServerError, "", "internal error")
}

// responseBuffers recycles the buffers responses are encoded into.
var responseBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooledBuffer is the largest buffer kept for reuse; a huge list
// response's buffer is left to the garbage collector.
const maxPooledBuffer = 1 << 20

func writeJSON(w http.ResponseWriter, status int, v any) {
	bp := responseBuffers.Get().(*[]byte)
	body, err := jsonenc.Append((*bp)[:0], v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"schemas":["` + schema.ErrorURN + `"],"status":"500","detail":"internal error encoding the response"}`)
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
	if err == nil && cap(body) <= maxPooledBuffer {
		*bp = body
		responseBuffers.Put(bp)
	}
}

// body is the SCIM error response body of e (RFC 7644 §3.12).
func (e *Error) body() map[string]any {
	body := map[string]any{
		"schemas": []string{schema.ErrorURN},
		"status":  strconv.Itoa(e.Status),
		"detail":  e.Detail,
	}
	if e.ScimType != "" {
		body["scimType"] = e.ScimType
	}
	return body
}

func writeError(w http.ResponseWriter, e *Error) {
	body := e.body()
	if e.Status == http.StatusUnauthorized {
		if e.expired {
			w.Header().Set("WWW-Authenticate", `Bearer realm="scimd", error="invalid_token", error_description="the token expired"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="scimd"`)
		}
	}
	if e.Status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", retryAfterUnavailable)
	}
	writeJSON(w, e.Status, body)
}
