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
				end := min(start+batchChunk, len(inputs))
				s.chunk(ctx, inputs[start:end], decisions[start:end], errs[start:end])
			}
		})
	}
	wg.Wait()
	return decisions, errs
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
