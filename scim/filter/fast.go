package filter

import (
	"encoding/json"
	"strings"
)

// parseSimple parses the filters identity providers send most, a single
// comparison such as userName eq "bjensen@example.com", title pr or
// externalId eq 12345, without the general parser. It returns false for
// anything else, which Parse then hands to the general parser; when it
// returns true, the *Filter is the one the general parser would build
// (TestSimpleAgreesWithParser, FuzzSimpleAgreesWithParser).
//
// It accepts: optional white space, an attribute name (ALPHA followed by
// ALPHA, DIGIT, "-" or "_") with at most one ".sub" attribute, white
// space, a comparison operator in any case, and, except after "pr", white
// space and a value: a quoted string of printable ASCII without escapes,
// true, false or null in any case, a JSON integer, or a bare word of
// letters, digits and ".@_+-" (RuleBareValue). Keywords are never taken
// for attribute names.
func parseSimple(expr string) (*Filter, bool) {
	if len(expr) > MaxLength {
		return nil, false
	}
	s := trimSpace(expr)
	// Attribute path.
	i := 0
	attr, sub := "", ""
	end, ok := scanName(s, i)
	if !ok {
		return nil, false
	}
	attr, i = s[i:end], end
	if i < len(s) && s[i] == '.' {
		end, ok = scanName(s, i+1)
		if !ok {
			return nil, false
		}
		sub, i = s[i+1:end], end
	}
	if isKeyword(attr) || isKeyword(sub) {
		return nil, false
	}
	// Operator.
	j := skipSpace(s, i)
	if j == i {
		return nil, false
	}
	k := j
	for k < len(s) && isLetter(s[k]) {
		k++
	}
	op, ok := compareOp(s[j:k])
	if !ok || k-j != 2 {
		return nil, false
	}
	ref := attrRef{attr: attr, sub: sub}
	if op == "pr" {
		if k != len(s) {
			return nil, false
		}
		return simpleFilter(ref, op, value{kind: vNull}, 0), true
	}
	// Value.
	v := skipSpace(s, k)
	if v == k || v == len(s) {
		return nil, false
	}
	raw := s[v:]
	if raw[0] == '"' {
		if len(raw) < 2 || raw[len(raw)-1] != '"' {
			return nil, false
		}
		str := raw[1 : len(raw)-1]
		for n := 0; n < len(str); n++ {
			if c := str[n]; c < 0x20 || c > 0x7E || c == '"' || c == '\\' {
				return nil, false
			}
		}
		val, err := newValue(str)
		if err != nil {
			return nil, false
		}
		return simpleFilter(ref, op, val, 0), true
	}
	for n := 0; n < len(raw); n++ {
		if c := raw[n]; !isLetter(c) && !isDigit(c) && !strings.ContainsRune(".@_+-", rune(c)) {
			return nil, false
		}
	}
	switch lw := strings.ToLower(raw); {
	case lw == "true" || lw == "false":
		return simpleFilter(ref, op, value{kind: vBool, b: lw == "true", str: lw, lower: lw}, 0), true
	case lw == "null":
		return simpleFilter(ref, op, value{kind: vNull}, 0), true
	case isJSONInteger(raw):
		val, err := newValue(json.Number(raw))
		if err != nil {
			return nil, false
		}
		return simpleFilter(ref, op, val, 0), true
	case isJSONNumber(raw) || (raw[0] >= '0' && raw[0] <= '9') || raw[0] == '-':
		// Other numbers, and words that look like broken ones: general
		// parser.
		return nil, false
	}
	val, err := newValue(raw)
	if err != nil {
		return nil, false
	}
	return simpleFilter(ref, op, val, ruleBareValue), true
}

func simpleFilter(ref attrRef, op string, val value, r rules) *Filter {
	return &Filter{root: &cmpNode{ref: ref, op: op, val: val, id: 0}, nodes: 1, rules: r}
}

// scanName returns the end of an attribute name starting at s[i].
func scanName(s string, i int) (int, bool) {
	if i >= len(s) || !isLetter(s[i]) {
		return i, false
	}
	j := i + 1
	for j < len(s) && (isLetter(s[j]) || isDigit(s[j]) || s[j] == '-' || s[j] == '_') {
		j++
	}
	return j, true
}

// isKeyword reports whether name is a word of the filter grammar, which the
// general parser may read otherwise than as an attribute name.
func isKeyword(name string) bool {
	switch strings.ToLower(name) {
	case "not", "and", "or", "true", "false", "null":
		return true
	}
	_, op := compareOp(name)
	return op
}

func trimSpace(s string) string {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isJSONInteger reports whether s is a JSON number without fraction or
// exponent.
func isJSONInteger(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	switch {
	case s == "":
		return false
	case s == "0":
		return true
	case s[0] == '0':
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}
