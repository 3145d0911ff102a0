package filter

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Rule names one tolerance rewrite applied before a filter reaches the RFC
// parser. [Filter.Tolerated] reports which ones a filter needed, so the HTTP
// layer can log the raw and the normalised form.
type Rule string

const (
	// RuleValuePathSubAttr rewrites attr[f].sub op v, which is PATCH path
	// syntax and not valid filter grammar, to attr[f and sub op v]. Sent by
	// Microsoft Entra ID and its SCIM validator as
	// emails[type eq "work"].value eq "x" (Entra SCIM tutorial;
	// FusionAuth/fusionauth-issues#2456); SCIM-SDK applies the same rewrite.
	RuleValuePathSubAttr Rule = "valuepath-subattr"
	// RuleBareValue quotes comparison values that are not JSON: neither a
	// string, a number, true, false nor null. Sent by Microsoft's SCIM
	// reference Postman collection (AzureAD/SCIMReferenceCode):
	// userName sw O, externalId eq jyoung, name.FamilyName eq Employee,
	// emails.Value co example.com.
	RuleBareValue Rule = "bare-value"
	// RuleLenientString accepts string literals JSON would reject: unknown
	// escapes are kept literally (a domain login "CORP\jdoe" sent without
	// escaping the backslash), raw control characters and invalid UTF-8 are
	// accepted. Defensive: no IdP is known to need it.
	RuleLenientString Rule = "lenient-string"
	// RuleMissingSpace accepts a comparison value glued to its operator
	// (userName eq"x"). Defensive: no IdP is known to need it.
	RuleMissingSpace Rule = "missing-space"
)

// rules is a set of Rule, in declaration order.
type rules uint8

const (
	ruleValuePathSubAttr rules = 1 << iota
	ruleBareValue
	ruleLenientString
	ruleMissingSpace
)

func (r rules) list() []Rule {
	var out []Rule
	for i, name := range [...]Rule{RuleValuePathSubAttr, RuleBareValue, RuleLenientString, RuleMissingSpace} {
		if r&(1<<i) != 0 {
			out = append(out, name)
		}
	}
	return out
}

// Limits protecting the parser, which backtracks and allocates per input
// byte.
const (
	// MaxLength is the longest filter or path accepted, in bytes.
	MaxLength = 4096
	// MaxDepth is the deepest nesting of parentheses accepted.
	MaxDepth = 32
)

var compareOps = [...]string{"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"}

func compareOp(s string) (string, bool) {
	for _, op := range compareOps {
		if strings.EqualFold(s, op) {
			return op, true
		}
	}
	return "", false
}

type state uint8

const (
	wantAttr  state = iota // attribute path, "not" or "("
	wantOp                 // comparison operator
	wantValue              // comparison value
	wantLogic              // "and", "or" or ")"
)

// pendingValuePath is a value path cut out of the filter text before it is
// handed to filter-parser, whose value-filter grammar is narrower than RFC
// 7644's (two terms at most, no grouping). It is parsed on its own and put
// back when the AST is converted.
type pendingValuePath struct {
	attr  string // attribute path as written, e.g. "emails"
	inner string // normalised value filter text
}

// rewrite normalises toks (a whole filter, or the inside of a value path
// when inValue) into text filter-parser accepts, applying the tolerance
// rules. Value paths are replaced by placeholder attribute expressions
// (p.placeholder + index, operator pr) and recorded in p.valuePaths.
func (p *parser) rewrite(toks []token, inValue bool) (string, error) {
	var b strings.Builder
	st := wantAttr
	depth := 0
	sep := func() {
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "(") {
			b.WriteByte(' ')
		}
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch st {
		case wantAttr:
			switch {
			case t.kind == tLParen:
				depth++
				if depth > MaxDepth {
					return "", p.errorf("parentheses nested deeper than %d", MaxDepth)
				}
				sep()
				b.WriteByte('(')
			case t.kind == tWord && strings.EqualFold(t.text, "not") && i+1 < len(toks) && toks[i+1].kind == tLParen:
				sep()
				b.WriteString("not")
			case t.kind == tWord && i+1 < len(toks) && toks[i+1].kind == tLBracket:
				if inValue {
					return "", p.errorf("value paths cannot be nested (at offset %d)", toks[i+1].pos)
				}
				next, text, err := p.valuePath(toks, i)
				if err != nil {
					return "", err
				}
				sep()
				b.WriteString(text)
				i = next - 1
				st = wantLogic
			case t.kind == tWord:
				sep()
				b.WriteString(t.text)
				st = wantOp
			default:
				return "", p.unexpected(t, `an attribute name, "not" or "("`)
			}
		case wantOp:
			op, ok := compareOp(t.text)
			if t.kind != tWord || !ok {
				return "", p.unexpected(t, "a comparison operator after "+strconv.Quote(toks[i-1].String()))
			}
			sep()
			b.WriteString(op)
			st = wantValue
			if op == "pr" {
				st = wantLogic
			}
		case wantValue:
			if err := p.value(&b, t); err != nil {
				return "", err
			}
			st = wantLogic
		case wantLogic:
			switch {
			case t.kind == tRParen && depth > 0:
				depth--
				b.WriteByte(')')
			case t.kind == tWord && (strings.EqualFold(t.text, "and") || strings.EqualFold(t.text, "or")):
				sep()
				b.WriteString(strings.ToLower(t.text))
				st = wantAttr
			default:
				return "", p.unexpected(t, `"and", "or" or ")"`)
			}
		}
	}
	switch {
	case len(toks) == 0:
		return "", p.errorf("empty filter")
	case st != wantLogic:
		return "", p.errorf("filter ends early")
	case depth > 0:
		return "", p.errorf(`missing ")"`)
	}
	return b.String(), nil
}

