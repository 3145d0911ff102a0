package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/scimd/scimd/engine/policy"

	"github.com/scimd/scimd/internal/workpool"
)

// DefaultEvalTimeout is how long one teammate's evaluation may take by
// default: far above an ordinary decision (microseconds), far below what
// would let one slow input stall deprovisioning.
const DefaultEvalTimeout = 200 * time.Millisecond

// ErrEvalDeadline marks an evaluation that did not finish within the
// reconciler's evaluation timeout.
var ErrEvalDeadline = errors.New("evaluation deadline exceeded")

// evalChunk is how many inputs of a large pass share one batched
// evaluation (and one deadline of chunkTimeoutFactor evaluation timeouts):
// a slow input costs its chunk one deadline, after which each of the
// chunk's inputs is retried alone with its own deadline.
const (
	evalChunk          = 64
	chunkTimeoutFactor = 4
)

// decideAll evaluates inputs with set, each under the evaluation deadline,
// on up to the reconciler's workers goroutines, so that one slow input
// delays the others by at most one deadline.
func (r *Reconciler) decideAll(ctx context.Context, set *policy.Set, inputs []policy.TeammateInput) ([]policy.Decision, []error) {
	decisions, errs := make([]policy.Decision, len(inputs)), make([]error, len(inputs))
	if len(inputs) <= evalChunk {
		r.fanOut(len(inputs), 1, func(i int) {
			decisions[i], errs[i] = r.decideOne(ctx, set, inputs[i])
		})
		return decisions, errs
	}
	var retry []int
	var mu sync.Mutex
	r.fanOut(len(inputs), evalChunk, func(start int) {
		end := min(start+evalChunk, len(inputs))
		cctx, cancel := context.WithTimeout(ctx, chunkTimeoutFactor*r.evalTimeout)
		d, e := set.TeammateBatch(cctx, inputs[start:end], 1)
		expired := cctx.Err() != nil && ctx.Err() == nil
		cancel()
		copy(decisions[start:end], d)
		copy(errs[start:end], e)
		if !expired {
			return
		}
		mu.Lock()
		for i := start; i < end; i++ {
			if errs[i] != nil {
				retry = append(retry, i)
			}
		}
		mu.Unlock()
	})
	r.fanOut(len(retry), 1, func(j int) {
		i := retry[j]
		decisions[i], errs[i] = r.decideOne(ctx, set, inputs[i])
	})
	return decisions, errs
}

// decideOne evaluates one input under the evaluation deadline.
func (r *Reconciler) decideOne(ctx context.Context, set *policy.Set, in policy.TeammateInput) (policy.Decision, error) {
	ectx, cancel := context.WithTimeout(ctx, r.evalTimeout)
	defer cancel()
	d, err := set.Teammate(ectx, in)
	if err != nil && ectx.Err() != nil && ctx.Err() == nil {
		err = fmt.Errorf("policy %s: %w (%s): the teammate keeps its current decision", set.Revision(), ErrEvalDeadline, r.evalTimeout)
	}
	return d, err
}

// fanOut calls fn(start) for start = 0, step, 2·step, … below n, on up to
// the reconciler's workers goroutines (inline when there is one item).
func (r *Reconciler) fanOut(n, step int, fn func(start int)) {
	workpool.Chunks(n, step, r.workerCount(), func(start, _ int) { fn(start) })
}
