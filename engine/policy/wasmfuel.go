package policy

import (
	"errors"
	"fmt"
)

// The compiled policy runs without wazero's termination checks, which call
// out of the compiled code at every loop iteration and made a decision six
// times slower. It is bounded instead by fuel: addFuel rewrites the module
// so that every loop iteration, in the policy's code and in OPA's runtime
// library alike, takes one unit from a global counter, and calls the host
// when it is empty (opa_builtin0 with the id wasmRefuel): the host refills
// it while the evaluation's context lasts and its total stays under
// wasmMaxFuel, and stops the evaluation otherwise. Recursion needs no
// fuel: Rego has none, and the stack is bounded.

// wasmFuelExport names the exported fuel counter.
const wasmFuelExport = "scimd_fuel"

// errWasmFormat is returned for a module addFuel does not understand.
var errWasmFormat = errors.New("unexpected WebAssembly module")

// addFuel returns mod with a mutable i32 global, exported as
// wasmFuelExport, that each loop iteration decrements, trapping
// (unreachable) at zero.
func addFuel(mod []byte) ([]byte, error) {
	if len(mod) < 8 || string(mod[:4]) != "\x00asm" {
		return nil, errWasmFormat
	}
	type section struct {
		id   byte
		body []byte
	}
	var sections []section
	importedGlobals, globals := uint32(0), uint32(0)
	importedFuncs, refuel := uint32(0), int64(-1) // refuel: opa_builtin0's index
	r := wasmReader{b: mod[8:]}
	for !r.done() {
		id := r.byte()
		n := r.uleb()
		body := r.bytes(n)
		if r.err != nil {
			return nil, r.err
		}
		sections = append(sections, section{id, body})
		switch id {
		case 2: // imports: count the imported globals
			ir := wasmReader{b: body}
			for n := ir.uleb(); n > 0 && ir.err == nil; n-- {
				ir.bytes(ir.uleb()) // module
				name := string(ir.bytes(ir.uleb()))
				switch kind := ir.byte(); kind {
				case 0x00:
					ir.uleb()
					if name == "opa_builtin0" {
						refuel = int64(importedFuncs)
					}
					importedFuncs++
				case 0x01:
					ir.byte()
					ir.limits()
				case 0x02:
					ir.limits()
				case 0x03:
					ir.byte()
					ir.byte()
					importedGlobals++
				default:
					return nil, fmt.Errorf("%w: import kind %d", errWasmFormat, kind)
				}
			}
			if ir.err != nil {
				return nil, ir.err
			}
		case 6:
			gr := wasmReader{b: body}
			globals = gr.uleb()
			if gr.err != nil {
				return nil, gr.err
			}
		}
	}
	fuel := importedGlobals + globals
	if refuel < 0 {
		return nil, fmt.Errorf("%w: no opa_builtin0 import", errWasmFormat)
	}
	out := append([]byte(nil), mod[:8]...)
	hasGlobals := false
	for _, s := range sections {
		body := s.body
		switch s.id {
		case 6:
			hasGlobals = true
			gr := wasmReader{b: body}
			n := gr.uleb()
			rest := gr.b
			// i32, mutable, starting with fuel for the start function
			body = append(append(append(uleb(n+1), rest...), 0x7f, 0x01, 0x41), sleb(1<<30)...)
			body = append(body, 0x0b)
		case 7:
			if !hasGlobals {
				return nil, fmt.Errorf("%w: no global section", errWasmFormat)
			}
			er := wasmReader{b: body}
			n := er.uleb()
			body = append(append(uleb(n+1), er.b...), append(append(wasmName(wasmFuelExport), 0x03), uleb(fuel)...)...)
		case 10:
			var err error
			if body, err = fuelCode(body, fuel, uint32(refuel)); err != nil {
				return nil, err
			}
		}
		out = append(out, s.id)
		out = append(out, uleb(uint32(len(body)))...)
		out = append(out, body...)
	}
	return out, nil
}

