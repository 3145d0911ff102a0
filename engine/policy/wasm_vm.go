package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/builtins"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// wasmVM is one instance of the compiled policy, with the host functions
// it calls back.
type wasmVM struct {
	runtime    wazero.Runtime
	mem        api.Memory
	malloc     api.Function
	valueDump  api.Function
	valueParse api.Function
	jsonParse  api.Function
	evalFn     api.Function
	fuel       api.MutableGlobal
	dataAddr   uint32
	heap       uint32 // where each evaluation's input goes
	builtins   map[int32]topdown.BuiltinFunc
	// capabilities are what Go built-ins see (scimd's).
	capabilities *ast.Capabilities
	// Of the running evaluation: its context, the built-in context made at
	// its first call back to a Go built-in, and the fuel refills may still
	// give.
	ctx        context.Context
	bctx       *topdown.BuiltinContext
	stopCancel func() bool
	fuelLeft   int64
	// reused is the built-in context's storage, reused across evaluations
	// with its cache emptied; stack and scratch are the buffers of calls
	// made from built-ins (one at a time).
	reused  topdown.BuiltinContext
	stack   [2]uint64
	scratch []byte
	// direct says the instance's strings and booleans have the layout
	// readString and newValue assume (checked at start); boolean holds
	// the library's interned false and true, when it interns them.
	direct  bool
	boolean [2]uint32
}

// The layout of OPA's runtime library's values (wasm/src/value.h) that
// built-in calls read and write directly, saving a round trip through
// text for the common strings and booleans. newVM checks it against
// values the library parses itself and uses it only when it matches.
const (
	opaBoolean         = 2
	opaBooleanInterned = 9
	opaString          = 4
	opaStringInterned  = 8
	opaStringSize      = 12 // type, free, len at 4, pointer at 8
	opaBooleanSize     = 2  // type, value
	opaStringLenOffset = 4
	opaStringPtrOffset = 8
)

// readString returns the string value at addr, when it is one.
func (vm *wasmVM) readString(addr uint32) (string, bool) {
	t, ok := vm.mem.ReadByte(addr)
	if !ok || (t != opaString && t != opaStringInterned) {
		return "", false
	}
	n, ok1 := vm.mem.ReadUint32Le(addr + opaStringLenOffset)
	p, ok2 := vm.mem.ReadUint32Le(addr + opaStringPtrOffset)
	if !ok1 || !ok2 {
		return "", false
	}
	b, ok := vm.mem.Read(p, n)
	if !ok {
		return "", false
	}
	return string(b), true
}

// newValue writes a boolean or string value into the instance and
// returns its address, or reports false for any other value.
func (vm *wasmVM) newValue(ctx context.Context, v ast.Value) (uint32, bool) {
	switch v := v.(type) {
	case ast.Boolean:
		if i := map[bool]int{false: 0, true: 1}[bool(v)]; vm.boolean[i] != 0 {
			return vm.boolean[i], true // static and shared: never freed
		}
		addr, err := vm.call(ctx, vm.malloc, 1, opaBooleanSize, 0)
		if err != nil {
			panic(wasmAbort{err.Error()})
		}
		b := byte(0)
		if v {
			b = 1
		}
		if !vm.mem.Write(uint32(addr), []byte{opaBoolean, b}) {
			panic(wasmAbort{"write a built-in's result"})
		}
		return uint32(addr), true
	case ast.String:
		addr, err := vm.call(ctx, vm.malloc, 1, uint64(opaStringSize+len(v)), 0)
		if err != nil {
			panic(wasmAbort{err.Error()})
		}
		a := uint32(addr)
		ok := vm.mem.Write(a, []byte{opaString, 0, 0, 0}) && // not freed with the value
			vm.mem.WriteUint32Le(a+opaStringLenOffset, uint32(len(v))) &&
			vm.mem.WriteUint32Le(a+opaStringPtrOffset, a+opaStringSize) &&
			vm.mem.WriteString(a+opaStringSize, string(v))
		if !ok {
			panic(wasmAbort{"write a built-in's result"})
		}
		return a, true
	}
	return 0, false
}

