package delivery

import "github.com/prometheus/client_golang/prometheus"

// Delivery results, the values of the result label.
const (
	resultSuccess     = "success"
	resultTimeout     = "timeout"
	resultNetwork     = "network_error"
	resultRateLimited = "rate_limited"
	resultServerError = "server_error"
	resultClientError = "client_error"
	resultDenied      = "denied"
)

type metrics struct {
	deliveries *prometheus.CounterVec
	latency    prometheus.Histogram
	endpoints  *prometheus.GaugeVec
	paused     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scimd_webhook_deliveries_total",
			Help: "Webhook delivery attempts by result: success, timeout, network_error, rate_limited (429), server_error (5xx), client_error (other non-2xx).",
		}, []string{"result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "scimd_webhook_delivery_duration_seconds",
			Help:    "Time from sending a webhook to its answer (or failure).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		endpoints: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scimd_webhook_endpoints",
			Help: "Registered webhook endpoints by state: active, failing, paused.",
		}, []string{"state"}),
		paused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scimd_webhook_pauses_total",
			Help: "Endpoints paused after too many consecutive failures.",
		}),
	}
	for _, r := range []string{resultSuccess, resultTimeout, resultNetwork, resultRateLimited, resultServerError, resultClientError, resultDenied} {
		m.deliveries.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.deliveries, m.latency, m.endpoints, m.paused)
	}
	return m
}
