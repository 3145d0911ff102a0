package policy

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// batchQuery evaluates data.scimd.teammate once per element of input.batch,
// each with that element as its whole input, and returns the decisions keyed
// by index (an undefined decision leaves its index out). It is an object
// comprehension: a partial-object rule would be quadratic (OPA 1.22).
const batchQuery = `{i: d | some i, x in input.batch; d := ` + QueryTeammate + ` with input as x}`

// batchChunk is how many inputs one evaluation of batchQuery decides. It
// amortises the fixed cost of an evaluation without making one failing
// decision (which fails its chunk, then retried one by one) costly.
const batchChunk = 64

var keyBatch = ast.StringTerm("batch")

// TeammateBatch evaluates many teammates against this one revision, spread
// over workers goroutines (GOMAXPROCS when workers <= 0). decisions[i] and
// errs[i] belong to inputs[i]; errs[i] is nil on success. Every decision
// carries the revision and its own decision id. When ctx ends, the inputs
// not yet evaluated get ctx's error.
//
// When the set has a native decision table (see Native), it decides the
// ordinary inputs and OPA the others, with the same results as OPA alone.
func (s *Set) TeammateBatch(ctx context.Context, inputs []TeammateInput, workers int) ([]Decision, []error) {
	decisions := make([]Decision, len(inputs))
	errs := make([]error, len(inputs))
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	rest := s.nativeBatch(ctx, inputs, decisions, errs, workers)
	if rest == nil { // no native table: OPA decides all
		s.opaBatch(ctx, inputs, decisions, errs, workers)
		return decisions, errs
	}
	if len(rest) == 0 {
		return decisions, errs
	}
	sub := make([]TeammateInput, len(rest))
	for j, i := range rest {
		sub[j] = inputs[i]
	}
	subD, subE := make([]Decision, len(rest)), make([]error, len(rest))
	s.opaBatch(ctx, sub, subD, subE, workers)
	for j, i := range rest {
		decisions[i], errs[i] = subD[j], subE[j]
	}
	return decisions, errs
}

// nativeChunk is how many inputs a worker of nativeBatch takes at a time.
const nativeChunk = 256

// nativeBatch decides with the native table every input it can, on
// workers goroutines, and returns the indices of the inputs left for OPA:
// nil when the set has no native table (all of them). Sampled decisions are
// checked by the oracle; if the table is switched off during the batch,
// every input it decided is left for OPA.
func (s *Set) nativeBatch(ctx context.Context, inputs []TeammateInput, out []Decision, errs []error, workers int) []int {
	t := s.nativeTable()
	if t == nil {
		return nil
	}
	decided := make([]bool, len(inputs))
	parallel(len(inputs), nativeChunk, workers, func(start, end int) {
		if err := ctx.Err(); err != nil {
			for i := start; i < end; i++ {
				out[i] = Decision{Revision: s.revision, DecisionID: newDecisionID()}
				errs[i] = fmt.Errorf("policy %s: %w", s.revision, err)
				decided[i] = true
			}
			return
		}
		for i := start; i < end; i++ {
			d, ok := t.decideInput(inputs[i])
			if !ok {
				continue
			}
			d.Revision, d.DecisionID = s.revision, newDecisionID()
			if s.sampled() {
				v, err := inputs[i].Value()
				if err != nil {
					continue // cannot happen for an input the table decides
				}
				d, errs[i] = s.verify(ctx, t, v, d)
			}
			out[i], decided[i] = d, true
		}
	})
	rest := []int{}
	off := s.nativeTable() != t
	for i, ok := range decided {
		if !ok || (off && errs[i] == nil) {
			rest = append(rest, i)
		}
	}
	return rest
}

// parallel calls fn on consecutive ranges of [0, n) of at most chunk
// items, on up to workers goroutines.
func parallel(n, chunk, workers int, fn func(start, end int)) {
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

// opaBatch has OPA decide every input, batchChunk inputs per evaluation.
func (s *Set) opaBatch(ctx context.Context, inputs []TeammateInput, decisions []Decision, errs []error, workers int) {
	parallel(len(inputs), batchChunk, workers, func(start, end int) {
		s.chunk(ctx, inputs[start:end], decisions[start:end], errs[start:end])
	})
}

// chunk decides one chunk in a single evaluation, falling back to one
// evaluation per input when that fails, so that each error stays with its
// input.
func (s *Set) chunk(ctx context.Context, inputs []TeammateInput, out []Decision, errs []error) {
	for i := range inputs {
		out[i] = Decision{Revision: s.revision, DecisionID: newDecisionID()}
	}
	if err := ctx.Err(); err != nil {
		for i := range inputs {
			errs[i] = fmt.Errorf("policy %s: %w", s.revision, err)
		}
		return
	}
	values := make([]*ast.Term, 0, len(inputs))
	index := make([]int, 0, len(inputs)) // position in the chunk of values[j]
	for i, in := range inputs {
		v, err := in.Value()
		if err != nil {
			errs[i] = fmt.Errorf("policy %s: teammate input: %w", s.revision, err)
			continue
		}
		values = append(values, ast.NewTerm(v))
		index = append(index, i)
	}
	rs, err := s.teammates.Eval(ctx, rego.EvalParsedInput(ast.NewObject([2]*ast.Term{keyBatch, ast.ArrayTerm(values...)})))
	if err != nil || len(rs) != 1 {
		for j, i := range index {
			out[i], errs[i] = s.teammateValue(ctx, values[j].Value, out[i])
		}
		return
	}
	obj, _ := rs[0].Expressions[0].Value.(*ast.Term).Value.(ast.Object)
	for j, i := range index {
		var t *ast.Term
		if obj != nil {
			t = obj.Get(ast.InternedTerm(j))
		}
		if t == nil {
			errs[i] = fmt.Errorf("policy %s: %w", s.revision, ErrNoDecision)
			continue
		}
		if err := s.readDecision(t, &out[i]); err != nil {
			errs[i] = fmt.Errorf("policy %s: %s: %w", s.revision, QueryTeammate, err)
		}
	}
}
