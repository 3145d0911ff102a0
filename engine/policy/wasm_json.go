package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// errWasmInput marks an input the WebAssembly path cannot pass as JSON
// (a set, a non-string object key): it is decided by OPA's interpreter.
var errWasmInput = errors.New("input not representable as JSON")

// wasmResult is what the compiled query answered for one input.
type wasmResult struct {
	// fields holds the decision when it has the contract's shape exactly
	// (read straight from the JSON); otherwise term holds it (nil when
	// undefined), for readDecision to check and report.
	fields *decisionFields
	term   *ast.Term
	// setReasons says the decision's reasons were a set (JSON renders a
	// set as an array; the contract wants an array).
	setReasons bool
}

// decisionFields are a well-formed decision's values.
type decisionFields struct {
	excluded, access bool
	role             string
	reasons          []string
}

// decodeWasmResult reads [{"x": decision, "setReasons": n}] or [].
func decodeWasmResult(out []byte) (wasmResult, error) {
	if r, ok := readWellFormed(out); ok {
		return r, nil
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var rs []struct {
		X          any `json:"x"`
		SetReasons int `json:"setReasons"`
	}
	if err := dec.Decode(&rs); err != nil {
		return wasmResult{}, fmt.Errorf("read the WebAssembly result: %w", err)
	}
	switch len(rs) {
	case 0:
		return wasmResult{}, nil
	case 1:
	default:
		return wasmResult{}, fmt.Errorf("the WebAssembly result has %d values", len(rs))
	}
	v, err := ast.InterfaceToValue(rs[0].X)
	if err != nil {
		return wasmResult{}, fmt.Errorf("read the WebAssembly result: %w", err)
	}
	return wasmResult{term: ast.NewTerm(v), setReasons: rs[0].SetReasons > 0}, nil
}

// readWellFormed reads the result when it is one decision of exactly the
// contract's shape, {"excluded": bool, "access": bool, "role": string or
// null, "reasons": [string…]} and no other key, with setReasons 0; for
// anything else it reports false and decodeWasmResult reads it in full.
func readWellFormed(out []byte) (wasmResult, bool) {
	sc := resultScanner{b: out}
	var f decisionFields
	seen := 0
	ok := sc.lit("[") && sc.lit("{")
	for i := 0; ok && i < 2; i++ {
		if i > 0 {
			ok = sc.lit(",")
		}
		switch key, _ := sc.str(); {
		case !ok:
		case key == "setReasons":
			ok = sc.lit(":") && sc.lit("0")
			seen |= 1
		case key == "x":
			ok = sc.lit(":") && sc.decision(&f)
			seen |= 2
		default:
			ok = false
		}
	}
	ok = ok && seen == 3 && sc.lit("}") && sc.lit("]")
	sc.space()
	if !ok || len(sc.b) != 0 {
		return wasmResult{}, false
	}
	return wasmResult{fields: &f}, true
}

// resultScanner reads JSON of an expected shape from OPA's runtime
// library; every method reports false on anything else.
type resultScanner struct{ b []byte }

func (sc *resultScanner) space() {
	for len(sc.b) > 0 && (sc.b[0] == ' ' || sc.b[0] == '\n' || sc.b[0] == '\t' || sc.b[0] == '\r') {
		sc.b = sc.b[1:]
	}
}

// lit consumes s after optional white space.
func (sc *resultScanner) lit(s string) bool {
	sc.space()
	if !bytes.HasPrefix(sc.b, []byte(s)) {
		return false
	}
	sc.b = sc.b[len(s):]
	return true
}

// str reads a JSON string: plain bytes when it has no escape, else
// through encoding/json; invalid UTF-8 is refused (encoding/json would
// replace it).
func (sc *resultScanner) str() (string, bool) {
	sc.space()
	if len(sc.b) == 0 || sc.b[0] != '"' {
		return "", false
	}
	escaped := false
	for i := 1; i < len(sc.b); i++ {
		switch c := sc.b[i]; {
		case c == '\\':
			escaped = true
			i++
		case c < 0x20:
			return "", false
		case c == '"':
			tok := sc.b[:i+1]
			sc.b = sc.b[i+1:]
			if !utf8.Valid(tok) {
				return "", false
			}
			if !escaped {
				return string(tok[1 : len(tok)-1]), true
			}
			var v string
			if json.Unmarshal(tok, &v) != nil {
				return "", false
			}
			return v, true
		}
	}
	return "", false
}

// value reads a JSON value as an OPA value, nested at most 64 deep.
func (sc *resultScanner) value(depth int) (ast.Value, bool) {
	sc.space()
	if len(sc.b) == 0 || depth > 64 {
		return nil, false
	}
	switch c := sc.b[0]; {
	case c == '"':
		str, ok := sc.str()
		return ast.String(str), ok
	case c == '[':
		sc.b = sc.b[1:]
		var elems []*ast.Term
		for !sc.lit("]") {
			if len(elems) > 0 && !sc.lit(",") {
				return nil, false
			}
			v, ok := sc.value(depth + 1)
			if !ok {
				return nil, false
			}
			elems = append(elems, ast.NewTerm(v))
		}
		return ast.NewArray(elems...), true
	case c == '{':
		sc.b = sc.b[1:]
		var items [][2]*ast.Term
		for !sc.lit("}") {
			if len(items) > 0 && !sc.lit(",") {
				return nil, false
			}
			k, ok := sc.str()
			if !ok || !sc.lit(":") {
				return nil, false
			}
			v, ok := sc.value(depth + 1)
			if !ok {
				return nil, false
			}
			items = append(items, [2]*ast.Term{ast.StringTerm(k), ast.NewTerm(v)})
		}
		return ast.NewObject(items...), true
	case c == 't' || c == 'f':
		b, ok := sc.boolean()
		return ast.Boolean(b), ok
	case c == 'n':
		return ast.Null{}, sc.lit("null")
	default:
		i := 0
		for i < len(sc.b) && bytes.IndexByte([]byte("+-0123456789.eE"), sc.b[i]) >= 0 {
			i++
		}
		num := sc.b[:i]
		if i == 0 || !json.Valid(num) {
			return nil, false
		}
		sc.b = sc.b[i:]
		return ast.Number(num), true
	}
}

// boolean reads true or false.
func (sc *resultScanner) boolean() (bool, bool) {
	switch {
	case sc.lit("true"):
		return true, true
	case sc.lit("false"):
		return false, true
	}
	return false, false
}

// decision reads {"excluded": bool, "access": bool, "role": string|null,
// "reasons": [string…]}, its four keys in any order and no other.
func (sc *resultScanner) decision(f *decisionFields) bool {
	if !sc.lit("{") {
		return false
	}
	seen := 0
	for i := range 4 {
		if i > 0 && !sc.lit(",") {
			return false
		}
		key, ok := sc.str()
		if !ok || !sc.lit(":") {
			return false
		}
		switch key {
		case "excluded":
			f.excluded, ok = sc.boolean()
			seen |= 1
		case "access":
			f.access, ok = sc.boolean()
			seen |= 2
		case "role":
			if !sc.lit("null") {
				f.role, ok = sc.str()
			}
			seen |= 4
		case "reasons":
			ok = sc.lit("[")
			f.reasons = []string{}
			for ok && !sc.lit("]") {
				if len(f.reasons) > 0 && !sc.lit(",") {
					return false
				}
				var r string
				r, ok = sc.str()
				f.reasons = append(f.reasons, r)
			}
			seen |= 8
		default:
			return false
		}
		if !ok {
			return false
		}
	}
	return seen == 15 && sc.lit("}")
}

// readValueText reads a value as OPA's runtime library prints it (Rego's
// syntax): directly when it is plain JSON (the same value then, and much
// faster to read), else with OPA's parser (sets, non-string keys).
func readValueText(b []byte) (*ast.Term, error) {
	sc := resultScanner{b: b}
	if v, ok := sc.value(0); ok {
		if sc.space(); len(sc.b) == 0 {
			return ast.NewTerm(v), nil
		}
	}
	return ast.ParseTerm(string(b))
}

// appendJSON appends v as JSON, or fails with errWasmInput for what JSON
// cannot carry (sets, non-string keys).
func appendJSON(b []byte, v ast.Value) ([]byte, error) {
	switch v := v.(type) {
	case ast.Null:
		return append(b, "null"...), nil
	case ast.Boolean:
		return strconv.AppendBool(b, bool(v)), nil
	case ast.Number:
		if !json.Valid([]byte(v)) {
			return b, errWasmInput
		}
		return append(b, v...), nil
	case ast.String:
		return appendJSONString(b, string(v))
	case *ast.Array:
		b = append(b, '[')
		var err error
		for i := range v.Len() {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSON(b, v.Elem(i).Value); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case ast.Object:
		b = append(b, '{')
		var err error
		first := true
		v.Foreach(func(k, x *ast.Term) {
			if err != nil {
				return
			}
			key, ok := k.Value.(ast.String)
			if !ok {
				err = errWasmInput
				return
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			if b, err = appendJSONString(b, string(key)); err != nil {
				return
			}
			b = append(b, ':')
			b, err = appendJSON(b, x.Value)
		})
		if err != nil {
			return b, err
		}
		return append(b, '}'), nil
	}
	return b, errWasmInput
}
