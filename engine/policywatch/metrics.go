package policywatch

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the manager's Prometheus collectors.
type metrics struct {
	activations prometheus.Counter
	refusals    *prometheus.CounterVec
	reloads     *prometheus.CounterVec
	duration    prometheus.Histogram
	ready       prometheus.Gauge
	activatedAt prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		activations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scimd_policy_activations_total",
			Help: "Policy sets activated.",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scimd_policy_refusals_total",
			Help: "Policy sets refused by the gate, by the stage that refused them.",
		}, []string{"stage"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scimd_policy_reloads_total",
			Help: "Policy reloads, by trigger and result (activated, unchanged, refused).",
		}, []string{"trigger", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "scimd_policy_reload_duration_seconds",
			Help:    "Time to read, compile, test and check a policy set.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scimd_policy_ready",
			Help: "1 when a policy set is active.",
		}),
		activatedAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scimd_policy_last_activation_timestamp_seconds",
			Help: "When the active policy set was activated (Unix time).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.activations, m.refusals, m.reloads, m.duration, m.ready, m.activatedAt} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("register policy metrics: %w (one Manager per registry)", err)
			}
			return nil, fmt.Errorf("register policy metrics: %w", err)
		}
	}
	return m, nil
}
