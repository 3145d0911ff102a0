package filter

import (
	"encoding/json"
	"strings"

	"github.com/scimd/scimd/scim/schema"
)

// Match reports whether the resource document matches the filter. doc is a
// SCIM resource as decoded by encoding/json (numbers as float64 or
// json.Number), with extension attributes under their schema URN. rt may be
// nil, in which case every attribute is treated as an unknown,
// case-insensitive one. A nil Filter matches every document.
func (f *Filter) Match(rt *schema.ResourceType, doc map[string]any) bool {
	if f == nil || f.root == nil {
		return true
	}
	return f.root.eval(f.bind(rt, false, ""), doc)
}

// MatchValue evaluates a value filter (the part inside brackets, such as
// [Path].Filter) against elem, one element of the multi-valued attribute
// parent: a map for complex attributes, or a primitive, which the filter
// sees as its "value" sub-attribute. parent is the attribute path, URN
// included for extension attributes (see [Path.AttrPath]); it selects the
// sub-attribute definitions. An empty or unknown parent makes every
// sub-attribute unknown, hence case-insensitive.
func (f *Filter) MatchValue(rt *schema.ResourceType, parent string, elem any) bool {
	if f == nil || f.root == nil {
		return true
	}
	return f.root.eval(f.bind(rt, true, parent), elem)
}

// binding holds the attribute definitions of a filter's nodes resolved
// against one resource type, indexed by node id.
type binding struct {
	rt      *schema.ResourceType
	inValue bool   // bound for MatchValue rather than Match
	parent  string // the value filter's parent, for MatchValue
	res     []resolved
}

// resolved says where an attribute reference finds its values.
type resolved struct {
	ext   string            // look in this extension object first ("" for core or value scope)
	whole bool              // the reference names the extension object itself
	name  string            // attribute to look up (schema spelling when known)
	sub   string            // sub-attribute to look up, "" if none
	def   *schema.Attribute // definition of the compared attribute; nil if unknown
	top   *schema.Attribute // definition of the attribute named by name; nil if unknown
}

// bind returns the definitions of the filter's attributes for rt, resolved
// once and cached until the filter is used with another resource type or
// parent.
func (f *Filter) bind(rt *schema.ResourceType, inValue bool, parent string) *binding {
	if b := f.bound.Load(); b != nil && b.rt == rt && b.inValue == inValue && b.parent == parent {
		return b
	}
	b := &binding{rt: rt, inValue: inValue, parent: parent, res: make([]resolved, f.nodes)}
	var pdef *schema.Attribute
	if parent != "" && rt != nil && rt.Core != nil {
		pdef, _ = rt.Lookup(parent)
	}
	b.resolve(f.root, inValue, pdef)
	f.bound.Store(b)
	return b
}

func (b *binding) resolve(n node, inValue bool, pdef *schema.Attribute) {
	switch n := n.(type) {
	case *andNode:
		b.resolve(n.l, inValue, pdef)
		b.resolve(n.r, inValue, pdef)
	case *orNode:
		b.resolve(n.l, inValue, pdef)
		b.resolve(n.r, inValue, pdef)
	case *notNode:
		b.resolve(n.x, inValue, pdef)
	case *cmpNode:
		b.res[n.id] = b.resolveRef(n.ref, inValue, pdef)
	case *valuePathNode:
		r := b.resolveRef(n.ref, inValue, pdef)
		b.res[n.id] = r
		elem := r.top
		if r.sub != "" {
			elem = r.def
		}
		b.resolve(n.filter, true, elem)
	}
}

