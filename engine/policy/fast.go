package policy

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/util"
)

// The evaluator decides data.scimd.teammate for one revision with OPA, and
// makes that fast for any policy with OPA's own mechanisms, prepared once
// per revision:
//
//   - partial evaluation of the query with input unknown
//     (rego.PartialResult): what depends only on the policy and its data
//     is evaluated once. OPA does not partially evaluate ordered rules
//     (`else`); for a policy whose decision is one, the residual is the
//     query itself, and the next point does the folding;
//   - rules that do not depend on the input (complete rules without
//     arguments, transitively free of input and `with`) are evaluated once
//     and handed to every evaluation through OPA's virtual document cache
//     (rego.EvalVirtualCache), so tables, exclusion lists and lowered
//     names are not recomputed per teammate;
//   - the input is projected to the paths the compiled policy can read
//     (see projection), so large user records are not converted for
//     nothing;
//   - equal projected inputs are decided once per revision (a decision is
//     a pure function of the revision and its input), in a bounded memo;
//   - batches evaluate many teammates per OPA evaluation, over all cores;
//   - above all, when OPA can compile the policy to WebAssembly (its
//     planner, as `opa build -t wasm`) and the compiled form decides the
//     probe inputs faster, it decides, run by wazero (see wasmEngine): the
//     same Rego, two to three times cheaper than the interpreter for most
//     policies. Inputs JSON cannot carry, and policies OPA cannot compile
//     or that run faster interpreted, are decided by the interpreter.
type evaluator struct {
	single rego.PreparedEvalQuery // the residual query
	batch  rego.PreparedEvalQuery // the residual for each element of input.batch
	// residual is the residual query as text, and partial whether
	// partial evaluation simplified anything.
	residual string
	partial  bool
	// statics holds the values of the input-independent rules, read-only
	// once built; staticRules names them.
	statics     topdown.VirtualCache
	staticRules []string
	proj        *projection
	memo        memo
	// compiled is the policy compiled to WebAssembly (nil when OPA could
	// not compile it), wasm the same when it decides (see useWasm), and
	// engine says which evaluator decides, and why.
	compiled *wasmEngine
	wasm     *wasmEngine
	engine   string
}

// partialNamespace is where partial evaluation puts the residual; a
// policy set using the package keeps its name apart (see newEvaluator).
const partialNamespace = "scimd_residual"

