package policy

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/scimd/scimd/audit/jsonenc"
)

// appendProjectedJSON appends, as JSON with every object's keys sorted,
// the input projectedValue builds for projection p, without building it.
// It fails (errWasmInput) for anything it does not write exactly as that
// value would be, and wherever projectedValue would fail; the caller then
// takes that path, which decides or reports the error.
func (in TeammateInput) appendProjectedJSON(b []byte, p *projection) ([]byte, error) {
	var err error
	if !utf8.ValidString(in.Current.Role) {
		return b, errWasmInput
	}
	for _, g := range in.Groups {
		if !utf8.ValidString(g.ID) || !utf8.ValidString(g.ExternalID) || !utf8.ValidString(g.DisplayName) {
			return b, errWasmInput
		}
	}
	b = append(b, '{')
	n := 0
	key := func(k string) {
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = jsonenc.AppendString(b, k)
		b = append(b, ':')
	}
	if c := child(p, "current"); c != nil {
		key("current")
		b = append(b, '{')
		m := 0
		if cc := child(c, "access"); cc != nil {
			b = append(b, `"access":`...)
			b = strconv.AppendBool(b, in.Current.Access)
			m++
		}
		if cc := child(c, "role"); cc != nil {
			if m > 0 {
				b = append(b, ',')
			}
			b = append(b, `"role":`...)
			if in.Current.Role == "" {
				b = append(b, "null"...)
			} else {
				b = jsonenc.AppendString(b, in.Current.Role)
			}
		}
		b = append(b, '}')
	}
	if c := child(p, "groups"); c != nil {
		key("groups")
		b = append(b, '[')
		for i, g := range in.Groups {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			m := 0
			for _, f := range [...]struct{ k, v string }{{"displayName", g.DisplayName}, {"externalId", g.ExternalID}, {"id", g.ID}} {
				if child(c, f.k) == nil {
					continue
				}
				if m > 0 {
					b = append(b, ',')
				}
				m++
				b = jsonenc.AppendString(b, f.k)
				b = append(b, ':')
				b = jsonenc.AppendString(b, f.v)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if c := child(p, "user"); c != nil {
		key("user")
		if b, err = appendUserJSON(b, in.User, c, 0); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendJSONString appends s as a JSON string, or fails with
// errWasmInput when s is not valid UTF-8 (JSON would carry U+FFFD where
// OPA's interpreter sees the bytes).
func appendJSONString(b []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return b, errWasmInput
	}
	return jsonenc.AppendString(b, s), nil
}

// child is p's projection of key: p itself when p is whole, nil when p
// does not reach key.
func child(p *projection, k string) *projection {
	if p.whole {
		return p
	}
	return p.children[k]
}

// appendUserJSON writes x (decoded JSON) restricted to projection p, as
// toProjectedValue converts it.
func appendUserJSON(b []byte, x any, p *projection, depth int) ([]byte, error) {
	if depth > maxInputDepth {
		return b, errWasmInput
	}
	var err error
	switch x := x.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, x)
	case bool:
		return strconv.AppendBool(b, x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return b, errWasmInput
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case json.Number:
		if !json.Valid([]byte(x)) {
			return b, errWasmInput
		}
		return append(b, x...), nil
	case map[string]any:
		if x == nil {
			return append(b, "null"...), nil
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			if p.whole || p.children[k] != nil {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSONString(b, k); err != nil {
				return b, err
			}
			b = append(b, ':')
			if b, err = appendUserJSON(b, x[k], child(p, k), depth+1); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case []any:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, v := range x {
			if i > 0 {
				b = append(b, ',')
			}
			// Below an array everything is kept (toProjectedValue
			// converts non-objects whole).
			if b, err = appendUserJSON(b, v, wholeProjection, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	}
	return b, errWasmInput
}
