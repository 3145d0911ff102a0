package reconcile

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	decisions    prometheus.Counter
	changes      prometheus.Counter
	policyErrors prometheus.Counter
	pending      prometheus.Gauge
	queueDepth   prometheus.Gauge
	latency      prometheus.Histogram
	// shadowDivergent counts the teammates the shadow policy decides
	// differently from the live one.
	shadowDivergent prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scimd_decisions_total", Help: "Teammate decisions evaluated."}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scimd_teammate_changes_total", Help: "Teammate role, access or exclusion changes applied."}),
		policyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scimd_decision_errors_total", Help: "Decisions that failed (the teammate was left unchanged)."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scimd_pending_changes", Help: "Changes held by the mass-change guard awaiting approval."}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scimd_reconcile_queue_depth", Help: "Triggers waiting for the reconciler."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "scimd_commit_to_applied_seconds",
			Help:    "Latency from a durable SCIM commit to its role changes being durably applied.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18)}),
		shadowDivergent: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scimd_shadow_divergent_teammates",
			Help: "Teammates whose decision by the shadow policy differs from the live policy's (0 without a shadow policy)."}),
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.changes, m.policyErrors, m.pending, m.queueDepth, m.latency, m.shadowDivergent)
	}
	return m
}
