package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

type httpMetrics struct {
	throttled *prometheus.CounterVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scimd_http_throttled_total", Help: "Requests refused with 429 by the per-token rate limit."},
			[]string{"token"}),
	}
	if reg != nil {
		reg.MustRegister(m.throttled)
	}
	return m
}

// limitBody bounds request bodies to the server's MaxBodyBytes. Request
// ids, metrics and the access log come from the stack every route runs
// behind (internal/httpstack).
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		}
		next.ServeHTTP(w, r)
	})
}