// fuelCode rewrites the code section: after each loop instruction,
//
//	global.get $fuel; i32.eqz
//	if; i32.const wasmRefuel; i32.const 0; call $opa_builtin0; drop; end
//	global.get $fuel; i32.const 1; i32.sub; global.set $fuel
func fuelCode(body []byte, fuel, refuel uint32) ([]byte, error) {
	g := uleb(fuel)
	check := []byte{0x23}
	check = append(check, g...)
	check = append(check, 0x45, 0x04, 0x40, 0x41)
	check = append(check, sleb(wasmRefuel)...)
	check = append(check, 0x41, 0x00, 0x10)
	check = append(check, uleb(refuel)...)
	check = append(check, 0x1a, 0x0b, 0x23)
	check = append(check, g...)
	check = append(check, 0x41, 0x01, 0x6b, 0x24)
	check = append(check, g...)

	r := wasmReader{b: body}
	n := r.uleb()
	out := uleb(n)
	for range n {
		size := r.uleb()
		fbody := r.bytes(size)
		if r.err != nil {
			return nil, r.err
		}
		fn := wasmReader{b: fbody}
		start := len(fn.b)
		for n := fn.uleb(); n > 0 && fn.err == nil; n-- { // locals: count, type
			fn.uleb()
			fn.byte()
		}
		header := start - len(fn.b)
		code := make([]byte, 0, size+64)
		code = append(code, fbody[:header]...)
		for !fn.done() {
			at := fn.b
			op := fn.byte()
			if err := fn.skipImmediates(op); err != nil {
				return nil, err
			}
			code = append(code, at[:len(at)-len(fn.b)]...)
			if op == 0x03 { // loop
				code = append(code, check...)
			}
		}
		if fn.err != nil {
			return nil, fn.err
		}
		out = append(out, uleb(uint32(len(code)))...)
		out = append(out, code...)
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

// sleb is n in signed LEB128.
func sleb(n int32) []byte {
	var b []byte
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if (n == 0 && c&0x40 == 0) || (n == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// wasmReader reads WebAssembly's binary encoding; the first error sticks.
type wasmReader struct {
	b   []byte
	err error
}

func (r *wasmReader) done() bool { return r.err != nil || len(r.b) == 0 }

func (r *wasmReader) fail() {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated", errWasmFormat)
	}
	r.b = nil
}

func (r *wasmReader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *wasmReader) bytes(n uint32) []byte {
	if uint64(n) > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *wasmReader) uleb() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail()
	return 0
}

// sleb skips a signed LEB128 number of up to max bytes.
func (r *wasmReader) sleb(max int) {
	for range max {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.fail()
}

func (r *wasmReader) limits() {
	if r.byte()&0x01 != 0 {
		r.uleb()
	}
	r.uleb()
}

// skipImmediates skips the immediates of instruction op.
func (r *wasmReader) skipImmediates(op byte) error {
	switch {
	case op == 0x02 || op == 0x03 || op == 0x04: // block, loop, if: blocktype
		if len(r.b) > 0 && (r.b[0] == 0x40 || (r.b[0] >= 0x6f && r.b[0] <= 0x7f)) {
			r.byte()
		} else {
			r.sleb(5)
		}
	case op == 0x0c || op == 0x0d: // br, br_if
		r.uleb()
	case op == 0x0e: // br_table
		for n := r.uleb(); n > 0 && r.err == nil; n-- {
			r.uleb()
		}
		r.uleb()
	case op == 0x10: // call
		r.uleb()
	case op == 0x11: // call_indirect
		r.uleb()
		r.uleb()
	case op == 0x1c: // select t*
		for n := r.uleb(); n > 0 && r.err == nil; n-- {
			r.byte()
		}
	case op >= 0x20 && op <= 0x26: // local.*, global.*, table.get/set
		r.uleb()
	case op >= 0x28 && op <= 0x3e: // loads and stores: memarg
		r.uleb()
		r.uleb()
	case op == 0x3f || op == 0x40: // memory.size, memory.grow
		r.byte()
	case op == 0x41:
		r.sleb(5)
	case op == 0x42:
		r.sleb(10)
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op == 0xd0: // ref.null t
		r.byte()
	case op == 0xd2: // ref.func
		r.uleb()
	case op == 0xfc:
		switch sub := r.uleb(); sub {
		case 0, 1, 2, 3, 4, 5, 6, 7: // saturating truncations
		case 8: // memory.init
			r.uleb()
			r.byte()
		case 9, 13: // data.drop, elem.drop
			r.uleb()
		case 10: // memory.copy
			r.byte()
			r.byte()
		case 11: // memory.fill
			r.byte()
		case 12, 14: // table.init, table.copy
			r.uleb()
			r.uleb()
		case 15, 16, 17: // table.grow, table.size, table.fill
			r.uleb()
		default:
			return fmt.Errorf("%w: instruction 0xfc %d", errWasmFormat, sub)
		}
	case op <= 0x11 || op == 0x1a || op == 0x1b || (op >= 0x45 && op <= 0xc4) || op == 0xd1:
		// no immediates
	default:
		return fmt.Errorf("%w: instruction 0x%02x", errWasmFormat, op)
	}
	return r.err
}
