package store

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// rowDecoder decodes the stored JSON of resources, memberships and record
// envelopes at load time without reflection, and shares repeated strings
// (attribute names, short values such as "work") between the objects it
// decodes. It handles the documents the store itself writes (compact JSON,
// strings without escapes); for anything else its methods report false and
// the caller decodes with encoding/json, so the result never differs from
// what encoding/json makes of the same bytes. A rowDecoder is used by one
// goroutine.
type rowDecoder struct {
	data   []byte
	pos    int
	intern map[string]string
	// values holds short string values already boxed in an interface, so
	// that repeated values share the box as well as the bytes.
	values map[string]any
}

const (
	// internMax caps the strings a rowDecoder remembers; internValueLen is
	// the longest value (not key) string it shares.
	internMax      = 1 << 14
	internValueLen = 16
	// maxDepth bounds the nesting the fast path decodes.
	maxDepth = 64
)

func newRowDecoder() *rowDecoder {
	return &rowDecoder{intern: make(map[string]string, 256), values: make(map[string]any, 256)}
}

func (d *rowDecoder) reset(data []byte) {
	d.data, d.pos = data, 0
}

func (d *rowDecoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (d *rowDecoder) peek() byte {
	d.ws()
	if d.pos == len(d.data) {
		return 0
	}
	return d.data[d.pos]
}

// consume skips white space and then c, reporting whether c was there.
func (d *rowDecoder) consume(c byte) bool {
	if d.peek() != c {
		return false
	}
	d.pos++
	return true
}

// end reports whether only white space is left.
func (d *rowDecoder) end() bool {
	d.ws()
	return d.pos == len(d.data)
}

// rawString returns the bytes of a JSON string without escapes, control
// characters or invalid UTF-8 (those take the slow path).
func (d *rowDecoder) rawString() ([]byte, bool) {
	if !d.consume('"') {
		return nil, false
	}
	start := d.pos
	ascii := true
	for ; d.pos < len(d.data); d.pos++ {
		c := d.data[d.pos]
		switch {
		case c == '"':
			b := d.data[start:d.pos]
			d.pos++
			if !ascii && !utf8.Valid(b) {
				return nil, false
			}
			return b, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// str returns a string value; share says whether to share it with equal
// strings decoded before.
func (d *rowDecoder) str(share bool) (string, bool) {
	b, ok := d.rawString()
	if !ok {
		return "", false
	}
	if !share {
		return string(b), true
	}
	if s, ok := d.intern[string(b)]; ok {
		return s, true
	}
	s := string(b)
	if len(d.intern) < internMax {
		d.intern[s] = s
	}
	return s, true
}

// numberSpan returns the bytes of a number that follows the JSON grammar.
func (d *rowDecoder) numberSpan() ([]byte, bool) {
	d.ws()
	start, i, n := d.pos, d.pos, len(d.data)
	if i < n && d.data[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < n && d.data[i] >= '0' && d.data[i] <= '9' {
			i++
		}
		return i - j
	}
	switch {
	case i < n && d.data[i] == '0':
		i++
	case digits() == 0:
		return nil, false
	}
	if i < n && d.data[i] == '.' {
		i++
		if digits() == 0 {
			return nil, false
		}
	}
	if i < n && (d.data[i] == 'e' || d.data[i] == 'E') {
		i++
		if i < n && (d.data[i] == '+' || d.data[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	d.pos = i
	return d.data[start:i], true
}

// literal consumes the keyword lit (true, false, null).
func (d *rowDecoder) literal(lit string) bool {
	d.ws()
	if len(d.data)-d.pos < len(lit) || string(d.data[d.pos:d.pos+len(lit)]) != lit {
		return false
	}
	d.pos += len(lit)
	return true
}

// value decodes any JSON value as encoding/json does into an interface
// value: objects become map[string]any, arrays []any, numbers float64.
func (d *rowDecoder) value(depth int) (any, bool) {
	if depth > maxDepth {
		return nil, false
	}
	switch c := d.peek(); {
	case c == '{':
		return d.object(depth + 1)
	case c == '[':
		d.pos++
		arr := make([]any, 0)
		if d.consume(']') {
			return arr, true
		}
		for {
			v, ok := d.value(depth + 1)
			if !ok {
				return nil, false
			}
			arr = append(arr, v)
			if d.consume(']') {
				return arr, true
			}
			if !d.consume(',') {
				return nil, false
			}
		}
	case c == '"':
		b, ok := d.rawString()
		if !ok {
			return nil, false
		}
		if len(b) <= internValueLen {
			if v, ok := d.values[string(b)]; ok {
				return v, true
			}
			s := string(b)
			var v any = s
			if len(d.values) < internMax {
				d.values[s] = v
			}
			return v, true
		}
		return string(b), true
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	default:
		b, ok := d.numberSpan()
		if !ok {
			return nil, false
		}
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return nil, false
		}
		return f, true
	}
}

// object decodes a JSON object into a map; of repeated keys the last wins.
func (d *rowDecoder) object(depth int) (map[string]any, bool) {
	if !d.consume('{') {
		return nil, false
	}
	m := make(map[string]any)
	if d.consume('}') {
		return m, true
	}
	for {
		k, ok := d.str(true)
		if !ok || !d.consume(':') {
			return nil, false
		}
		v, ok := d.value(depth)
		if !ok {
			return nil, false
		}
		m[k] = v
		if d.consume('}') {
			return m, true
		}
		if !d.consume(',') {
			return nil, false
		}
	}
}

// fields calls fn for each member of the top-level object, with the
// decoder positioned at the value, which fn must consume; then it checks
// that nothing follows the object.
func (d *rowDecoder) fields(data []byte, fn func(key []byte) bool) bool {
	d.reset(data)
	if !d.consume('{') {
		return false
	}
	if !d.consume('}') {
		for {
			k, ok := d.rawString()
			if !ok || !d.consume(':') || !fn(k) {
				return false
			}
			if d.consume('}') {
				break
			}
			if !d.consume(',') {
				return false
			}
		}
	}
	return d.end()
}

// timeValue decodes a time as time.Time's UnmarshalJSON does.
func (d *rowDecoder) timeValue(t *time.Time) bool {
	b, ok := d.rawString()
	return ok && t.UnmarshalText(b) == nil
}

// resource decodes a stored Resource.
func (d *rowDecoder) resource(data []byte) (*Resource, bool) {
	r := &Resource{}
	ok := d.fields(data, func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "id":
			r.ID, ok = d.str(false)
		case "kind":
			var k string
			k, ok = d.str(true)
			r.Kind = Kind(k)
		case "externalId":
			r.ExternalID, ok = d.str(false)
		case "name":
			r.Name, ok = d.str(false)
		case "attrs":
			// encoding/json merges a repeated object into the first.
			if r.Attrs != nil {
				return false
			}
			if d.peek() == 'n' {
				r.Attrs, ok = nil, d.literal("null")
			} else {
				r.Attrs, ok = d.object(1)
			}
		case "created":
			ok = d.timeValue(&r.Created)
		case "modified":
			ok = d.timeValue(&r.Modified)
		case "version":
			var b []byte
			if b, ok = d.numberSpan(); ok {
				var err error
				r.Version, err = strconv.ParseUint(string(b), 10, 64)
				ok = err == nil
			}
		}
		return ok
	})
	return r, ok
}

// membership decodes a stored Membership.
func (d *rowDecoder) membership(data []byte) (*Membership, bool) {
	m := &Membership{}
	ok := d.fields(data, func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "groupId":
			m.GroupID, ok = d.str(false)
		case "memberId":
			m.MemberID, ok = d.str(false)
		case "memberKind":
			var k string
			k, ok = d.str(true)
			m.MemberKind = Kind(k)
		case "display":
			m.Display, ok = d.str(false)
		}
		return ok
	})
	return m, ok
}

// recordEnvelope decodes a stored record envelope; its value is the raw
// bytes of the value, checked by the record's decoder.
func (d *rowDecoder) recordEnvelope(data []byte) (recordEnvelope, bool) {
	var env recordEnvelope
	ok := d.fields(data, func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "table":
			env.Table, ok = d.str(true)
		case "key":
			env.Key, ok = d.str(false)
		case "value":
			d.ws()
			start := d.pos
			if _, ok = d.skip(1); ok {
				env.Value = json.RawMessage(d.data[start:d.pos])
			}
		}
		return ok
	})
	return env, ok
}

// skip passes over one JSON value without decoding it.
func (d *rowDecoder) skip(depth int) (struct{}, bool) {
	var none struct{}
	if depth > maxDepth {
		return none, false
	}
	switch c := d.peek(); {
	case c == '{':
		d.pos++
		if d.consume('}') {
			return none, true
		}
		for {
			if _, ok := d.rawString(); !ok || !d.consume(':') {
				return none, false
			}
			if _, ok := d.skip(depth + 1); !ok {
				return none, false
			}
			if d.consume('}') {
				return none, true
			}
			if !d.consume(',') {
				return none, false
			}
		}
	case c == '[':
		d.pos++
		if d.consume(']') {
			return none, true
		}
		for {
			if _, ok := d.skip(depth + 1); !ok {
				return none, false
			}
			if d.consume(']') {
				return none, true
			}
			if !d.consume(',') {
				return none, false
			}
		}
	case c == '"':
		_, ok := d.rawString()
		return none, ok
	case c == 't':
		return none, d.literal("true")
	case c == 'f':
		return none, d.literal("false")
	case c == 'n':
		return none, d.literal("null")
	default:
		_, ok := d.numberSpan()
		return none, ok
	}
}