// newEvaluator prepares the fast decision path of a revision from its
// production modules and store.
//
// probes are inputs on which the residual of partial evaluation and the
// query are compared (see evalSteps).
func newEvaluator(ctx context.Context, prod map[string]*ast.Module, store storage.Store, probes []ast.Value) (*evaluator, error) {
	ns := partialNamespace
	for usesPackage(prod, ns) {
		ns += "_"
	}
	// The projection is found on the modules as they are once references
	// are resolved (data.scimd.x for x) and before the compiler rewrites
	// expressions into local variables, which would hide the constant
	// paths of calls such as object.get(input.user, [k, "department"], "").
	var resolved []*ast.Module // nil until the stage ran
	c := newCompiler().WithStageAfter("ResolveRefs", ast.CompilerStageDefinition{
		Name:       "ScimdInputPaths",
		MetricName: "scimd_input_paths",
		Stage: func(c *ast.Compiler) *ast.Error {
			if resolved != nil {
				return nil // partial evaluation compiles again: keep the first
			}
			resolved = make([]*ast.Module, 0, len(c.Modules))
			for _, name := range sortedKeys(c.Modules) {
				resolved = append(resolved, c.Modules[name].Copy())
			}
			return nil
		},
	})
	if c.Compile(prod); c.Failed() {
		return nil, c.Errors
	}
	e := &evaluator{}
	e.memo.seed = maphash.MakeSeed()
	// Input-independent rules, found before partial evaluation adds its
	// modules to the compiler.
	if err := e.foldStatics(ctx, c, store); err != nil {
		return nil, err
	}

	prepareBatch := func(result string) (rego.PreparedEvalQuery, error) {
		return rego.New(
			rego.Query(`{i: d | some i, x in input.batch; d := `+result+` with input as x}`),
			rego.Compiler(c),
			rego.Store(store),
			rego.GenerateJSON(asTerm),
		).PrepareForEval(ctx)
	}
	var err error
	if e.single, err = rego.New(rego.Query(QueryTeammate), rego.Compiler(c), rego.Store(store),
		rego.GenerateJSON(asTerm)).PrepareForEval(ctx); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", QueryTeammate, err)
	}
	if e.batch, err = prepareBatch(QueryTeammate); err != nil {
		return nil, fmt.Errorf("prepare %s for batches: %w", QueryTeammate, err)
	}

	pr, err := rego.New(
		rego.Query(QueryTeammate),
		rego.Compiler(c),
		rego.Store(store),
		rego.PartialNamespace(ns),
		rego.Unknowns([]string{"input"}),
	).PartialResult(ctx)
	if err != nil {
		// OPA refused to partially evaluate the policy (e.g., it would
		// not be effective): the query is evaluated as it is.
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		e.residual = "not partially evaluated: " + err.Error()
	} else {
		var residual []string
		for name, m := range c.Modules {
			if strings.HasPrefix(name, "__partialresult__") || strings.HasPrefix(name, "__partialsupport__") {
				for _, r := range m.Rules {
					residual = append(residual, r.String())
				}
			}
		}
		slices.Sort(residual)
		e.residual = strings.Join(residual, "\n")
		if !isTrivialResidual(c, ns) {
			// A residual can be larger than the query (one copy of a body
			// per alternative): it is used only when it evaluates the
			// probe inputs in fewer steps than the query.
			single, err := pr.Rego(rego.GenerateJSON(asTerm)).PrepareForEval(ctx)
			if err != nil {
				return nil, fmt.Errorf("prepare the residual of %s: %w", QueryTeammate, err)
			}
			rSteps, qSteps := evalSteps(ctx, single, probes), evalSteps(ctx, e.single, probes)
			if rSteps < qSteps {
				batch, err := prepareBatch("data." + ns + ".__result__")
				if err != nil {
					return nil, fmt.Errorf("prepare the residual of %s for batches: %w", QueryTeammate, err)
				}
				e.single, e.batch, e.partial = single, batch, true
			}
			e.residual += fmt.Sprintf("\n(%d evaluation steps on %d probe inputs, against %d for the query)", rSteps, len(probes), qSteps)
		}
	}

	e.proj = projectionOf(resolved, nil, func(r ast.Ref) *ast.Term {
		t, _ := e.statics.Get(r)
		return t
	})
	return e, nil
}

// usesPackage reports whether a module's package is data.ns or below it.
func usesPackage(mods map[string]*ast.Module, ns string) bool {
	p := ast.MustParseRef("data." + ns)
	for _, m := range mods {
		if m.Package.Path.HasPrefix(p) {
			return true
		}
	}
	return false
}

// isTrivialResidual reports whether partial evaluation left the query
// as it was: one body `data.scimd.teammate = _` and no support rules.
func isTrivialResidual(c *ast.Compiler, ns string) bool {
	for name := range c.Modules {
		if strings.HasPrefix(name, "__partialsupport__") {
			return false
		}
	}
	m := c.Modules["__partialresult__"+ns+"__"]
	if m == nil || len(m.Rules) != 1 || len(m.Rules[0].Body) != 1 {
		return false
	}
	body := m.Rules[0].Body[0]
	return body.IsEquality() && body.Operand(0).Value.Compare(ast.MustParseRef(QueryTeammate)) == 0
}

