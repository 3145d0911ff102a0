package patch

import (
	"encoding/json"
	"strings"
)

// Path is a parsed PATCH target path. It covers the shapes of RFC 7644
// §3.5.2's PATH rule that PATCH needs:
//
//	attr                       userName
//	attr.sub                   name.givenName
//	urn:…:attr[.sub]           urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value
//	attr[filter]               members[value eq "2819c223"]
//	attr[filter].sub           emails[type eq "work"].value
//
// Names are kept as written; they are resolved case-insensitively against the
// resource type's schemas when the operation is applied.
type Path struct {
	// URN is the schema URN prefix as written, or "".
	URN string
	// Attr is the attribute name.
	Attr string
	// Filter is the text between the brackets of a value path, or "".
	Filter string
	// Sub is the sub-attribute name, or "".
	Sub string
}

// String formats the path back into PATCH syntax.
func (p Path) String() string {
	var b strings.Builder
	if p.URN != "" {
		b.WriteString(p.URN)
		b.WriteByte(':')
	}
	b.WriteString(p.Attr)
	if p.Filter != "" {
		b.WriteByte('[')
		b.WriteString(p.Filter)
		b.WriteByte(']')
	}
	if p.Sub != "" {
		b.WriteByte('.')
		b.WriteString(p.Sub)
	}
	return b.String()
}

// ParsePath parses a PATCH path. The filter inside brackets is not parsed,
// only delimited (quoted strings may contain ']'). Errors are *Error with
// scimType invalidPath.
func ParsePath(s string) (Path, error) {
	p, err := parsePath(s)
	if err != nil {
		return Path{}, err
	}
	return p, nil
}

func parsePath(s string) (Path, *Error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Path{}, errorf(InvalidPath, "empty path")
	}
	var p Path
	rest := s
	if hasPrefixFold(s, "urn:") {
		// The attribute part starts after the last ':' before any '['
		// (schema URNs contain dots, as in "2.0", but attribute names never
		// contain ':'). A path that is a bare schema URN comes out as
		// URN "urn:…:2.0" and Attr "User"; the applier recognises it.
		head := s
		if i := strings.IndexByte(s, '['); i >= 0 {
			head = s[:i]
		}
		i := strings.LastIndexByte(head, ':')
		if i <= len("urn:") {
			return Path{}, errorf(InvalidPath, "invalid path %q: malformed schema URN", truncate(s))
		}
		p.URN, rest = s[:i], s[i+1:]
	}
	open := strings.IndexByte(rest, '[')
	if open < 0 {
		attr, sub, hasSub := strings.Cut(rest, ".")
		if !validName(attr) || (hasSub && !validName(sub)) {
			return Path{}, errorf(InvalidPath, "invalid path %q", truncate(s))
		}
		p.Attr, p.Sub = attr, sub
		return p, nil
	}
	p.Attr = rest[:open]
	if !validName(p.Attr) {
		return Path{}, errorf(InvalidPath, "invalid path %q", truncate(s))
	}
	closing := closeBracket(rest, open+1)
	if closing < 0 {
		return Path{}, errorf(InvalidPath, "invalid path %q: unbalanced '[' or ']'", truncate(s))
	}
	p.Filter = strings.TrimSpace(rest[open+1 : closing])
	if p.Filter == "" {
		return Path{}, errorf(InvalidPath, "invalid path %q: empty filter", truncate(s))
	}
	after := rest[closing+1:]
	if after != "" {
		sub, ok := strings.CutPrefix(after, ".")
		if !ok || !validName(sub) {
			return Path{}, errorf(InvalidPath, "invalid path %q", truncate(s))
		}
		p.Sub = sub
	}
	return p, nil
}

// closeBracket returns the index of the ']' closing a value filter that
// starts at start, skipping quoted strings, or -1.
func closeBracket(s string, start int) int {
	inString := false
	for i := start; i < len(s); i++ {
		c := s[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[':
			return -1 // value filters do not nest
		case ']':
			return i
		}
	}
	return -1
}

// validName reports whether s is an attribute name (RFC 7643 §2.1 ATTRNAME,
// plus "$ref").
func validName(s string) bool {
	if s == "" {
		return false
	}
	if s == "$ref" {
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '_'):
		default:
			return false
		}
	}
	return true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// The rest of this file is a deliberately tiny reader for the two filter