// checkLayout reports whether values the library parses itself have the
// layout readString and newValue assume.
func (vm *wasmVM) checkLayout(ctx context.Context) bool {
	str, err := vm.parseJSON(ctx, []byte(`"layout"`))
	if err != nil {
		return false
	}
	if s, ok := vm.readString(str); !ok || s != "layout" {
		return false
	}
	for _, want := range []byte{0, 1} {
		addr, err := vm.parseJSON(ctx, []byte(map[byte]string{0: "false", 1: "true"}[want]))
		if err != nil {
			return false
		}
		b, ok := vm.mem.Read(addr, opaBooleanSize)
		if !ok || (b[0] != opaBoolean && b[0] != opaBooleanInterned) || b[1] != want {
			return false
		}
		if b[0] == opaBooleanInterned {
			vm.boolean[want] = addr
		}
	}
	return true
}

// call calls f with one or two arguments (b is ignored for one) without
// allocating, and returns its result.
func (vm *wasmVM) call(ctx context.Context, f api.Function, args int, a, b uint64) (uint64, error) {
	st := vm.stack[:max(args, 1)]
	st[0] = a
	if args > 1 {
		st[1] = b
	}
	if err := f.CallWithStack(ctx, st); err != nil {
		return 0, err
	}
	return st[0], nil
}

// wasmHostModule holds the host functions the glue module re-exports.
const wasmHostModule = "opa"

func (e *wasmEngine) newVM(ctx context.Context) (vm *wasmVM, err error) {
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCompilationCache(e.cache).
		// Fuel bounds the compiled loops (see addFuel): wazero's own
		// termination checks made a decision six times slower.
		WithCloseOnContextDone(false).
		WithMemoryLimitPages(e.maxPages))
	vm = &wasmVM{runtime: r, capabilities: e.caps}
	defer func() {
		if err != nil {
			r.Close(ctx)
		}
	}()
	host := r.NewHostModuleBuilder(wasmHostModule)
	i32 := api.ValueTypeI32
	host.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
		vm.abort(uint32(stack[0]))
	}), []api.ValueType{i32}, nil).Export("opa_abort")
	for arity := range 5 {
		params := make([]api.ValueType, 2+arity)
		for k := range params {
			params[k] = i32
		}
		host.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
			// stack: built-in id, OPA's context (unused), the arguments.
			stack[0] = uint64(vm.builtin(ctx, int32(stack[0]), stack[2:2+arity]))
		}), params, []api.ValueType{i32}).Export(fmt.Sprintf("opa_builtin%d", arity))
	}
	if _, err := host.Instantiate(ctx); err != nil {
		return nil, fmt.Errorf("WebAssembly host functions: %w", err)
	}
	if _, err := r.InstantiateWithConfig(ctx, wasmEnvModule(wasmMinPages, e.maxPages), wazero.NewModuleConfig().WithName("env")); err != nil {
		return nil, fmt.Errorf("WebAssembly memory: %w", err)
	}
	mod, err := r.InstantiateWithConfig(ctx, e.module, wazero.NewModuleConfig().WithName("policy"))
	if err != nil {
		return nil, fmt.Errorf("instantiate the WebAssembly policy: %w", err)
	}
	vm.mem = mod.Memory()
	fns := map[string]*api.Function{"opa_malloc": &vm.malloc, "opa_value_dump": &vm.valueDump, "opa_value_parse": &vm.valueParse,
		"opa_json_parse": &vm.jsonParse, "opa_eval": &vm.evalFn}
	for name, f := range fns {
		if *f = mod.ExportedFunction(name); *f == nil {
			return nil, fmt.Errorf("the WebAssembly policy does not export %s", name)
		}
	}
	fuel, ok := mod.ExportedGlobal(wasmFuelExport).(api.MutableGlobal)
	if !ok {
		return nil, errors.New("the WebAssembly policy lacks its fuel counter")
	}
	vm.fuel = fuel
	if minor := mod.ExportedGlobal("opa_wasm_abi_minor_version"); vm.mem == nil || minor == nil || minor.Get() < 2 {
		return nil, errors.New("the WebAssembly policy lacks memory or opa_eval (ABI 1.2)")
	}
	vm.direct = vm.checkLayout(ctx)
	// The data documents, parsed once; each evaluation starts above them.
	if vm.dataAddr, err = vm.parseJSON(ctx, e.data); err != nil {
		return nil, fmt.Errorf("load the policy's data: %w", err)
	}
	heap, err := mod.ExportedFunction("opa_heap_ptr_get").Call(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the WebAssembly heap: %w", err)
	}
	vm.heap = uint32(heap[0])
	// Built-ins OPA's runtime library lacks are called back by id.
	res, err := mod.ExportedFunction("builtins").Call(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the policy's built-ins: %w", err)
	}
	dump, err := mod.ExportedFunction("opa_json_dump").Call(ctx, res[0])
	if err != nil {
		return nil, fmt.Errorf("list the policy's built-ins: %w", err)
	}
	var ids map[string]int32
	if err := json.Unmarshal(vm.cString(uint32(dump[0])), &ids); err != nil {
		return nil, fmt.Errorf("list the policy's built-ins: %w", err)
	}
	goNames := map[string]string{}
	for _, b := range goBuiltins() {
		goNames[goBuiltinName(b)] = b.Name
	}
	vm.builtins = make(map[int32]topdown.BuiltinFunc, len(ids))
	for name, id := range ids {
		if goName, ok := goNames[name]; ok {
			name = goName
		}
		f := topdown.GetBuiltin(name)
		if f == nil {
			return nil, fmt.Errorf("built-in %s has no implementation", name)
		}
		vm.builtins[id] = f
	}
	return vm, nil
}

