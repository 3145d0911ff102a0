package filter

import (
	"fmt"
	"strings"

	fp "github.com/scim2/filter-parser/v2"
)

// Path is a PATCH operation path (RFC 7644 §3.5.2): attrPath, or
// valuePath with an optional sub-attribute.
//
//	members[value eq "7f4bc1a3"]        Attr "members", Filter value eq "7f4bc1a3"
//	emails[type eq "work"].value        Attr "emails", Sub "value", Filter type eq "work"
//	name.givenName                      Attr "name", Sub "givenName"
//	urn:…:enterprise:2.0:User:manager   URN "urn:…:enterprise:2.0:User", Attr "manager"
//	urn:…:enterprise:2.0:User           URN "urn:…:enterprise:2.0:User", Attr "" (the whole extension)
type Path struct {
	// URN is the schema URN prefix if given ("" for core attributes written
	// without it), e.g. the enterprise extension URN.
	URN string
	// Attr is the top-level attribute name as written, e.g. "emails",
	// "name", "members", "manager". It is "" when the path is a schema URN
	// alone.
	Attr string
	// Sub is the sub-attribute ("" if none), e.g. "givenName", "value".
	Sub string
	// Filter is the value filter inside brackets, nil if none. Evaluate it
	// against one element of the attribute with [Filter.MatchValue].
	Filter *Filter
}

// ParsePath parses a PATCH path, with the same tolerance for value filters
// as Parse. Errors are *Error of kind KindInvalidPath.
func ParsePath(s string) (Path, error) {
	p := newParser(s, KindInvalidPath)
	if len(s) > MaxLength {
		return Path{}, &Error{Kind: KindInvalidPath, Detail: fmt.Sprintf("path is %d bytes long, the limit is %d", len(s), MaxLength)}
	}
	toks, err := lex(s)
	if err != nil {
		return Path{}, &Error{Kind: KindInvalidPath, Detail: fmt.Sprintf("invalid path %q: %v", s, err)}
	}
	if len(toks) == 0 {
		return Path{}, p.errorf("empty path")
	}
	if toks[0].kind != tWord {
		return Path{}, p.unexpected(toks[0], "an attribute name")
	}
	ap, err := fp.ParseAttrPath([]byte(toks[0].text))
	if err != nil {
		e := p.errorf("invalid attribute path %q", toks[0].text)
		e.Err = fmt.Errorf("parsing attribute path: %w", err)
		return Path{}, e
	}
	ref := newRef(ap)
	path := Path{URN: ref.urn, Attr: ref.attr, Sub: ref.sub}
	if len(toks) == 1 {
		return path, nil
	}
	if toks[1].kind != tLBracket {
		return Path{}, p.unexpected(toks[1], `"[" or the end of the path`)
	}
	if ref.sub != "" || ref.attr == "" {
		return Path{}, p.errorf("a value filter must follow a top-level attribute, not %q", toks[0].text)
	}
	end, inner, err := p.brackets(toks, 1)
	if err != nil {
		return Path{}, err
	}
	if rest := toks[end+1:]; len(rest) > 0 {
		sub, ok := strings.CutPrefix(rest[0].text, ".")
		if len(rest) > 1 || rest[0].kind != tWord || !ok || rest[0].pos != toks[end].pos+1 {
			return Path{}, p.unexpected(rest[0], `".subAttribute" or the end of the path`)
		}
		if !isAttrName(sub) {
			return Path{}, p.errorf("invalid sub-attribute name %q", sub)
		}
		path.Sub = sub
	}
	root, err := p.parseText(inner, true)
	if err != nil {
		return Path{}, err
	}
	path.Filter = &Filter{root: root, nodes: p.nodes, rules: p.rules}
	return path, nil
}

// isAttrName reports whether s is an ATTRNAME (RFC 7644 §3.10), allowing
// the "$ref" spelling.
func isAttrName(s string) bool {
	s = strings.TrimPrefix(s, "$")
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// AttrPath returns the attribute path without filter or sub-attribute,
// URN included: "emails", "urn:…:enterprise:2.0:User:manager". It is the
// parent to pass to [Filter.MatchValue].
func (p Path) AttrPath() string {
	return attrRef{urn: p.URN, attr: p.Attr}.String()
}

// String returns the path in RFC 7644 syntax.
func (p Path) String() string {
	var b strings.Builder
	attrRef{urn: p.URN, attr: p.Attr}.write(&b)
	if p.Filter != nil && p.Filter.root != nil {
		b.WriteByte('[')
		p.Filter.root.write(&b)
		b.WriteByte(']')
	}
	if p.Sub != "" {
		b.WriteByte('.')
		b.WriteString(p.Sub)
	}
	return b.String()
}
