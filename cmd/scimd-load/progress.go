package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress draws a one-line progress bar on a terminal. A nil *progress
// draws nothing, so callers need not check.
type progress struct {
	w    io.Writer
	mu   sync.Mutex
	stop chan struct{}
	wg   sync.WaitGroup

	phase string
	total int64         // requests expected, 0 when the phase is timed
	span  time.Duration // length of a timed phase
	start time.Time
	count atomic.Int64
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, stop: make(chan struct{})}
	p.wg.Go(func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.draw()
			}
		}
	})
	return p
}

// begin starts a phase of total requests, or one lasting span.
func (p *progress) begin(phase string, total int64, span time.Duration) {
	if p == nil {
		return
	}
	p.draw()
	p.mu.Lock()
	if p.phase != "" {
		fmt.Fprintln(p.w)
	}
	p.phase, p.total, p.span, p.start = phase, total, span, time.Now()
	p.count.Store(0)
	p.mu.Unlock()
}

// add counts n finished requests.
func (p *progress) add(n int64) {
	if p != nil {
		p.count.Add(n)
	}
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.phase == "" {
		return
	}
	const width = 30
	n := p.count.Load()
	el := time.Since(p.start)
	frac := 0.0
	switch {
	case p.total > 0:
		frac = float64(n) / float64(p.total)
	case p.span > 0:
		frac = float64(el) / float64(p.span)
	}
	frac = min(max(frac, 0), 1)
	fill := int(frac * width)
	rate := 0.0
	if el > 0 {
		rate = float64(n) / el.Seconds()
	}
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	of := ""
	if p.total > 0 {
		of = fmt.Sprintf("/%d", p.total)
	}
	fmt.Fprintf(p.w, "\r%-14s [%s] %3.0f%% %d%s  %.0f/s  %s   ", p.phase, bar, frac*100, n, of, rate, el.Truncate(100*time.Millisecond))
}

// done draws the final state and stops redrawing.
func (p *progress) done() {
	if p == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	p.draw()
	p.mu.Lock()
	if p.phase != "" {
		fmt.Fprintln(p.w)
	}
	p.mu.Unlock()
}
