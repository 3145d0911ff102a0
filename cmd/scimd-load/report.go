package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sync"
	"text/tabwriter"
	"time"
)

// maxSamples bounds the latencies kept per request kind (about 8 MB).
const maxSamples = 1 << 20

// recorder collects the outcome of every request. It is safe for
// concurrent use.
type recorder struct {
	mu     sync.Mutex
	kinds  map[string]*kindStats
	order  []string
	errors []string
}

type kindStats struct {
	samples     []time.Duration
	count       int
	errors      int
	first, last time.Time
}

func newRecorder() *recorder { return &recorder{kinds: map[string]*kindStats{}} }

// observe records one request of kind that started at start and took d;
// err is its failure, if any.
func (r *recorder) observe(kind string, start time.Time, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.kinds[kind]
	if k == nil {
		k = &kindStats{first: start}
		r.kinds[kind] = k
		r.order = append(r.order, kind)
	}
	k.count++
	if end := start.Add(d); end.After(k.last) {
		k.last = end
	}
	if start.Before(k.first) {
		k.first = start
	}
	if err != nil {
		k.errors++
		if len(r.errors) < 5 {
			r.errors = append(r.errors, err.Error())
		}
		return
	}
	if len(k.samples) < maxSamples {
		k.samples = append(k.samples, d)
	}
}

// requestsPer is how many HTTP requests one operation of kind sends: a
// move is a remove from one group and an add to another.
func requestsPer(kind string) int {
	if kind == kindMove {
		return 2
	}
	return 1
}

// Stats are the numbers of one request kind (or of all of them). Count,
// Errors and the latencies are per operation; Requests and PerSec count
// HTTP requests (an operation of some kinds sends two, see requestsPer).
// Seconds is the window from the first operation's start to the last
// one's end, so setup (such as churn reading the server's state first) is
// not in the rates.
type Stats struct {
	Kind     string  `json:"kind"`
	Count    int     `json:"count"`
	Errors   int     `json:"errors"`
	Requests int     `json:"requests"`
	Seconds  float64 `json:"seconds"`
	// PerSec is successful operations' HTTP requests per second.
	PerSec  float64 `json:"perSecond"`
	MeanMs  float64 `json:"meanMs"`
	P50Ms   float64 `json:"p50Ms"`
	P90Ms   float64 `json:"p90Ms"`
	P99Ms   float64 `json:"p99Ms"`
	MaxMs   float64 `json:"maxMs"`
	Sampled int     `json:"sampled"`
}

// Latency is a latency distribution read from a server histogram.
type Latency struct {
	Count  uint64  `json:"count"`
	MeanMs float64 `json:"meanMs"`
	P50Ms  float64 `json:"p50Ms"`
	P90Ms  float64 `json:"p90Ms"`
	P99Ms  float64 `json:"p99Ms"`
	// MaxBucketMs is the upper bound of the highest non-empty bucket (+Inf
	// is reported as -1).
	MaxBucketMs float64 `json:"maxBucketMs"`
	// LastBoundMs is the histogram's largest finite bucket bound: a
	// percentile equal to it is a lower bound (the observation was
	// beyond the last bucket).
	LastBoundMs float64 `json:"lastBoundMs"`
}

// Report is what a run prints.
type Report struct {
	Scenario string         `json:"scenario"`
	URL      string         `json:"url"`
	Started  time.Time      `json:"started"`
	Seconds  float64        `json:"seconds"`
	Params   map[string]any `json:"params"`
	Kinds    []Stats        `json:"kinds"`
	Total    Stats          `json:"total"`
	// CommitToApplied is scimd_commit_to_applied_seconds over the run; nil
	// when the server does not export it.
	CommitToApplied *Latency `json:"commitToApplied"`
	MetricsNote     string   `json:"metricsNote,omitempty"`
	FirstErrors     []string `json:"firstErrors,omitempty"`
}

