package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/egress"
	"github.com/scimd/scimd/scim/store"
)

// batchSize is how many feed entries a worker reads at a time.
const batchSize = 100

// maxErrorLen bounds the error text kept for an endpoint.
const maxErrorLen = 300

// dispatcher runs one worker goroutine per registered endpoint.
type dispatcher struct {
	store  *store.Store
	signal *signal
	cfg    Config
	client *http.Client
	log    *slog.Logger
	m      *metrics
}

func newDispatcher(st *store.Store, sig *signal, cfg Config, client *http.Client, log *slog.Logger, m *metrics) *dispatcher {
	return &dispatcher{store: st, signal: sig, cfg: cfg, client: client, log: log, m: m}
}

// newClient is the default webhook client: bounded connect, TLS and
// response times, no redirects (a redirect is answered as a failure:
// register the final URL), and every connection checked against the
// egress policy once its address is known. A request sent through a proxy
// from the environment is checked by its URL's host, since the proxy
// resolves the name.
func newClient(timeout time.Duration, policy *egress.Policy) *http.Client {
	connect := min(timeout, 10*time.Second)
	return &http.Client{
		Transport: &http.Transport{
			Proxy: func(req *http.Request) (*url.URL, error) {
				proxy, err := http.ProxyFromEnvironment(req)
				if err != nil || proxy == nil {
					return proxy, err
				}
				if err := policy.CheckName(req.URL.Hostname()); err != nil {
					return nil, err
				}
				return proxy, nil
			},
			DialContext:           policy.Dialer(&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}),
			TLSHandshakeTimeout:   connect,
			ResponseHeaderTimeout: timeout,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// run starts and stops workers to match the registered endpoints, checking
// after every commit that changes one, until ctx ends; then it waits for
// the workers.
func (d *dispatcher) run(ctx context.Context) {
	workers := map[string]context.CancelFunc{}
	done := make(chan string)
	running := 0
	defer func() {
		for _, cancel := range workers {
			cancel()
		}
		for ; running > 0; running-- {
			<-done
		}
	}()
	for {
		changed := d.signal.wait()
		counts := map[string]float64{"active": 0, "failing": 0, "paused": 0}
		present := map[string]bool{}
		for _, e := range endpoints(d.store.Read()) {
			present[e.ID] = true
			counts[viewOf(e, 0).State]++
			if _, ok := workers[e.ID]; ok {
				continue
			}
			wctx, cancel := context.WithCancel(ctx)
			workers[e.ID] = cancel
			running++
			go func(id string) {
				defer func() { done <- id }()
				d.work(wctx, id)
			}(e.ID)
		}
		for id, cancel := range workers {
			if !present[id] {
				cancel()
			}
		}
		for state, n := range counts {
			d.m.endpoints.WithLabelValues(state).Set(n)
		}
		select {
		case <-changed:
		case id := <-done:
			running--
			workers[id]()
			delete(workers, id)
		case <-ctx.Done():
			return
		}
	}
}

// worker delivers the feed to one endpoint.
type worker struct {
	d  *dispatcher
	id string
	// cursor is the last entry handled (delivered, or not wanted);
	// durable the cursor as stored.
	cursor, durable uint64
}

// work delivers entries after the endpoint's cursor, in order, until ctx
// ends or the endpoint is deleted. A paused endpoint waits for a commit
// that resumes it.
func (d *dispatcher) work(ctx context.Context, id string) {
	w := &worker{d: d, id: id}
	if e, ok := endpointIn(d.store.Read(), id); ok {
		w.cursor, w.durable = e.Cursor, e.Cursor
	}
	for ctx.Err() == nil {
		changed := d.signal.wait()
		snap := d.store.Read()
		e, ok := endpointIn(snap, id)
		if !ok {
			return
		}
		if e.Cursor > w.cursor {
			w.cursor = e.Cursor
		}
		w.durable = e.Cursor
		if e.Paused || snap.FeedSeq <= w.cursor {
			if !e.Paused && w.cursor > w.durable {
				// Entries this endpoint does not want were passed over:
				// record that, so a restart does not read them again.
				w.saveCursor()
			}
			select {
			case <-changed:
			case <-ctx.Done():
			}
			continue
		}
		page, err := fetch(ctx, d.store, w.cursor, batchSize, snap.FeedSeq)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("webhook: read feed", "webhook", id, "err", err)
				sleep(ctx, d.cfg.MinBackoff)
			}
			continue
		}
		if len(page.Entries) == 0 {
			// The head says there are entries but none were read: do not
			// spin on it.
			d.log.Error("webhook: feed entries missing", "webhook", id, "after", w.cursor, "head", snap.FeedSeq)
			sleep(ctx, d.cfg.MinBackoff)
			continue
		}
		for _, entry := range page.Entries {
			if !wants(e.Events, entry.changeTypes()) {
				w.cursor = entry.Seq
				continue
			}
			if !w.deliver(ctx, entry) {
				break
			}
		}
	}
}

