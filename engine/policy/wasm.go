package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/tetratelabs/wazero"
)

// wasmEngine decides data.scimd.teammate with the query compiled by OPA's
// own planner and WebAssembly backend (rego.Compile, what `opa build -t
// wasm` produces), run by wazero. The compiled policy is the same Rego:
// built-ins without a WebAssembly implementation in OPA's runtime library
// (sprintf, for one) are called back into OPA's Go implementation of them.
//
// Each instance (wasmVM) owns its linear memory and is used by one
// evaluation at a time; idle instances wait in a pool. An evaluation
// writes its input at the start of the free heap and OPA allocates above
// it; nothing survives to the next evaluation. Memory is bounded
// (wasmMaxPages), loops by fuel (addFuel: wasmMaxFuel iterations, and the
// evaluation stops within wasmFuel iterations of its context ending). An
// instance whose evaluation failed is closed and discarded.
type wasmEngine struct {
	module   []byte
	cache    wazero.CompilationCache
	data     []byte // the static data documents, as JSON
	maxPages uint32
	maxFuel  int64 // loop iterations one decision may take
	idle     chan *wasmVM
	caps     *ast.Capabilities
}

// wasmQuery is what the compiled module evaluates: the decision, and
// whether its reasons are a set (JSON output would render a set as an
// array, which the decision contract refuses).
const wasmQuery = "x := " + QueryTeammate + "; setReasons := count([1 | is_set(x.reasons)])"

const (
	// wasmMaxPages bounds one instance's linear memory (64 KiB pages):
	// 64 MiB for the policy's data, one input and what evaluating it
	// allocates.
	wasmMaxPages = 1024
	// wasmMinPages is the memory an instance starts with (1 MiB).
	wasmMinPages = 16
)

// ErrPolicyMemory is returned when deciding one input needs more memory
// than a WebAssembly instance has (wasmMaxPages).
var ErrPolicyMemory = fmt.Errorf("deciding one input needed more than %d MiB of memory", wasmMaxPages/16)

// ErrPolicySteps is returned when deciding one input takes more loop
// iterations than the compiled policy's fuel (wasmFuel).
var ErrPolicySteps = errors.New("deciding one input took too many steps")

const (
	// wasmFuel is how many loop iterations an evaluation runs between
	// checks of its context (about 5 ms at the slowest measured here).
	wasmFuel = 10_000
	// wasmMaxFuel bounds the loop iterations of one decision whatever its
	// context (a few seconds at the slowest). OPA's compiled code
	// allocates in nearly every iteration of a Rego loop, so the memory
	// bound usually stops a runaway decision first.
	wasmMaxFuel = 5_000_000
	// wasmRefuel is the built-in id with which the compiled code asks for
	// fuel.
	wasmRefuel = -1
)

// newWasmEngine compiles the teammate query of the production modules to
// WebAssembly and starts one instance to check that it runs here. It
// returns an error when OPA cannot compile the policy to WebAssembly (the
// interpreter then decides) or when an instance cannot start.
func newWasmEngine(ctx context.Context, prod map[string]*ast.Module, store storage.Store) (*wasmEngine, error) {
	compiler, err := wasmCompiler(prod)
	if err != nil {
		return nil, err
	}
	opts := []func(*rego.Rego){rego.Query(wasmQuery), rego.Compiler(compiler), rego.Store(store)}
	for _, b := range goBuiltins() {
		// Declared for OPA's planner, which then calls it back; the
		// implementation is the instance's (wasmVM.builtin).
		opts = append(opts, rego.FunctionDyn(&rego.Function{Name: goBuiltinName(b), Decl: b.Decl},
			func(topdown.BuiltinContext, []*ast.Term) (*ast.Term, error) {
				return nil, errors.New("called outside WebAssembly")
			}))
	}
	cr, err := rego.New(opts...).Compile(ctx)
	if err != nil {
		return nil, fmt.Errorf("compile to WebAssembly: %w", err)
	}
	data, err := storage.ReadOne(ctx, store, storage.Path{})
	if err != nil {
		return nil, fmt.Errorf("read the policy's data: %w", err)
	}
	dataJSON, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encode the policy's data: %w", err)
	}
	module, err := addFuel(cr.Bytes)
	if err != nil {
		return nil, fmt.Errorf("bound the WebAssembly policy's loops: %w", err)
	}
	e := &wasmEngine{module: module, cache: wazero.NewCompilationCache(), data: dataJSON, maxPages: wasmMaxPages, maxFuel: wasmMaxFuel, caps: Capabilities(),
		idle: make(chan *wasmVM, 2*runtime.GOMAXPROCS(0))}
	vm, err := e.newVM(ctx)
	if err != nil {
		return nil, err
	}
	e.put(vm)
	return e, nil
}