func (r *recorder) report(c config, started time.Time, elapsed time.Duration) *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := &Report{Scenario: c.scenario, URL: c.url, Started: started.UTC(), Seconds: elapsed.Seconds(),
		Params: map[string]any{"users": c.users, "groups": c.groups, "memberships": c.memberships, "batch": c.batch,
			"concurrency": c.concurrency, "rate": c.rate, "duration": c.duration.String()},
		FirstErrors: slices.Clone(r.errors)}
	var all []time.Duration
	var first, last time.Time
	count, errs, requests, okRequests := 0, 0, 0, 0
	for _, name := range r.order {
		k := r.kinds[name]
		per := requestsPer(name)
		s := stats(name, k.samples, k.count, k.errors, k.count*per, (k.count-k.errors)*per, k.last.Sub(k.first))
		rep.Kinds = append(rep.Kinds, s)
		all = append(all, k.samples...)
		count, errs = count+k.count, errs+k.errors
		requests, okRequests = requests+k.count*per, okRequests+(k.count-k.errors)*per
		if first.IsZero() || k.first.Before(first) {
			first = k.first
		}
		if k.last.After(last) {
			last = k.last
		}
	}
	rep.Total = stats("total", all, count, errs, requests, okRequests, last.Sub(first))
	return rep
}

// stats summarises one kind: count operations (errs of them failed) that
// sent requests HTTP requests (okRequests for the successful ones) over
// span.
func stats(kind string, samples []time.Duration, count, errs, requests, okRequests int, span time.Duration) Stats {
	s := Stats{Kind: kind, Count: count, Errors: errs, Requests: requests, Seconds: span.Seconds(), Sampled: len(samples)}
	if span > 0 {
		s.PerSec = float64(okRequests) / span.Seconds()
	}
	if len(samples) == 0 {
		return s
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	s.MeanMs = ms(sum / time.Duration(len(sorted)))
	s.P50Ms = ms(percentile(sorted, 0.50))
	s.P90Ms = ms(percentile(sorted, 0.90))
	s.P99Ms = ms(percentile(sorted, 0.99))
	s.MaxMs = ms(sorted[len(sorted)-1])
	return s
}

// percentile is the nearest-rank percentile of sorted samples.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted))-1e-9)) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func (rep *Report) writeTable(w io.Writer) {
	fmt.Fprintf(w, "scenario %s against %s: %.2f s\n", rep.Scenario, rep.URL, rep.Seconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\tcount\terrors\trequests\tseconds\treq/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\t")
	row := func(s Stats) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t\n",
			s.Kind, s.Count, s.Errors, s.Requests, s.Seconds, s.PerSec, s.P50Ms, s.P90Ms, s.P99Ms, s.MaxMs)
	}
	for _, s := range rep.Kinds {
		row(s)
	}
	row(rep.Total)
	tw.Flush()
	switch l := rep.CommitToApplied; {
	case l != nil && l.Count > 0:
		pct := func(v float64) string {
			if l.LastBoundMs > 0 && v >= l.LastBoundMs {
				return fmt.Sprintf(">= %.2f ms (beyond the last bucket)", v)
			}
			return fmt.Sprintf("%.2f ms", v)
		}
		fmt.Fprintf(w, "commit-to-role-applied (server histogram, %d commits): mean %.2f ms, p50 %s, p90 %s, p99 %s\n",
			l.Count, l.MeanMs, pct(l.P50Ms), pct(l.P90Ms), pct(l.P99Ms))
	case l != nil:
		fmt.Fprintln(w, "commit-to-role-applied: no commits observed")
	case rep.MetricsNote != "":
		fmt.Fprintf(w, "commit-to-role-applied: not available (%s)\n", rep.MetricsNote)
	}
	for _, e := range rep.FirstErrors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}

// writeJSON writes the report to path, or to stdout for "-".
func (rep *Report) writeJSON(path string, stdout io.Writer) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