func (b *binding) resolveRef(ref attrRef, inValue bool, pdef *schema.Attribute) resolved {
	r := resolved{name: ref.attr, sub: ref.sub}
	rt := b.rt
	switch {
	case inValue:
		r.top = pdef.Sub(ref.attr)
	case ref.urn != "" && !isCoreURN(rt, ref.urn):
		r.ext = ref.urn
		if rt != nil {
			if ext := rt.Extension(ref.urn); ext != nil {
				r.ext = ext.ID
				r.top = ext.Attr(ref.attr)
			}
		}
		r.whole = ref.attr == ""
	case ref.attr == "":
		// The core schema URN alone: the resource itself.
		r.whole = true
	case rt != nil && rt.Core != nil:
		r.top, _ = rt.Lookup(ref.attr)
		if r.top == nil && ref.urn == "" {
			// Tolerance: an extension attribute written without its URN
			// (department eq "Sales").
			for _, ext := range rt.Extensions {
				if a := ext.Attr(ref.attr); a != nil {
					r.ext, r.top = ext.ID, a
					break
				}
			}
		}
	}
	if r.top == nil {
		return r
	}
	r.name = r.top.Name
	if ref.sub == "" {
		r.def = r.top
		if r.top.Type == schema.Complex {
			// Compared without a sub-attribute: the "value" sub-attribute.
			r.def = r.top.Sub("value")
		}
		return r
	}
	if r.def = r.top.Sub(ref.sub); r.def != nil {
		r.sub = r.def.Name
	}
	return r
}

// isCoreURN reports whether urn is the core schema of rt (of any resource
// type when rt is nil).
func isCoreURN(rt *schema.ResourceType, urn string) bool {
	if rt == nil || rt.Core == nil {
		return len(urn) >= len("urn:ietf:params:scim:schemas:core:") &&
			strings.EqualFold(urn[:len("urn:ietf:params:scim:schemas:core:")], "urn:ietf:params:scim:schemas:core:")
	}
	return strings.EqualFold(urn, rt.Core.ID)
}

func (n *andNode) eval(b *binding, scope any) bool { return n.l.eval(b, scope) && n.r.eval(b, scope) }

func (n *orNode) eval(b *binding, scope any) bool { return n.l.eval(b, scope) || n.r.eval(b, scope) }

func (n *notNode) eval(b *binding, scope any) bool { return !n.x.eval(b, scope) }

func (n *valuePathNode) eval(b *binding, scope any) bool {
	v, ok := lookup(scope, &b.res[n.id])
	if !ok {
		return false
	}
	if r := &b.res[n.id]; r.sub != "" {
		return each(v, func(e any) bool {
			sv, ok := get(e, r.sub)
			return ok && each(sv, func(x any) bool { return n.filter.eval(b, x) })
		})
	}
	return each(v, func(e any) bool { return n.filter.eval(b, e) })
}

func (n *cmpNode) eval(b *binding, scope any) bool {
	switch {
	case n.op == "pr":
		return n.present(b, scope)
	case n.val.kind == vNull && n.op == "eq":
		return !n.present(b, scope)
	case n.val.kind == vNull && n.op == "ne":
		return n.present(b, scope)
	case n.val.kind == vNull:
		return false
	case n.op == "ne":
		return !n.test(b, scope, "eq")
	}
	return n.test(b, scope, n.op)
}

// lookup returns the value r refers to in scope.
func lookup(scope any, r *resolved) (any, bool) {
	if r.ext != "" {
		var ok bool
		if scope, ok = get(scope, r.ext); !ok {
			return nil, false
		}
	}
	if r.whole {
		return scope, scope != nil
	}
	return get(scope, r.name)
}

// present implements pr.
func (n *cmpNode) present(b *binding, scope any) bool {
	r := &b.res[n.id]
	v, ok := lookup(scope, r)
	if !ok {
		return false
	}
	if r.sub == "" {
		return isPresent(v)
	}
	return each(v, func(e any) bool {
		sv, ok := get(e, r.sub)
		return ok && isPresent(sv)
	})
}

// test reports whether any value n refers to compares true under op.
func (n *cmpNode) test(b *binding, scope any, op string) bool {
	r := &b.res[n.id]
	v, ok := lookup(scope, r)
	if !ok {
		return false
	}
	cmp := func(x any) bool { return compare(op, r.def, x, &n.val) }
	if r.sub != "" {
		return each(v, func(e any) bool {
			sv, ok := get(e, r.sub)
			return ok && each(sv, cmp)
		})
	}
	return each(v, func(e any) bool {
		if m, ok := e.(map[string]any); ok {
			// A complex value compared as a whole: its "value".
			sv, ok := get(m, "value")
			return ok && each(sv, cmp)
		}
		return compare(op, r.def, e, &n.val)
	})
}