func (vm *wasmVM) close() { vm.runtime.Close(context.Background()) }

// cString returns the NUL-terminated bytes at addr (aliasing memory).
func (vm *wasmVM) cString(addr uint32) []byte {
	size := vm.mem.Size()
	if addr >= size {
		return nil
	}
	b, _ := vm.mem.Read(addr, size-addr)
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// parseJSON copies JSON into the instance and parses it to an OPA value.
func (vm *wasmVM) parseJSON(ctx context.Context, b []byte) (uint32, error) {
	res, err := vm.malloc.Call(ctx, uint64(len(b)))
	if err != nil {
		return 0, err
	}
	if !vm.mem.Write(uint32(res[0]), b) {
		return 0, errors.New("write outside memory")
	}
	res, err = vm.jsonParse.Call(ctx, res[0], uint64(len(b)))
	if err != nil {
		return 0, err
	}
	if res[0] == 0 {
		return 0, errors.New("not JSON")
	}
	return uint32(res[0]), nil
}

// eval evaluates input (JSON) and returns the result JSON, which aliases
// the instance's memory until its next use. The evaluation may take
// maxFuel loop iterations, and stops at the first refill after ctx ends.
func (vm *wasmVM) eval(ctx context.Context, input []byte, maxFuel int64) ([]byte, error) {
	end := uint64(vm.heap) + uint64(len(input))
	if end > uint64(vm.mem.Size()) {
		pages := (end - uint64(vm.mem.Size()) + 65535) / 65536
		if _, ok := vm.mem.Grow(uint32(pages)); !ok {
			return nil, fmt.Errorf("%w: the input alone is %d bytes", ErrPolicyMemory, len(input))
		}
	}
	if !vm.mem.Write(vm.heap, input) {
		return nil, errors.New("write the input")
	}
	vm.ctx = ctx
	defer func() {
		vm.ctx = nil
		if vm.bctx != nil {
			vm.stopCancel()
			vm.bctx = nil
		}
	}()
	first := min(wasmFuel, maxFuel)
	vm.fuel.Set(uint64(first))
	vm.fuelLeft = maxFuel - first
	res, err := vm.evalFn.Call(ctx, 0, 0, uint64(vm.dataAddr), uint64(vm.heap), uint64(len(input)), end, 0)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if vm.fuelLeft <= 0 && vm.fuel.Get() == 0 {
			return nil, fmt.Errorf("%w (%d loop iterations)", ErrPolicySteps, maxFuel)
		}
		msg, _, _ := strings.Cut(err.Error(), "\n") // without wazero's stack trace
		if strings.Contains(msg, "opa_malloc: failed") {
			return nil, ErrPolicyMemory
		}
		return nil, fmt.Errorf("WebAssembly evaluation: %s", strings.TrimSuffix(msg, " (recovered by wazero)"))
	}
	return vm.cString(uint32(res[0])), nil
}

