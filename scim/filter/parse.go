package filter

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	fp "github.com/scim2/filter-parser/v2"
)

// Filter is a parsed SCIM filter. It is safe for concurrent use; use it
// through its pointer (it must not be copied).
type Filter struct {
	root  node
	nodes int   // number of attribute nodes, the size of a binding
	rules rules // tolerance rules the input needed
	// bound caches attribute definitions resolved for the last resource
	// type (and value-filter parent) the filter was matched against.
	bound atomic.Pointer[binding]
}

// Parse parses a SCIM filter (RFC 7644 §3.4.2.2) with IdP tolerance (see
// [Rule]). Errors are *Error of kind KindInvalidFilter.
func Parse(expr string) (*Filter, error) {
	if f, ok := parseSimple(expr); ok {
		return f, nil
	}
	return parseGeneral(expr)
}

// parseGeneral is Parse through filter-parser, for every filter.
func parseGeneral(expr string) (*Filter, error) {
	p := newParser(expr, KindInvalidFilter)
	root, err := p.parseFilter(expr)
	if err != nil {
		return nil, err
	}
	return &Filter{root: root, nodes: p.nodes, rules: p.rules}, nil
}

// String returns the filter in canonical RFC 7644 syntax, with the
// tolerance rewrites applied. Parse(f.String()) yields an equivalent filter.
func (f *Filter) String() string {
	if f == nil || f.root == nil {
		return ""
	}
	var b strings.Builder
	f.root.write(&b)
	return b.String()
}

// Tolerated lists the tolerance rules the input needed to parse, in a fixed
// order; nil for an RFC-conforming filter.
func (f *Filter) Tolerated() []Rule {
	if f == nil {
		return nil
	}
	return f.rules.list()
}

// parser holds the state of one Parse or ParsePath call.
type parser struct {
	kind        string // error kind
	src         string // the text being lexed
	placeholder string
	valuePaths  []pendingValuePath
	nodes       int
	rules       rules
}

func newParser(src, kind string) *parser {
	return &parser{kind: kind, src: src, placeholder: newPlaceholder(src)}
}

func (p *parser) errorf(format string, args ...any) *Error {
	what := "filter"
	if p.kind == KindInvalidPath {
		what = "path"
	}
	return &Error{Kind: p.kind, Detail: fmt.Sprintf("invalid %s %q: %s", what, p.src, fmt.Sprintf(format, args...))}
}

func (p *parser) unexpected(t token, want string) *Error {
	return p.errorf("expected %s at offset %d, got %q", want, t.pos, t.String())
}

// parseFilter parses a whole filter.
func (p *parser) parseFilter(src string) (node, error) {
	if len(src) > MaxLength {
		return nil, &Error{Kind: p.kind, Detail: fmt.Sprintf("filter is %d bytes long, the limit is %d", len(src), MaxLength)}
	}
	toks, err := lex(src)
	if err != nil {
		return nil, &Error{Kind: p.kind, Detail: fmt.Sprintf("invalid filter %q: %v", src, err)}
	}
	text, err := p.rewrite(toks, false)
	if err != nil {
		return nil, err
	}
	return p.parseText(text, false)
}

// parseText hands normalised text to filter-parser and converts the AST.
func (p *parser) parseText(text string, inValue bool) (node, error) {
	expr, err := fp.ParseFilterNumber([]byte(text))
	if err != nil {
		e := p.errorf("not valid filter syntax (RFC 7644 §3.4.2.2)")
		e.Err = fmt.Errorf("parsing normalised filter %q: %w", text, err)
		return nil, e
	}
	return p.convert(expr, inValue)
}

func (p *parser) convert(e fp.Expression, inValue bool) (node, error) {
	switch e := e.(type) {
	case *fp.LogicalExpression:
		l, err := p.convert(e.Left, inValue)
		if err != nil {
			return nil, err
		}
		r, err := p.convert(e.Right, inValue)
		if err != nil {
			return nil, err
		}
		if e.Operator == fp.OR {
			return &orNode{l, r}, nil
		}
		return &andNode{l, r}, nil
	case *fp.NotExpression:
		x, err := p.convert(e.Expression, inValue)
		if err != nil {
			return nil, err
		}
		return &notNode{x}, nil
	case *fp.AttributeExpression:
		if e.Operator == fp.PR && e.AttributePath.URIPrefix == nil && e.AttributePath.SubAttribute == nil &&
			strings.HasPrefix(e.AttributePath.AttributeName, p.placeholder) {
			return p.convertValuePath(e.AttributePath.AttributeName[len(p.placeholder):])
		}
		ref := newRef(e.AttributePath)
		if inValue && ref.urn != "" {
			return nil, p.errorf("attribute %q in a value filter cannot carry a schema URN", ref)
		}
		val, err := newValue(e.CompareValue)
		if err != nil {
			return nil, p.errorf("%v", err)
		}
		n := &cmpNode{ref: ref, op: string(e.Operator), val: val, id: p.nodes}
		p.nodes++
		return n, nil
	}
	// filter-parser only yields a ValuePath inside brackets, which never
	// reach it.
	return nil, p.errorf("unsupported expression %T", e)
}

func (p *parser) convertValuePath(index string) (node, error) {
	i, err := strconv.Atoi(index)
	if err != nil || i < 0 || i >= len(p.valuePaths) {
		return nil, p.errorf("internal error: unknown value path placeholder %q", index)
	}
	vp := p.valuePaths[i]
	ap, err := fp.ParseAttrPath([]byte(vp.attr))
	if err != nil {
		e := p.errorf("invalid attribute path %q", vp.attr)
		e.Err = fmt.Errorf("parsing attribute path: %w", err)
		return nil, e
	}
	inner, err := p.parseText(vp.inner, true)
	if err != nil {
		return nil, err
	}
	n := &valuePathNode{ref: newRef(ap), filter: inner, id: p.nodes}
	p.nodes++
	return n, nil
}

