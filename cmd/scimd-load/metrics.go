package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Prometheus series the simulator reads from scimd.
const (
	appliedMetric = "scimd_commit_to_applied_seconds"
	queueMetric   = "scimd_reconcile_queue_depth"
)

// histogram is one scrape of a Prometheus histogram: cumulative bucket
// counts by upper bound, plus sum and count.
type histogram struct {
	buckets map[float64]float64
	sum     float64
	count   float64
}

// scrapeResult is what the simulator keeps of one /metrics scrape.
type scrapeResult struct {
	applied *histogram // nil when the server has no such histogram
	queue   float64
}

// scrape reads the metrics page at url ("none": skip).
func scrape(ctx context.Context, hc *http.Client, url string) (*scrapeResult, error) {
	if url == "none" {
		return nil, fmt.Errorf("metrics disabled")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the series the simulator needs from the Prometheus
// text format.
func parseMetrics(r io.Reader) (*scrapeResult, error) {
	out := &scrapeResult{}
	h := &histogram{buckets: map[float64]float64{}}
	found := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, value, ok := splitSample(line)
		if !ok {
			continue
		}
		switch name {
		case appliedMetric + "_bucket":
			le, err := parseLe(labels)
			if err != nil {
				return nil, err
			}
			h.buckets[le] = value
			found = true
		case appliedMetric + "_sum":
			h.sum = value
		case appliedMetric + "_count":
			h.count = value
			found = true
		case queueMetric:
			out.queue = value
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	if found {
		out.applied = h
	}
	return out, nil
}

// splitSample splits `name{labels} value [timestamp]`.
func splitSample(line string) (name, labels string, value float64, ok bool) {
	rest := line
	if i := strings.IndexByte(line, '{'); i >= 0 {
		j := strings.LastIndexByte(line, '}')
		if j < i {
			return "", "", 0, false
		}
		name, labels, rest = line[:i], line[i+1:j], line[j+1:]
	} else {
		sp := strings.IndexByte(line, ' ')
		if sp < 0 {
			return "", "", 0, false
		}
		name, rest = line[:sp], line[sp:]
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return "", "", 0, false
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return "", "", 0, false
	}
	return name, labels, v, true
}

func parseLe(labels string) (float64, error) {
	for _, l := range strings.Split(labels, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if ok && k == "le" {
			v = strings.Trim(v, `"`)
			if v == "+Inf" {
				return math.Inf(1), nil
			}
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("bucket without le label: %q", labels)
}

// commitToApplied is the latency distribution of the commits made between
// two scrapes: the difference of their histograms.
func commitToApplied(before, after *scrapeResult) *Latency {
	if after == nil || after.applied == nil {
		return nil
	}
	var b *histogram
	if before != nil {
		b = before.applied
	}
	return deltaLatency(b, after.applied)
}

func deltaLatency(before, after *histogram) *Latency {
	type bucket struct{ le, n float64 }
	var bs []bucket
	for le, n := range after.buckets {
		if before != nil {
			n -= before.buckets[le]
		}
		bs = append(bs, bucket{le, n})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	count, sum := after.count, after.sum
	if before != nil {
		count -= before.count
		sum -= before.sum
	}
	l := &Latency{Count: uint64(math.Max(count, 0))}
	if count <= 0 || len(bs) == 0 {
		return l
	}
	l.MeanMs = sum / count * 1000
	q := func(p float64) float64 {
		rank := p * bs[len(bs)-1].n
		lower, prevN := 0.0, 0.0
		for _, b := range bs {
			if b.n >= rank {
				if math.IsInf(b.le, 1) {
					return lower * 1000 // past the last finite bound
				}
				if b.n == prevN {
					return b.le * 1000
				}
				return (lower + (b.le-lower)*(rank-prevN)/(b.n-prevN)) * 1000
			}
			lower, prevN = b.le, b.n
		}
		return lower * 1000
	}
	l.P50Ms, l.P90Ms, l.P99Ms = q(0.50), q(0.90), q(0.99)
	for _, b := range bs {
		if !math.IsInf(b.le, 1) {
			l.LastBoundMs = b.le * 1000
		}
	}
	prev := 0.0
	for _, b := range bs {
		if b.n > prev {
			l.MaxBucketMs = b.le * 1000
			if math.IsInf(b.le, 1) {
				l.MaxBucketMs = -1
			}
		}
		prev = b.n
	}
	return l
}

// waitSettled waits (at most 30 s) until the reconciler has caught up:
// its queue is empty and the applied histogram stops moving.
func waitSettled(ctx context.Context, hc *http.Client, url string) {
	deadline := time.Now().Add(30 * time.Second)
	var last float64 = -1
	for time.Now().Before(deadline) {
		s, err := scrape(ctx, hc, url)
		if err != nil || s.applied == nil {
			return
		}
		if s.queue == 0 && s.applied.count == last {
			return
		}
		last = s.applied.count
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}