// refuel refills the fuel counter, or stops the evaluation when its
// context has ended or its fuel is spent.
func (vm *wasmVM) refuel() {
	if err := vm.ctx.Err(); err != nil {
		panic(wasmAbort{err.Error()})
	}
	if vm.fuelLeft <= 0 {
		panic(wasmAbort{"out of fuel"})
	}
	n := min(wasmFuel, vm.fuelLeft)
	vm.fuelLeft -= n
	vm.fuel.Set(uint64(n))
}

// builtinContext returns the running evaluation's built-in context,
// making it at the first call: a built-in that cooperates with
// cancellation (topdown.Cancel) stops when the evaluation's context ends.
func (vm *wasmVM) builtinContext() *topdown.BuiltinContext {
	if vm.bctx == nil {
		cancel := topdown.NewCancel()
		cache := vm.reused.Cache
		if cache == nil {
			cache = make(builtins.Cache)
		}
		clear(cache)
		vm.reused = topdown.BuiltinContext{Context: vm.ctx, Metrics: metrics.NoOp(), Cancel: cancel, Cache: cache,
			Time: ast.NumberTerm(json.Number(strconv.FormatInt(time.Now().UnixNano(), 10))), Capabilities: vm.capabilities}
		vm.bctx = &vm.reused
		vm.stopCancel = context.AfterFunc(vm.ctx, cancel.Cancel)
	}
	return vm.bctx
}

// wasmAbort is how a host function stops the evaluation.
type wasmAbort struct{ msg string }

func (a wasmAbort) Error() string { return a.msg }

func (vm *wasmVM) abort(addr uint32) {
	panic(wasmAbort{"policy aborted: " + string(vm.cString(addr))})
}

// builtin calls OPA's Go implementation of built-in id on the values at
// args (or refuels, for id wasmRefuel). As in OPA's interpreter
// (non-strict), a built-in's error leaves the call undefined, except a
// halt (cancellation), which ends the evaluation.
func (vm *wasmVM) builtin(ctx context.Context, id int32, args []uint64) uint32 {
	if id == wasmRefuel && vm.ctx != nil {
		vm.refuel()
		return 0
	}
	f := vm.builtins[id]
	if f == nil || vm.ctx == nil {
		panic(wasmAbort{fmt.Sprintf("unknown built-in %d", id)})
	}
	var buf [4]*ast.Term
	terms := buf[:len(args)]
	for i, a := range args {
		if vm.direct {
			if str, ok := vm.readString(uint32(a)); ok {
				terms[i] = ast.StringTerm(str)
				continue
			}
		}
		res, err := vm.call(ctx, vm.valueDump, 1, a, 0)
		if err != nil {
			panic(wasmAbort{err.Error()})
		}
		t, err := readValueText(vm.cString(uint32(res)))
		if err != nil {
			panic(wasmAbort{"read a built-in's argument: " + err.Error()})
		}
		terms[i] = t
	}
	var out *ast.Term
	if err := f(*vm.builtinContext(), terms, func(t *ast.Term) error { out = t; return nil }); err != nil {
		var halt topdown.Halt
		if errors.As(err, &halt) {
			panic(wasmAbort{err.Error()})
		}
		return 0
	}
	if out == nil {
		return 0
	}
	if vm.direct {
		if addr, ok := vm.newValue(ctx, out.Value); ok {
			return addr
		}
	}
	// JSON when the value has no set (OPA's JSON parser is the faster),
	// else Rego's text.
	text, err := appendJSON(vm.scratch[:0], out.Value)
	parse := vm.jsonParse
	if err != nil {
		text, parse = []byte(out.String()), vm.valueParse
	} else {
		vm.scratch = text
	}
	addr, err := vm.call(ctx, vm.malloc, 1, uint64(len(text)), 0)
	if err != nil {
		panic(wasmAbort{err.Error()})
	}
	if !vm.mem.Write(uint32(addr), text) {
		panic(wasmAbort{"write a built-in's result"})
	}
	v, err := vm.call(ctx, parse, 2, addr, uint64(len(text)))
	if err != nil {
		panic(wasmAbort{err.Error()})
	}
	return uint32(v)
}