// deliver posts one entry until it is accepted (true), or the endpoint is
// paused, deleted or the dispatcher stops (false).
func (w *worker) deliver(ctx context.Context, entry Entry) bool {
	body, err := json.Marshal(entry)
	if err != nil {
		w.d.log.Error("webhook: encode entry", "seq", entry.Seq, "err", err)
		return false
	}
	msgID := strconv.FormatUint(entry.Seq, 10)
	for {
		e, ok := endpointIn(w.d.store.Read(), w.id)
		if !ok || e.Paused {
			return false
		}
		o := w.attempt(ctx, e, msgID, body)
		if ctx.Err() != nil {
			return false
		}
		w.d.m.deliveries.WithLabelValues(o.result).Inc()
		if o.ok {
			w.cursor = entry.Seq
			w.saveDelivered(entry.Seq)
			return true
		}
		paused, failures := w.saveFailure(entry.Seq, o)
		if paused {
			return false
		}
		delay := backoff(w.d.cfg, failures)
		if o.retryAfter > 0 {
			delay = max(delay, min(o.retryAfter, w.d.cfg.MaxRetryAfter))
		}
		w.d.log.Warn("webhook delivery failed; retrying", "webhook", w.id, "seq", entry.Seq, "failures", failures,
			"err", o.err, "retryIn", delay)
		if !sleep(ctx, delay) {
			return false
		}
	}
}

// outcome is the result of one attempt.
type outcome struct {
	ok         bool
	result     string // the metric label
	status     int
	err        string
	retryAfter time.Duration
	gone       bool // 410: the receiver asks to stop
}

// attempt sends one signed POST.
func (w *worker) attempt(ctx context.Context, e *Endpoint, msgID string, body []byte) outcome {
	key, err := SigningKey(e.Secret)
	if err != nil {
		return outcome{result: resultClientError, err: "signing key: " + err.Error()}
	}
	actx, cancel := context.WithTimeout(ctx, w.d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		return outcome{result: resultClientError, err: "build request: " + err.Error()}
	}
	ts := time.Now().Unix()
	req.Header.Set(HeaderID, msgID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(key, msgID, ts, body))
	req.Header.Set(HeaderEpoch, CurrentEpoch(w.d.store.Read()))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "scimd-webhooks/1")
	start := time.Now()
	resp, err := w.d.client.Do(req)
	if err != nil {
		w.d.m.latency.Observe(time.Since(start).Seconds())
		var ne net.Error
		if errors.Is(err, egress.ErrDenied) {
			return outcome{result: resultDenied, err: err.Error()}
		}
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return outcome{result: resultTimeout, err: fmt.Sprintf("no answer within %s: %v", w.d.cfg.Timeout, err)}
		}
		return outcome{result: resultNetwork, err: err.Error()}
	}
	// The answer's body is counted, never kept: a receiver's error page
	// may hold its secrets, and lastError, the audit chain and the logs
	// would keep them.
	size, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	w.d.m.latency.Observe(time.Since(start).Seconds())
	o := outcome{status: resp.StatusCode}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		o.ok, o.result = true, resultSuccess
		return o
	case resp.StatusCode == http.StatusTooManyRequests:
		o.result = resultRateLimited
	case resp.StatusCode >= 500:
		o.result = resultServerError
	default:
		o.result = resultClientError
		o.gone = resp.StatusCode == http.StatusGone
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		o.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	o.err = "HTTP " + resp.Status
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		o.err += " (redirects are not followed: register the final URL)"
	}
	if size > 0 {
		o.err += fmt.Sprintf(" (%d-byte body, not recorded)", size)
	}
	return o
}