// attrRef is an attribute path as written.
type attrRef struct {
	urn  string // schema URN, "" if none
	attr string // attribute name; "" when urn names a whole schema
	sub  string // sub-attribute, "" if none
}

// newRef converts a filter-parser path. filter-parser reads a bare schema
// URN such as urn:…:enterprise:2.0:User as URN "urn:…:2.0" plus attribute
// "User"; a URN whose last segment is a version number names a whole
// schema, so put the name back into the URN.
func newRef(ap fp.AttributePath) attrRef {
	r := attrRef{urn: ap.URI(), attr: ap.AttributeName, sub: ap.SubAttributeName()}
	if r.urn != "" && r.sub == "" && isVersion(r.urn[strings.LastIndexByte(r.urn, ':')+1:]) {
		r.urn += ":" + r.attr
		r.attr = ""
	}
	return r
}

// isVersion reports whether s looks like a schema version: "2.0", "1".
func isVersion(s string) bool {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}

func (r attrRef) String() string {
	var b strings.Builder
	r.write(&b)
	return b.String()
}

func (r attrRef) write(b *strings.Builder) {
	b.WriteString(r.urn)
	if r.attr != "" {
		if r.urn != "" {
			b.WriteByte(':')
		}
		b.WriteString(r.attr)
	}
	if r.sub != "" {
		b.WriteByte('.')
		b.WriteString(r.sub)
	}
}

type valueKind uint8

const (
	vNull valueKind = iota
	vString
	vNumber
	vBool
)

// value is a comparison value, pre-converted for every comparison it may
// take part in.
type value struct {
	kind  valueKind
	str   string // string value; literal text for numbers and booleans
	lower string // strings.ToLower(str)
	num   float64
	numOK bool // num is valid: a number, or a string holding a JSON number
	b     bool
	t     time.Time
	tOK   bool // t is valid: a string holding a dateTime
}

func newValue(v any) (value, error) {
	switch v := v.(type) {
	case nil:
		return value{kind: vNull}, nil
	case bool:
		s := strconv.FormatBool(v)
		return value{kind: vBool, b: v, str: s, lower: s}, nil
	case json.Number:
		out := value{kind: vNumber, str: string(v), lower: strings.ToLower(string(v))}
		out.num, out.numOK = parseNumber(string(v))
		return out, nil
	case string:
		s, _ := decodeString(v)
		out := value{kind: vString, str: s, lower: strings.ToLower(s)}
		if isJSONNumber(s) {
			out.num, out.numOK = parseNumber(s)
		}
		out.t, out.tOK = parseTime(s)
		return out, nil
	}
	return value{}, fmt.Errorf("unsupported comparison value %v (%T)", v, v)
}

func parseNumber(s string) (float64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		// Out of range: ParseFloat returns ±Inf or 0, which still orders
		// correctly against finite numbers.
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return 0, false
		}
	}
	return f, true
}

// parseTime parses a SCIM dateTime (xsd:dateTime, RFC 3339). It also
// accepts a missing zone (taken as UTC) and a bare date.
func parseTime(s string) (time.Time, bool) {
	if len(s) < 10 || s[0] < '0' || s[0] > '9' {
		return time.Time{}, false
	}
	for _, layout := range [...]string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func (v *value) write(b *strings.Builder) {
	switch v.kind {
	case vNull:
		b.WriteString("null")
	case vString:
		writeString(b, v.str)
	default:
		b.WriteString(v.str)
	}
}

// node is one expression of the filter AST.
type node interface {
	// eval reports whether the expression matches scope: the resource, or
	// one element of a multi-valued attribute for value filters.
	eval(b *binding, scope any) bool
	write(b *strings.Builder)
}

type andNode struct{ l, r node }

type orNode struct{ l, r node }

type notNode struct{ x node }

// cmpNode is an attribute expression: attrPath op value, or attrPath pr.
type cmpNode struct {
	ref attrRef
	op  string // lower-case operator
	val value
	id  int // index into binding.res
}

// valuePathNode is attr[filter].
type valuePathNode struct {
	ref    attrRef
	filter node
	id     int
}

func (n *andNode) write(b *strings.Builder) {
	writeOperand(b, n.l)
	b.WriteString(" and ")
	writeOperand(b, n.r)
}

// writeOperand writes an operand of "and", adding the parentheses "or"
// needs to keep its lower precedence.
func writeOperand(b *strings.Builder, n node) {
	if _, ok := n.(*orNode); ok {
		b.WriteByte('(')
		n.write(b)
		b.WriteByte(')')
		return
	}
	n.write(b)
}

func (n *orNode) write(b *strings.Builder) {
	n.l.write(b)
	b.WriteString(" or ")
	n.r.write(b)
}

func (n *notNode) write(b *strings.Builder) {
	b.WriteString("not (")
	n.x.write(b)
	b.WriteByte(')')
}

func (n *cmpNode) write(b *strings.Builder) {
	n.ref.write(b)
	b.WriteByte(' ')
	b.WriteString(n.op)
	if n.op != "pr" {
		b.WriteByte(' ')
		n.val.write(b)
	}
}

func (n *valuePathNode) write(b *strings.Builder) {
	n.ref.write(b)
	b.WriteByte('[')
	n.filter.write(b)
	b.WriteByte(']')
}
