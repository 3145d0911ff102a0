package patch

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// copyMap deep-copies a JSON object. Nested []string, map[string]string and
// []map[string]any (which Go code building documents by hand tends to use)
// become []any and map[string]any, so the copy can be edited uniformly.
func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+2)
	for k, v := range m {
		out[k] = copyValue(v)
	}
	return out
}

func copyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return copyMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = copyValue(e)
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = e
		}
		return out
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = copyMap(e)
		}
		return out
	default:
		return v
	}
}

// equalValue compares two JSON values. Numbers compare by value whatever
// their Go type; []string equals the []any holding the same strings.
func equalValue(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			if _, conv := b.(map[string]string); !conv {
				return false
			}
			y = copyValue(b).(map[string]any)
		}
		if len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equalValue(xv, yv) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok {
			switch b.(type) {
			case []string, []map[string]any:
				y = copyValue(b).([]any)
			default:
				return false
			}
		}
		return slices.EqualFunc(x, y, equalValue)
	case []string, map[string]string, []map[string]any:
		return equalValue(copyValue(a), b)
	}
	if fa, ok := number(a); ok {
		fb, ok := number(b)
		if !ok {
			return false
		}
		if na, ok := a.(json.Number); ok {
			if nb, ok := b.(json.Number); ok && na == nb {
				return true
			}
		}
		return fa == fb
	}
	return reflect.DeepEqual(a, b)
}

// number converts a JSON number of any Go representation to float64.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil && !math.IsInf(f, 0) {
			return 0, false
		}
		return f, true
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}

// isEmpty reports whether v is "unassigned" in the sense of RFC 7643 §2.5:
// null, an empty string, an empty object or an empty array.
func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// scalarString returns the string form of a JSON string or number.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return string(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	}
	return "", false
}

// sortedKeys returns the keys of m in a deterministic order, so that keys
// differing only in case resolve the same way on every run.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// lookupFold finds a key case-insensitively, preferring the exact spelling.
func lookupFold(m map[string]any, name string) (key string, val any, ok bool) {
	if v, ok := m[name]; ok {
		return name, v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return k, v, true
		}
	}
	return "", nil, false
}

// setFold stores val under the canonical name, dropping spellings that differ
// only in case.
func setFold(m map[string]any, name string, val any) {
	if _, ok := m[name]; !ok {
		deleteFold(m, name)
	}
	m[name] = val
}

// deleteFold removes every spelling of name.
func deleteFold(m map[string]any, name string) {
	delete(m, name)
	for k := range m {
		if strings.EqualFold(k, name) {
			delete(m, k)
		}
	}
}

// asList returns a multi-valued attribute's current values. A stray single
// value is treated as a one-element list.
func asList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	default:
		return []any{x}
	}
}