// goBuiltins are the built-ins OPA's WebAssembly runtime implements with
// RE2, compiling the pattern at every call (a regular expression in a loop
// made a decision three times slower than interpreted). The compiled
// policy calls OPA's Go implementations of them instead, which keep
// compiled patterns, under the name goBuiltinName gives.
func goBuiltins() []*ast.Builtin {
	return []*ast.Builtin{ast.RegexIsValid, ast.RegexMatch, ast.RegexMatchDeprecated, ast.RegexFindAllStringSubmatch, ast.GlobMatch}
}

// goBuiltinName is the name under which the compiled policy calls b's Go
// implementation.
func goBuiltinName(b *ast.Builtin) string {
	return "scimd_go_" + strings.ReplaceAll(b.Name, ".", "_")
}

// wasmCompiler compiles copies of the production modules for WebAssembly:
// calls to goBuiltins renamed, so that OPA's planner calls them back.
func wasmCompiler(prod map[string]*ast.Module) (*ast.Compiler, error) {
	caps := Capabilities()
	renamed := map[string]ast.Ref{}
	for _, b := range goBuiltins() {
		alias := *b
		alias.Name = goBuiltinName(b)
		caps.Builtins = append(caps.Builtins, &alias)
		renamed[b.Name] = ast.Ref{ast.VarTerm(alias.Name)}
	}
	rename := func(op *ast.Term) {
		if ref, ok := op.Value.(ast.Ref); ok {
			if to, ok := renamed[ref.String()]; ok {
				op.Value = to
			}
		}
	}
	mods := make(map[string]*ast.Module, len(prod))
	for name, m := range prod {
		m = m.Copy()
		ast.WalkExprs(m, func(x *ast.Expr) bool {
			if terms, ok := x.Terms.([]*ast.Term); ok && x.IsCall() {
				rename(terms[0])
			}
			return false
		})
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if call, ok := t.Value.(ast.Call); ok && len(call) > 0 {
				rename(call[0])
			}
			return false
		})
		mods[name] = m
	}
	c := ast.NewCompiler().WithCapabilities(caps).WithStrict(true).WithDefaultRegoVersion(ast.RegoV1)
	if c.Compile(mods); c.Failed() {
		return nil, fmt.Errorf("compile for WebAssembly: %w", c.Errors)
	}
	return c, nil
}

// close releases the idle instances and the compiled code.
func (e *wasmEngine) close() {
	for {
		select {
		case vm := <-e.idle:
			vm.close()
		default:
			e.cache.Close(context.Background())
			return
		}
	}
}

func (e *wasmEngine) get(ctx context.Context) (*wasmVM, error) {
	select {
	case vm := <-e.idle:
		return vm, nil
	default:
		return e.newVM(ctx)
	}
}

func (e *wasmEngine) put(vm *wasmVM) {
	select {
	case e.idle <- vm:
	default:
		vm.close()
	}
}

// eval decides one input, given as JSON.
func (e *wasmEngine) eval(ctx context.Context, input []byte) (wasmResult, error) {
	vm, err := e.get(ctx)
	if err != nil {
		return wasmResult{}, err
	}
	out, err := vm.eval(ctx, input, e.maxFuel)
	if err != nil {
		vm.close()
		return wasmResult{}, err
	}
	// out lives in the instance's memory: decode it before the next use.
	r, err := decodeWasmResult(out)
	e.put(vm)
	return r, err
}