// get returns the member key of a complex value, matching the key
// case-insensitively. A primitive (an element of a multi-valued attribute
// sent without its object wrapper, or the element MatchValue was given)
// is its own "value".
func get(v any, key string) (any, bool) {
	switch m := v.(type) {
	case map[string]any:
		if x, ok := m[key]; ok {
			return x, true
		}
		for k, x := range m {
			if strings.EqualFold(k, key) {
				return x, true
			}
		}
		return nil, false
	case nil, []any, []map[string]any, []string:
		return nil, false
	}
	if strings.EqualFold(key, "value") {
		return v, true
	}
	return nil, false
}

// each calls fn for v, or for every element of v if it is multi-valued,
// and reports whether fn returned true for any.
func each(v any, fn func(any) bool) bool {
	switch a := v.(type) {
	case []any:
		for _, e := range a {
			if fn(e) {
				return true
			}
		}
		return false
	case []map[string]any:
		for _, e := range a {
			if fn(e) {
				return true
			}
		}
		return false
	case []string:
		for _, e := range a {
			if fn(e) {
				return true
			}
		}
		return false
	}
	return fn(v)
}

// isPresent implements the pr rule: not null, not "", not an empty array,
// and for complex values at least one present sub-attribute.
func isPresent(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case string:
		return v != ""
	case []any:
		for _, e := range v {
			if isPresent(e) {
				return true
			}
		}
		return false
	case []map[string]any:
		for _, e := range v {
			if isPresent(e) {
				return true
			}
		}
		return false
	case []string:
		for _, e := range v {
			if e != "" {
				return true
			}
		}
		return false
	case map[string]any:
		for _, e := range v {
			if isPresent(e) {
				return true
			}
		}
		return false
	}
	return true
}

// compare applies op (any operator but pr and ne) to one document value.
func compare(op string, def *schema.Attribute, dv any, cv *value) bool {
	switch d := dv.(type) {
	case string:
		return compareString(op, def, d, cv)
	case bool:
		cb, ok := cv.asBool()
		return ok && op == "eq" && d == cb
	case nil, map[string]any, []any:
		return false
	}
	f, ok := toFloat(dv)
	if !ok || !cv.numOK {
		return false
	}
	return ordered(op, cmpFloat(f, cv.num))
}

func compareString(op string, def *schema.Attribute, s string, cv *value) bool {
	if def != nil {
		switch def.Type {
		case schema.Boolean:
			if cb, ok := cv.asBool(); ok {
				b, ok := parseBool(s)
				return ok && op == "eq" && b == cb
			}
		case schema.Integer, schema.Decimal:
			if f, ok := parseNumber(strings.TrimSpace(s)); ok && cv.numOK && isJSONNumber(strings.TrimSpace(s)) {
				return ordered(op, cmpFloat(f, cv.num))
			}
		case schema.DateTime:
			if cv.tOK {
				if t, ok := parseTime(s); ok {
					return ordered(op, t.Compare(cv.t))
				}
			}
		}
	}
	if cv.kind == vNull {
		return false
	}
	if def != nil && def.CaseExact {
		switch op {
		case "co":
			return strings.Contains(s, cv.str)
		case "sw":
			return strings.HasPrefix(s, cv.str)
		case "ew":
			return strings.HasSuffix(s, cv.str)
		}
		return ordered(op, strings.Compare(s, cv.str))
	}
	if op == "eq" {
		return strings.EqualFold(s, cv.str)
	}
	ls := strings.ToLower(s)
	switch op {
	case "co":
		return strings.Contains(ls, cv.lower)
	case "sw":
		return strings.HasPrefix(ls, cv.lower)
	case "ew":
		return strings.HasSuffix(ls, cv.lower)
	}
	return ordered(op, strings.Compare(ls, cv.lower))
}

// ordered maps a three-way comparison result to eq, gt, ge, lt or le;
// substring operators never match non-strings.
func ordered(op string, c int) bool {
	switch op {
	case "eq":
		return c == 0
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	case "le":
		return c <= 0
	}
	return false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	case a == b:
		return 0
	}
	return 2 // NaN: only ne matches
}

func (v *value) asBool() (bool, bool) {
	switch v.kind {
	case vBool:
		return v.b, true
	case vString:
		return parseBool(v.str)
	}
	return false, false
}

func parseBool(s string) (bool, bool) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case uint:
		return float64(n), true
	case uint64:
		return float64(n), true
	case uint32:
		return float64(n), true
	case json.Number:
		return parseNumber(string(n))
	}
	return 0, false
}