// shapes this package must understand itself, independently of the pluggable
// ValueFilterParser:
//
//   - a conjunction of equality tests (type eq "work" and primary eq true),
//     whose values seed the element created when a filtered add/replace
//     matches nothing (Entra upsert);
//   - a disjunction of `value eq "id"` tests on members, whose ids are all we
//     can act on because members are not in the document.

type tokKind int

const (
	tokWord tokKind = iota
	tokString
	tokLParen
	tokRParen
)

type token struct {
	kind tokKind
	text string // word text, or decoded string literal
}

// tokenize splits a filter into words, string literals and parentheses.
func tokenize(s string) ([]token, bool) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{kind: tokLParen})
			i++
		case c == ')':
			toks = append(toks, token{kind: tokRParen})
			i++
		case c == '"':
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '\\' {
					j++
					continue
				}
				if s[j] == '"' {
					break
				}
			}
			if j >= len(s) {
				return nil, false
			}
			var str string
			if err := json.Unmarshal([]byte(s[i:j+1]), &str); err != nil {
				return nil, false
			}
			toks = append(toks, token{kind: tokString, text: str})
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n()\"", rune(s[j])) {
				j++
			}
			toks = append(toks, token{kind: tokWord, text: s[i:j]})
			i = j
		}
	}
	return toks, true
}

// eqTest is one `name eq value` comparison.
type eqTest struct {
	name  string
	value any // string, bool, json.Number or nil
}

// eqList reads `t1 <joiner> t2 <joiner> …` where every ti is `name eq value`
// and parentheses may group terms. It reports false for anything else.
func eqList(expr, joiner string) ([]eqTest, bool) {
	toks, ok := tokenize(expr)
	if !ok || len(toks) == 0 {
		return nil, false
	}
	r := eqReader{toks: toks, joiner: joiner}
	tests, ok := r.list(0)
	if !ok || r.pos != len(r.toks) {
		return nil, false
	}
	return tests, true
}

type eqReader struct {
	toks   []token
	pos    int
	joiner string
}

const maxFilterDepth = 32

func (r *eqReader) list(depth int) ([]eqTest, bool) {
	if depth > maxFilterDepth {
		return nil, false
	}
	var tests []eqTest
	for {
		more, ok := r.term(depth)
		if !ok {
			return nil, false
		}
		tests = append(tests, more...)
		if r.pos < len(r.toks) && r.toks[r.pos].kind == tokWord && strings.EqualFold(r.toks[r.pos].text, r.joiner) {
			r.pos++
			continue
		}
		return tests, true
	}
}

func (r *eqReader) term(depth int) ([]eqTest, bool) {
	if r.pos >= len(r.toks) {
		return nil, false
	}
	if r.toks[r.pos].kind == tokLParen {
		r.pos++
		tests, ok := r.list(depth + 1)
		if !ok || r.pos >= len(r.toks) || r.toks[r.pos].kind != tokRParen {
			return nil, false
		}
		r.pos++
		return tests, true
	}
	if r.pos+3 > len(r.toks) {
		return nil, false
	}
	name, op, val := r.toks[r.pos], r.toks[r.pos+1], r.toks[r.pos+2]
	if name.kind != tokWord || !validName(name.text) || op.kind != tokWord || !strings.EqualFold(op.text, "eq") {
		return nil, false
	}
	var v any
	switch val.kind {
	case tokString:
		v = val.text
	case tokWord:
		v = literal(val.text)
	default:
		return nil, false
	}
	r.pos += 3
	return []eqTest{{name: name.text, value: v}}, true
}

// literal interprets an unquoted comparison value: true, false, null, a
// number, or else the word itself (Microsoft's test collection sends unquoted
// string values).
func literal(w string) any {
	switch {
	case strings.EqualFold(w, "true"):
		return true
	case strings.EqualFold(w, "false"):
		return false
	case strings.EqualFold(w, "null"):
		return nil
	}
	if w != "" && (w[0] == '-' || w[0] >= '0' && w[0] <= '9') && json.Valid([]byte(w)) {
		return json.Number(w)
	}
	return w
}

// memberIDs reads a members value filter: `value eq "id"`, possibly several
// joined by "or". It reports false for any other filter.
func memberIDs(expr string) ([]string, bool) {
	tests, ok := eqList(expr, "or")
	if !ok {
		return nil, false
	}
	ids := make([]string, 0, len(tests))
	for _, t := range tests {
		if !strings.EqualFold(t.name, "value") {
			return nil, false
		}
		id, ok := scalarString(t.value)
		if !ok || id == "" {
			return nil, false
		}
		ids = append(ids, id)
	}
	return ids, true
}