// saveDelivered advances the stored cursor after a 2xx and clears the
// failure count. It runs even while stopping, so an accepted entry is not
// sent again after a restart.
func (w *worker) saveDelivered(seq uint64) {
	err := w.d.store.Write(context.Background(), func(tx *store.WriteTxn) error {
		cur, ok := endpointIn(tx, w.id)
		if !ok {
			return nil
		}
		e := *cur
		e.Cursor = max(e.Cursor, seq)
		e.Delivered++
		e.LastDeliveredAt = tx.Now()
		e.Failures = 0
		return tx.PutRecord(TableWebhooks, w.id, &e)
	})
	if err != nil {
		w.d.log.Error("webhook: save cursor", "webhook", w.id, "seq", seq, "err", err)
		return
	}
	w.durable = max(w.durable, seq)
}

// saveCursor stores a cursor moved past entries the endpoint does not want.
func (w *worker) saveCursor() {
	seq := w.cursor
	err := w.d.store.Write(context.Background(), func(tx *store.WriteTxn) error {
		cur, ok := endpointIn(tx, w.id)
		if !ok || cur.Cursor >= seq {
			return nil
		}
		e := *cur
		e.Cursor = seq
		return tx.PutRecord(TableWebhooks, w.id, &e)
	})
	if err != nil {
		w.d.log.Error("webhook: save cursor", "webhook", w.id, "seq", seq, "err", err)
		return
	}
	w.durable = max(w.durable, seq)
}

// saveFailure records a failed attempt with its audit event and pauses the
// endpoint when it has failed too often. It returns whether the endpoint
// is now paused and its consecutive failures.
func (w *worker) saveFailure(seq uint64, o outcome) (paused bool, failures int) {
	if len(o.err) > maxErrorLen {
		o.err = o.err[:maxErrorLen] + "…"
	}
	failures = 1
	err := w.d.store.Write(context.Background(), func(tx *store.WriteTxn) error {
		cur, ok := endpointIn(tx, w.id)
		if !ok {
			return nil
		}
		e := *cur
		e.Failures++
		e.LastError, e.LastErrorAt = o.err, tx.Now()
		actor := audit.Actor{Kind: "system", Name: dispatcherActorName}
		details := map[string]any{"seq": seq, "result": o.result, "failures": e.Failures}
		if o.status != 0 {
			details["status"] = o.status
		}
		tx.Audit(audit.Event{Type: TypeDeliveryFailed, Actor: actor, Target: target(&e), Reasons: []string{o.err}, Details: details})
		if e.Failures >= w.d.cfg.MaxFailures || o.gone {
			e.Paused, e.PausedAt = true, tx.Now()
			reason := fmt.Sprintf("%d consecutive failed deliveries", e.Failures)
			if o.gone {
				reason = "the receiver answered 410 Gone"
			}
			tx.Audit(audit.Event{Type: TypeWebhookPaused, Actor: actor, Target: target(&e), Reasons: []string{reason, o.err},
				Details: map[string]any{"seq": seq, "failures": e.Failures, "cursor": e.Cursor}})
		}
		paused, failures = e.Paused, e.Failures
		return tx.PutRecord(TableWebhooks, w.id, &e)
	})
	if err != nil {
		w.d.log.Error("webhook: record failure", "webhook", w.id, "seq", seq, "err", err)
		return false, failures
	}
	if paused {
		w.d.m.paused.Inc()
		w.d.log.Error("webhook endpoint paused after failures; resume it once the receiver works",
			"webhook", w.id, "seq", seq, "failures", failures, "err", o.err)
	}
	return paused, failures
}

// backoff is the delay after the n-th consecutive failure: MinBackoff
// doubled per earlier failure, capped at MaxBackoff, with "equal jitter"
// (between half and all of it).
func backoff(cfg Config, n int) time.Duration {
	d := cfg.MinBackoff
	for i := 1; i < n && d < cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, cfg.MaxBackoff)
	half := d / 2
	return half + rand.N(d-half+1)
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP
// date. It returns 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// sleep waits for d or until ctx ends; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
