package policy

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/scimd/scimd/internal/workpool"
)

// batchChunk is how many inputs one batch evaluation decides. It
// amortises the fixed cost of an evaluation without making one failing
// decision (which fails its chunk, then retried one by one) costly.
const batchChunk = 64

var keyBatch = ast.StringTerm("batch")

// TeammateBatch evaluates many teammates against this one revision, spread
// over workers goroutines (GOMAXPROCS when workers <= 0). decisions[i] and
// errs[i] belong to inputs[i]; errs[i] is nil on success. Every decision
// carries the revision and its own decision id. When ctx ends, the inputs
// not yet evaluated get ctx's error. The decisions are those Teammate
// makes, batchChunk inputs per OPA evaluation.
func (s *Set) TeammateBatch(ctx context.Context, inputs []TeammateInput, workers int) ([]Decision, []error) {
	decisions := make([]Decision, len(inputs))
	errs := make([]error, len(inputs))
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workpool.Chunks(len(inputs), batchChunk, workers, func(start, end int) {
		b := batchPool.Get().(*batchBuf)
		s.chunk(ctx, b, inputs[start:end], decisions[start:end], errs[start:end])
		b.reset()
		batchPool.Put(b)
	})
	return decisions, errs
}

// batchBuf holds the buffers of one chunk, reused across chunks.
type batchBuf struct {
	values []ast.Value
	hashes []int
	terms  []*ast.Term // the distinct inputs to evaluate
	first  []int       // per input: index in terms, or -1 when decided
	owner  []bool      // per input: its value is terms[first]
}

func (b *batchBuf) reset() {
	clear(b.values)
	clear(b.terms)
	b.values, b.hashes, b.terms, b.first, b.owner = b.values[:0], b.hashes[:0], b.terms[:0], b.first[:0], b.owner[:0]
}

var batchPool = sync.Pool{New: func() any {
	return &batchBuf{
		values: make([]ast.Value, 0, batchChunk),
		hashes: make([]int, 0, batchChunk),
		terms:  make([]*ast.Term, 0, batchChunk),
		first:  make([]int, 0, batchChunk),
		owner:  make([]bool, 0, batchChunk),
	}
}}

// chunk decides one chunk: projected inputs from the memo when it has
// them, the others (each distinct one once) in a single evaluation, or
// one evaluation per input when that fails, so that each error stays with
// its input.
func (s *Set) chunk(ctx context.Context, b *batchBuf, inputs []TeammateInput, out []Decision, errs []error) {
	for i := range inputs {
		out[i] = Decision{Revision: s.revision, DecisionID: newDecisionID()}
	}
	if err := ctx.Err(); err != nil {
		for i := range inputs {
			errs[i] = fmt.Errorf("policy %s: %w", s.revision, err)
		}
		return
	}
	ev := s.fast
	if ev.wasm != nil {
		// One WebAssembly evaluation costs little more than its work:
		// decide each input on its own (equal inputs after the first come
		// from the memo).
		for i, in := range inputs {
			out[i], errs[i] = s.decideInput(ctx, in, out[i])
		}
		return
	}
	distinct := map[int][]int{} // hash → indices in terms
	for i, in := range inputs {
		v, err := in.projectedValue(ev.proj)
		b.values, b.hashes, b.first, b.owner = append(b.values, v), append(b.hashes, 0), append(b.first, -1), append(b.owner, false)
		if err != nil {
			errs[i] = fmt.Errorf("policy %s: teammate input: %w", s.revision, err)
			continue
		}
		h := v.Hash()
		b.hashes[i] = h
		if d, ok := ev.memo.get(h, v); ok {
			d.Revision, d.DecisionID = out[i].Revision, out[i].DecisionID
			out[i] = d
			continue
		}
		for _, j := range distinct[h] {
			if b.terms[j].Value.Compare(v) == 0 {
				b.first[i] = j
				break
			}
		}
		if b.first[i] < 0 {
			b.first[i], b.owner[i] = len(b.terms), true
			distinct[h] = append(distinct[h], len(b.terms))
			b.terms = append(b.terms, ast.NewTerm(v))
		}
	}
	if len(b.terms) == 0 {
		return
	}
	obj, err := ev.evalBatch(ctx, b.terms)
	for i := range inputs {
		j := b.first[i]
		if j < 0 {
			continue
		}
		if err != nil {
			out[i], errs[i] = s.decide(ctx, b.values[i], out[i])
			continue
		}
		t := obj.Get(ast.InternedTerm(j))
		if t == nil {
			errs[i] = fmt.Errorf("policy %s: %w", s.revision, ErrNoDecision)
			continue
		}
		if err := s.readDecision(t, &out[i]); err != nil {
			errs[i] = fmt.Errorf("policy %s: %s: %w", s.revision, QueryTeammate, err)
			continue
		}
		if b.owner[i] {
			ev.memo.put(b.hashes[i], b.values[i], out[i])
		}
	}
}