// foldStatics evaluates every input-independent complete rule once and
// records its value for the virtual document cache of each evaluation.
// Such a rule has no arguments, a ground head, one value, and neither it
// nor anything it depends on reads input or uses `with`. If any
// production rule uses `with` on data, nothing is folded: a rule's value
// could then differ inside that rule's evaluation.
func (e *evaluator) foldStatics(ctx context.Context, c *ast.Compiler, store storage.Store) error {
	e.statics = topdown.NewVirtualCache()
	withData := false
	for _, m := range c.Modules {
		ast.WalkExprs(m, func(x *ast.Expr) bool {
			for _, w := range x.With {
				if w.Target.Value.(ast.Ref).HasPrefix(ast.DefaultRootRef) {
					withData = true
				}
			}
			return withData
		})
	}
	if withData {
		return nil
	}
	dependent := map[util.T]bool{} // rule → reads input (transitively)
	var dep func(r *ast.Rule) bool
	dep = func(r *ast.Rule) bool {
		if d, ok := dependent[r]; ok {
			return d
		}
		dependent[r] = true // cycles are compile errors; stay safe anyway
		d := readsInput(r)
		for x := range c.Graph.Dependencies(r) {
			if d {
				break
			}
			d = dep(x.(*ast.Rule))
		}
		dependent[r] = d
		return d
	}
	byPath := map[string][]*ast.Rule{}
	var paths []ast.Ref
	for _, name := range sortedKeys(c.Modules) {
		for _, r := range c.Modules[name].Rules {
			p := r.Ref().GroundPrefix()
			if len(p) != len(r.Ref()) {
				continue
			}
			key := r.Path().String()
			if byPath[key] == nil {
				paths = append(paths, r.Path())
			}
			byPath[key] = append(byPath[key], r)
		}
	}
	for _, path := range paths {
		rules := byPath[path.String()]
		ok := true
		for _, r := range rules {
			if len(r.Head.Args) > 0 || r.Head.RuleKind() != ast.SingleValue || len(r.Ref().GroundPrefix()) != len(r.Ref()) || dep(r) {
				ok = false
				break
			}
		}
		// Another rule below this path (a.b := 1 and a.b.c := 2) makes
		// the path a tree; leave it to evaluation.
		if !ok || len(c.GetRulesWithPrefix(path)) != len(rules) {
			continue
		}
		pq, err := rego.New(rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(path)))), rego.Compiler(c), rego.Store(store),
			rego.GenerateJSON(asTerm)).PrepareForEval(ctx)
		if err != nil {
			continue
		}
		rs, err := pq.Eval(ctx, rego.EvalParsedInput(ast.NewObject()))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue // evaluation reports the error where the rule is used
		}
		if len(rs) == 0 {
			e.statics.Put(path, nil) // undefined
		} else {
			e.statics.Put(path, rs[0].Expressions[0].Value.(*ast.Term))
		}
		e.staticRules = append(e.staticRules, path.String())
	}
	return nil
}

// readsInput reports whether rule r (with its else branches) refers to
// input or uses `with`.
func readsInput(r *ast.Rule) bool {
	found := false
	ast.NewGenericVisitor(func(x any) bool {
		switch x := x.(type) {
		case *ast.Expr:
			if len(x.With) > 0 {
				found = true
			}
		case ast.Var:
			if x.Equal(inputVar) {
				found = true
			}
		case ast.Ref:
			if x.HasPrefix(ast.InputRootRef) {
				found = true
			}
		}
		return found
	}).Walk(r)
	return found
}

// stepCounter is a query tracer that counts evaluation events.
type stepCounter struct{ n int }

func (c *stepCounter) Enabled() bool               { return true }
func (c *stepCounter) TraceEvent(topdown.Event)    { c.n++ }
func (c *stepCounter) Config() topdown.TraceConfig { return topdown.TraceConfig{} }

// evalSteps is how many evaluation events q takes on the probe inputs: a
// measure of its cost that does not depend on the machine's load.
func evalSteps(ctx context.Context, q rego.PreparedEvalQuery, probes []ast.Value) int {
	c := &stepCounter{}
	for _, in := range probes {
		_, _ = q.Eval(ctx, rego.EvalParsedInput(in), rego.EvalQueryTracer(c))
	}
	return c.n
}

// seededCache is OPA's virtual document cache for one evaluation, which
// answers first from the revision's folded static rules.
type seededCache struct {
	static topdown.VirtualCache
	topdown.VirtualCache
}

func (c *seededCache) Get(ref ast.Ref) (*ast.Term, bool) {
	if v, undefined := c.static.Get(ref); v != nil || undefined {
		return v, undefined
	}
	return c.VirtualCache.Get(ref)
}

