// Package workpool runs the body of a loop over [0, n) on several
// goroutines, in chunks handed out in order, so callers that fan work out
// over the cores (policy batches, the reconciler's evaluations) share one
// implementation.
package workpool

import (
	"sync"
	"sync/atomic"
)

// Chunks calls fn on consecutive ranges [start, end) of [0, n), each at
// most chunk long, on up to workers goroutines, and returns when all have
// run. With one worker (or one chunk) it runs inline, in order. fn must be
// safe for concurrent use on different ranges.
func Chunks(n, chunk, workers int, fn func(start, end int)) {
	if n <= 0 {
		return
	}
	chunk = max(chunk, 1)
	workers = min(workers, (n+chunk-1)/chunk)
	if workers <= 1 {
		for start := 0; start < n; start += chunk {
			fn(start, min(start+chunk, n))
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				start := int(next.Add(int64(chunk))) - chunk
				if start >= n {
					return
				}
				fn(start, min(start+chunk, n))
			}
		})
	}
	wg.Wait()
}