// value writes a comparison value, quoting bare words (RuleBareValue).
func (p *parser) value(b *strings.Builder, t token) error {
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	switch t.kind {
	case tString:
		if t.lenient {
			p.rules |= ruleLenientString
		}
		if t.pos > 0 && !isSpace(p.src[t.pos-1]) {
			p.rules |= ruleMissingSpace
		}
		writeString(b, t.text)
		return nil
	case tWord:
		switch lw := strings.ToLower(t.text); {
		case lw == "true" || lw == "false" || lw == "null":
			b.WriteString(lw)
		case isJSONNumber(t.text):
			b.WriteString(t.text)
		case !utf8.ValidString(t.text) || hasControl(t.text) || strings.ContainsRune(t.text, 0x7F):
			return p.errorf("unquoted value at offset %d contains control characters or invalid UTF-8", t.pos)
		default:
			p.rules |= ruleBareValue
			writeString(b, t.text)
		}
		return nil
	}
	return p.unexpected(t, "a comparison value")
}

// valuePath handles attr[...] starting at toks[i], including Entra's
// trailing .sub op value (RuleValuePathSubAttr). It returns the index after
// the value path and the placeholder text standing for it.
func (p *parser) valuePath(toks []token, i int) (next int, text string, err error) {
	end, inner, err := p.brackets(toks, i+1)
	if err != nil {
		return 0, "", err
	}
	next = end + 1
	if next < len(toks) && toks[next].kind == tWord && strings.HasPrefix(toks[next].text, ".") {
		// Entra: emails[type eq "work"].value eq "x".
		sub := toks[next]
		if next+1 >= len(toks) {
			return 0, "", p.errorf("%q after a value path needs a comparison", sub.text)
		}
		op, ok := compareOp(toks[next+1].text)
		if toks[next+1].kind != tWord || !ok {
			return 0, "", p.unexpected(toks[next+1], "a comparison operator after "+strconv.Quote(sub.text))
		}
		var cmp strings.Builder
		cmp.WriteString(sub.text[1:])
		cmp.WriteByte(' ')
		cmp.WriteString(op)
		next += 2
		if op != "pr" {
			if next >= len(toks) {
				return 0, "", p.errorf("filter ends early")
			}
			if err := p.value(&cmp, toks[next]); err != nil {
				return 0, "", err
			}
			next++
		}
		inner = "(" + inner + ") and " + cmp.String()
		p.rules |= ruleValuePathSubAttr
	}
	p.valuePaths = append(p.valuePaths, pendingValuePath{attr: toks[i].text, inner: inner})
	return next, fmt.Sprintf("%s%d pr", p.placeholder, len(p.valuePaths)-1), nil
}

// brackets rewrites the value filter between toks[open] ("[") and the
// matching "]", returning the index of "]".
func (p *parser) brackets(toks []token, open int) (end int, inner string, err error) {
	for end = open + 1; end < len(toks); end++ {
		switch toks[end].kind {
		case tLBracket:
			return 0, "", p.errorf("value paths cannot be nested (at offset %d)", toks[end].pos)
		case tRBracket:
			if end == open+1 {
				return 0, "", p.errorf("empty value filter []")
			}
			inner, err = p.rewrite(toks[open+1:end], true)
			return end, inner, err
		}
	}
	return 0, "", p.errorf(`missing "]"`)
}

// newPlaceholder returns an attribute name prefix that does not occur in
// src, so placeholders cannot collide with attribute names.
func newPlaceholder(src string) string {
	ph := "scimdvp"
	lower := strings.ToLower(src)
	for strings.Contains(lower, ph) {
		ph += "x"
	}
	return ph
}