func (e *evaluator) cache() topdown.VirtualCache {
	return &seededCache{static: e.statics, VirtualCache: topdown.NewVirtualCache()}
}

// eval decides one projected input: the value of data.scimd.teammate (nil
// when it is undefined), or, from the compiled policy, the decision's
// fields when it has exactly the contract's shape.
func (e *evaluator) eval(ctx context.Context, input ast.Value) (*ast.Term, *decisionFields, error) {
	if e.wasm != nil {
		buf := jsonBufPool.Get().(*[]byte)
		b, err := appendJSON((*buf)[:0], input)
		if err == nil {
			r, err := e.wasm.eval(ctx, b)
			*buf = b[:0]
			jsonBufPool.Put(buf)
			if err == nil && r.setReasons {
				err = fmt.Errorf("%w: reasons must be an array of strings", ErrBadDecision)
			}
			return r.term, r.fields, err
		}
		jsonBufPool.Put(buf) // not representable as JSON: the interpreter decides
	}
	rs, err := e.single.Eval(ctx, rego.EvalParsedInput(input), rego.EvalVirtualCache(e.cache()))
	if err != nil || len(rs) == 0 {
		return nil, nil, err
	}
	return rs[0].Expressions[0].Value.(*ast.Term), nil, nil
}

// jsonBufPool holds buffers for inputs encoded for WebAssembly.
var jsonBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// useWasm compiles the policy to WebAssembly and decides with it when it
// is the cheaper of the two on the probe inputs, or records why the
// interpreter decides. The choice is measured, per revision: compiled
// code wins for most policies, but OPA's runtime library recompiles a
// regular expression at every call, where the interpreter caches it.
func (e *evaluator) useWasm(ctx context.Context, prod map[string]*ast.Module, store storage.Store, probes []ast.Value) error {
	w, err := newWasmEngine(ctx, prod, store)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e.engine = "OPA's interpreter: " + err.Error()
		return nil
	}
	e.compiled = w
	// The compiled engine is kept unless the interpreter is clearly
	// faster (by a quarter): on close timings (a few probe inputs, a busy
	// machine) the choice would otherwise flip between loads, and the
	// compiled engine was the faster on the random teammates of every
	// policy measured.
	compiledCost, interpretedCost := e.compareEngines(ctx, probes)
	if compiledCost < interpretedCost*5/4 {
		e.wasm = w
		e.engine = fmt.Sprintf("WebAssembly compiled by OPA (%s on %d probe inputs, interpreted %s)", compiledCost, len(probes), interpretedCost)
	} else {
		e.engine = fmt.Sprintf("OPA's interpreter (%s on %d probe inputs, compiled to WebAssembly %s)", interpretedCost, len(probes), compiledCost)
	}
	return ctx.Err()
}

// compareEngines times both engines deciding the probe inputs, three
// times each, interleaved, and returns the best time of each.
func (e *evaluator) compareEngines(ctx context.Context, probes []ast.Value) (compiled, interpreted time.Duration) {
	compiled, interpreted = time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	for range 3 {
		for _, useCompiled := range []bool{true, false} {
			e.wasm = nil
			if useCompiled {
				e.wasm = e.compiled
			}
			start := time.Now()
			for _, in := range probes {
				_, _, _ = e.eval(ctx, in)
			}
			if d := time.Since(start); useCompiled {
				compiled = min(compiled, d)
			} else {
				interpreted = min(interpreted, d)
			}
		}
	}
	e.wasm = nil
	return compiled, interpreted
}

// evalBatch decides inputs in one evaluation: an object from index to
// decision.
func (e *evaluator) evalBatch(ctx context.Context, inputs []*ast.Term) (ast.Object, error) {
	rs, err := e.batch.Eval(ctx,
		rego.EvalParsedInput(ast.NewObject([2]*ast.Term{keyBatch, ast.ArrayTerm(inputs...)})),
		rego.EvalVirtualCache(e.cache()))
	if err != nil {
		return nil, err
	}
	if len(rs) != 1 {
		return nil, fmt.Errorf("batch: %d results", len(rs))
	}
	obj, ok := rs[0].Expressions[0].Value.(*ast.Term).Value.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("batch: not an object")
	}
	return obj, nil
}

