package httpstack

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure the stack.
type Options struct {
	Logger *slog.Logger
	// Registerer receives the request metrics when not nil.
	Registerer prometheus.Registerer
	// MaxBodyBytes limits every request body (default 1 MiB); a larger
	// one fails to read with *http.MaxBytesError (413).
	MaxBodyBytes int64
}

// Stack is the middleware every route runs behind.
type Stack struct {
	log      *slog.Logger
	maxBody  int64
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	panics   prometheus.Counter
	conns    *connMetrics
}

// New returns a Stack.
func New(opts Options) *Stack {
	s := &Stack{log: opts.Logger, maxBody: opts.MaxBodyBytes}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.maxBody <= 0 {
		s.maxBody = 1 << 20
	}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scimd_http_requests_total", Help: "HTTP requests by route, method and status code."},
		[]string{"route", "method", "code"})
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "scimd_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18)}, []string{"route", "method"})
	s.panics = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "scimd_http_panics_total", Help: "Requests whose handler panicked (answered 500)."})
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.requests, s.duration, s.panics)
	}
	s.conns = newConnMetrics(opts.Registerer)
	return s
}

// Wrap returns next behind the stack.
func (s *Stack) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &Info{RequestID: newRequestID(), ClientRequestID: boundedClientID(r.Header.Get("X-Request-Id"))}
		h := w.Header()
		h.Set("X-Request-Id", info.RequestID)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		var bd *body
		if r.Body != nil && r.Body != http.NoBody {
			bd = &body{rc: http.MaxBytesReader(w, r.Body, s.maxBody)}
			r.Body = bd
		}
		r = r.WithContext(WithInfo(r.Context(), info))
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler { //nolint:errorlint // a sentinel panic value
					panic(p)
				}
				s.panics.Inc()
				s.log.Error("panic serving a request", "panic", fmt.Sprint(p), "requestId", info.RequestID,
					"method", r.Method, "path", bounded(r.URL.Path), "stack", string(debug.Stack()))
				if !rec.wrote {
					rec.Header().Set("Content-Type", "application/json")
					rec.WriteHeader(http.StatusInternalServerError)
					_, _ = io.WriteString(rec, `{"error":"internal error","status":500,"requestId":"`+info.RequestID+`"}`+"\n")
				} else {
					rec.status = http.StatusInternalServerError
				}
			}
			if bd != nil && bd.err != nil {
				rec.bodyErr = bd.err
			}
			s.finish(r, rec, info, time.Since(start))
		}()
		next.ServeHTTP(rec, r)
	})
}

func (s *Stack) finish(r *http.Request, rec *recorder, info *Info, elapsed time.Duration) {
	route := info.routeLabel()
	method := methodLabel(r.Method)
	s.requests.WithLabelValues(route, method, strconv.Itoa(rec.status)).Inc()
	s.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())
	level := levelFor(rec.status)
	if !s.log.Enabled(r.Context(), level) {
		return
	}
	kind, name := info.actor()
	attrs := []slog.Attr{
		slog.String("method", method), slog.String("path", bounded(r.URL.Path)), slog.String("route", route),
		slog.Int("status", rec.status), slog.Duration("duration", elapsed), slog.Int64("bytes", rec.bytes),
		slog.String("remoteAddr", r.RemoteAddr), slog.String("userAgent", bounded(r.UserAgent())),
		slog.String("requestId", info.RequestID),
	}
	if info.ClientRequestID != "" {
		attrs = append(attrs, slog.String("clientRequestId", info.ClientRequestID))
	}
	if name != "" {
		attrs = append(attrs, slog.String("token", name), slog.String("actorKind", kind))
	}
	if rec.bodyErr != nil {
		attrs = append(attrs, slog.String("bodyError", rec.bodyErr.Error()))
	}
	s.log.LogAttrs(r.Context(), level, "http request", attrs...)
}

// levelFor logs server errors as errors, client errors as info and
// everything else at debug, so a busy IdP does not flood the log.
func levelFor(status int) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelError
	case status >= 400:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

// methodLabel bounds the metrics' method label to the standard methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// bounded truncates text from the request for the log.
func bounded(s string) string {
	const max = 512
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// recorder remembers the status and size of the answer.
type recorder struct {
	http.ResponseWriter
	status  int
	bytes   int64
	wrote   bool
	bodyErr error
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Flush lets long-polls and streams flush through the recorder.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		r.wrote = true
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// BodyError is a failure to read a request body, with the status it
// deserves: 400 for a truncated or broken body, 408 when the client was
// too slow, 413 when it was too large (it wraps *http.MaxBytesError then).
// Handlers find the status through HTTPStatus (an errors.As target
// interface{ HTTPStatus() int }).
type BodyError struct {
	Status int
	Err    error
}

func (e *BodyError) Error() string {
	switch e.Status {
	case http.StatusRequestTimeout:
		return "reading the request body timed out: " + e.Err.Error()
	case http.StatusRequestEntityTooLarge:
		return e.Err.Error()
	default:
		return "the request body could not be read completely: " + e.Err.Error()
	}
}

func (e *BodyError) Unwrap() error { return e.Err }

// HTTPStatus is the status to answer.
func (e *BodyError) HTTPStatus() int { return e.Status }

// ClassifyBodyError is the BodyError of a body read error.
func ClassifyBodyError(err error) *BodyError {
	var be *BodyError
	if errors.As(err, &be) {
		return be
	}
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return &BodyError{Status: http.StatusRequestEntityTooLarge, Err: err}
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &BodyError{Status: http.StatusRequestTimeout, Err: err}
	default:
		return &BodyError{Status: http.StatusBadRequest, Err: err}
	}
}

// body turns the request body's read errors into *BodyError.
type body struct {
	rc  io.ReadCloser
	err error
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF { //nolint:errorlint // io.EOF is returned unwrapped by contract
		if b.err == nil {
			b.err = ClassifyBodyError(err)
		}
		return n, b.err
	}
	return n, err
}

func (b *body) Close() error { return b.rc.Close() }
