package policy

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// batchChunk is how many inputs a worker claims at a time.
const batchChunk = 64

// TeammateBatch evaluates many teammates against this one revision, spread
// over workers goroutines (GOMAXPROCS when workers <= 0). decisions[i] and
// errs[i] belong to inputs[i]; errs[i] is nil on success. When ctx ends,
// the inputs not yet evaluated get ctx's error.
func (s *Set) TeammateBatch(ctx context.Context, inputs []TeammateInput, workers int) ([]Decision, []error) {
	decisions := make([]Decision, len(inputs))
	errs := make([]error, len(inputs))
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, (len(inputs)+batchChunk-1)/batchChunk)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				start := int(next.Add(batchChunk)) - batchChunk
				if start >= len(inputs) {
					return
				}
				for i := start; i < min(start+batchChunk, len(inputs)); i++ {
					if err := ctx.Err(); err != nil {
						decisions[i] = Decision{Revision: s.revision}
						errs[i] = fmt.Errorf("policy %s: %w", s.revision, err)
						continue
					}
					decisions[i], errs[i] = s.Teammate(ctx, inputs[i])
				}
			}
		})
	}
	wg.Wait()
	return decisions, errs
}