// memo remembers decisions by projected input, for one revision: as an
// AST value (the interpreter's input) or as the JSON the compiled policy
// is given (keys sorted, so equal inputs have equal text). It is bounded:
// a full shard starts over.
type memo struct {
	shards [memoShards]memoShard
	off    bool
	seed   maphash.Seed // of JSON inputs' hashes
}

const (
	memoShards     = 64
	memoShardLimit = 256 // entries per shard: 16,384 in all
)

type memoShard struct {
	mu sync.Mutex
	m  map[int][]memoEntry
	n  int
}

// memoEntry holds one of input and json.
type memoEntry struct {
	input ast.Value
	json  string
	d     Decision // Excluded, Access, Role, Reasons
}

func (m *memo) shard(h int) *memoShard {
	return &m.shards[uint(h)%memoShards]
}

// get returns the decision remembered for input (hash h), without
// revision and id.
func (m *memo) get(h int, input ast.Value) (Decision, bool) {
	return m.lookup(h, func(en *memoEntry) bool { return en.input != nil && en.input.Compare(input) == 0 })
}

// hashJSON is the hash getJSON and putJSON take for a JSON input.
func (m *memo) hashJSON(b []byte) int { return int(maphash.Bytes(m.seed, b)) }

// getJSON returns the decision remembered for the JSON input b (hash h).
func (m *memo) getJSON(h int, b []byte) (Decision, bool) {
	return m.lookup(h, func(en *memoEntry) bool { return en.input == nil && en.json == string(b) })
}

func (m *memo) lookup(h int, match func(*memoEntry) bool) (Decision, bool) {
	if m.off {
		return Decision{}, false
	}
	s := m.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.m[h] {
		if en := &s.m[h][i]; match(en) {
			d := en.d
			d.Reasons = slices.Clone(d.Reasons)
			return d, true
		}
	}
	return Decision{}, false
}

func (m *memo) put(h int, input ast.Value, d Decision) {
	m.store(h, memoEntry{input: input, d: d})
}

func (m *memo) putJSON(h int, b []byte, d Decision) {
	m.store(h, memoEntry{json: string(b), d: d})
}

func (m *memo) store(h int, en memoEntry) {
	if m.off {
		return
	}
	s := m.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil || s.n >= memoShardLimit {
		s.m, s.n = map[int][]memoEntry{}, 0
	}
	en.d.Revision, en.d.DecisionID = "", ""
	en.d.Reasons = slices.Clone(en.d.Reasons)
	s.m[h] = append(s.m[h], en)
	s.n++
}

// forget empties the memo.
func (m *memo) forget() {
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		s.m, s.n = nil, 0
		s.mu.Unlock()
	}
}

// Evaluation describes how a set's teammate decisions are evaluated: by
// OPA always, through the fast path prepared for the revision.
type Evaluation struct {
	// PartialEvaluation tells whether decisions evaluate the residual of
	// partial evaluation (used only when it takes fewer steps than the
	// query on probe inputs) rather than the query as written.
	PartialEvaluation bool `json:"partialEvaluation"`
	// FoldedRules are the input-independent rules evaluated once per
	// revision.
	FoldedRules []string `json:"foldedRules"`
	// InputPaths are the input paths the policy can read; "input" when it
	// reads the input as a whole.
	InputPaths []string `json:"inputPaths"`
	// Engine says what decides: the policy compiled to WebAssembly by OPA
	// or OPA's interpreter, with the times that chose it on the probe
	// inputs (or why the policy was not compiled).
	Engine string `json:"engine"`
}

// Evaluation describes how s decides teammates.
func (s *Set) Evaluation() Evaluation {
	return Evaluation{
		PartialEvaluation: s.fast.partial,
		FoldedRules:       slices.Clone(s.fast.staticRules),
		InputPaths:        strings.Fields(s.fast.proj.String()),
		Engine:            s.fast.engine,
	}
}
