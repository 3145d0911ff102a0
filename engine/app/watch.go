package app

import (
	"context"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/review"
	"github.com/scimd/scimd/scim/store"
)

// DefaultAuditVerifyInterval is how often the running server walks its
// audit chain when Config.AuditVerifyInterval is zero.
const DefaultAuditVerifyInterval = time.Hour

// registerHealthMetrics exports what an operator alerts on that no
// component counts by itself: writes disabled after a failed commit, and
// the outcome of the periodic audit-chain verification.
func (a *App) registerHealthMetrics(reg prometheus.Registerer) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "scimd_store_writes_disabled",
		Help: "1 when a failed durable commit has disabled writes (SCIM writes answer 503 until a restart), 0 otherwise.",
	}, func() float64 {
		if a.Store.Failed() != nil {
			return 1
		}
		return 0
	}))
	a.auditFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "scimd_audit_verify_failures_total",
		Help: "Periodic audit-chain verifications that found a broken link (a changed, removed or undecodable event) or could not read the log.",
	})
	a.auditVerifiedAt = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "scimd_audit_verify_last_success_timestamp_seconds",
		Help: "When the audit chain last verified intact (Unix time); 0 before the first verification.",
	})
	a.auditVerified = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "scimd_audit_verified_events",
		Help: "Events the last successful audit-chain verification checked.",
	})
	reg.MustRegister(a.auditFailures, a.auditVerifiedAt, a.auditVerified)
}

// startAuditVerifier walks the audit chain every interval (first after
// one interval, so that a start is not slowed) until Close.
func (a *App) startAuditVerifier(interval time.Duration) {
	if interval < 0 {
		return
	}
	if interval == 0 {
		interval = DefaultAuditVerifyInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				a.VerifyAudit(ctx)
			}
		}
	}()
	a.stops = append(a.stops, func() { cancel(); <-done })
}

// VerifyAudit walks the whole audit chain once and records the outcome in
// the scimd_audit_verify_* metrics; a broken chain is also logged as an
// error naming the first bad event.
func (a *App) VerifyAudit(ctx context.Context) review.VerifyResult {
	page := func(ctx context.Context, after uint64, limit int) ([]audit.Event, error) {
		return a.Store.AuditEvents(ctx, store.AuditQuery{AfterSeq: after, Limit: limit})
	}
	res, err := review.Verify(ctx, page, nil)
	switch {
	case err != nil && ctx.Err() != nil:
		// Stopping: no verdict.
	case err != nil:
		a.auditFailures.Inc()
		a.log.Error("audit chain verification could not read the log", "err", err)
	case !res.OK:
		a.auditFailures.Inc()
		a.log.Error("audit chain broken", "brokenAt", res.BrokenAt, "reason", res.Reason)
	default:
		a.auditVerifiedAt.SetToCurrentTime()
		a.auditVerified.Set(float64(res.Events))
	}
	return res
}

// namingRegistry is the app's registry; it also remembers the name of
// every metric registered, so that MetricNames can list them before any is
// observed (a labelled vector has no series until its first use).
type namingRegistry struct {
	*prometheus.Registry
	mu    sync.Mutex
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Register implements prometheus.Registerer.
func (r *namingRegistry) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	r.mu.Lock()
	defer r.mu.Unlock()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return nil
}

// MustRegister implements prometheus.Registerer.
func (r *namingRegistry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// MetricNames lists the name of every metric family the app registered
// (and any other its registry gathers), sorted.
func (a *App) MetricNames() []string {
	a.metrics.mu.Lock()
	names := map[string]bool{}
	for n := range a.metrics.names {
		names[n] = true
	}
	a.metrics.mu.Unlock()
	if mfs, err := a.Registry.Gather(); err == nil {
		for _, mf := range mfs {
			names[mf.GetName()] = true
		}
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
