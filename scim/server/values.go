package server

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/scimd/scimd/scim/schema"
)

// Bounds on what one resource may hold. Longer values are refused with 400
// invalidValue rather than stored.
const (
	// maxIdentifierRunes bounds userName, displayName, externalId and
	// member values.
	maxIdentifierRunes = 512
	// maxStringRunes bounds every other string value (x509 certificates in
	// base64 are the longest the schemas define).
	maxStringRunes = 16384
	// maxMultiValues bounds the elements of one multi-valued attribute
	// (group members excepted: they are bounded by the request size).
	maxMultiValues = 1000
)

// checkJSONText refuses a request body that is not valid UTF-8 or that
// escapes a lone UTF-16 surrogate ("\ud800"): encoding/json would silently
// turn either into U+FFFD, storing something the client did not send.
func checkJSONText(raw []byte) *Error {
	if !utf8.Valid(raw) {
		return badRequest("invalidValue", "request body is not valid UTF-8")
	}
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !inString {
			if c == '"' {
				inString = true
			}
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 >= len(raw) {
				return nil // the JSON decoder reports it
			}
			i++
			if raw[i] != 'u' {
				continue
			}
			r, ok := hex4(raw, i+1)
			if !ok {
				continue
			}
			i += 4
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return badRequest("invalidValue", "request body escapes a lone UTF-16 surrogate (\\u%04x)", r)
			case r >= 0xD800 && r <= 0xDBFF:
				lo, ok := rune(0), false
				if i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					lo, ok = hex4(raw, i+3)
				}
				if !ok || lo < 0xDC00 || lo > 0xDFFF {
					return badRequest("invalidValue", "request body escapes a lone UTF-16 surrogate (\\u%04x)", r)
				}
				i += 6
			}
		}
	}
	return nil
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[at:at+4]), 16, 32)
	return rune(n), err == nil
}

// checkIdentifier refuses an identifier (userName, displayName,
// externalId, a member value) with control characters or over
// maxIdentifierRunes.
func checkIdentifier(path, s string) *Error {
	for _, r := range s {
		if unicode.IsControl(r) {
			return badRequest("invalidValue", "%s must not contain control characters (found U+%04X)", path, r)
		}
	}
	if n := utf8.RuneCountInString(s); n > maxIdentifierRunes {
		return badRequest("invalidValue", "%s is %d characters long; at most %d are allowed", path, n, maxIdentifierRunes)
	}
	return nil
}

// checkText refuses a string attribute value with control characters other
// than tab, line feed and carriage return (addresses.formatted has line
// breaks), or over maxStringRunes.
func checkText(path, s string) *Error {
	for _, r := range s {
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return badRequest("invalidValue", "%s must not contain control characters (found U+%04X)", path, r)
		}
	}
	if n := utf8.RuneCountInString(s); n > maxStringRunes {
		return badRequest("invalidValue", "%s is %d characters long; at most %d are allowed", path, n, maxStringRunes)
	}
	return nil
}

// isIdentifier reports whether the attribute at path is one of the names a
// resource is found by.
func isIdentifier(path string) bool {
	switch strings.ToLower(path) {
	case "username", "displayname", "externalid":
		return true
	}
	return false
}

// settleMultiValued applies RFC 7643 §2.4 to a multi-valued complex
// attribute: a (type, value) pair is kept once (the first; a later
// duplicate's primary flag carries over), and at most one element is
// primary: more are refused with 400 invalidValue.
func settleMultiValued(a *schema.Attribute, list []any, path string) ([]any, *Error) {
	if a.Type != schema.Complex || a.Sub("value") == nil {
		return list, nil
	}
	valueDef := a.Sub("value")
	type key struct{ typ, value string }
	seen := make(map[key]map[string]any, len(list))
	out := list[:0:0]
	primaries := 0
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			out = append(out, e)
			continue
		}
		v, hasValue := m["value"]
		if hasValue {
			k := key{typ: strings.ToLower(str(m["type"])), value: canonicalValue(valueDef, v)}
			if first, dup := seen[k]; dup {
				if m["primary"] == true && first["primary"] != true {
					first["primary"] = true
					primaries++
				}
				continue
			}
			seen[k] = m
		}
		if m["primary"] == true {
			primaries++
		}
		out = append(out, m)
	}
	if primaries > 1 {
		return nil, badRequest("invalidValue", "%s has %d values with \"primary\": true; at most one may be primary (RFC 7643 §2.4)", path, primaries)
	}
	return out, nil
}

// canonicalValue is the form under which two values of an element are the
// same: case-insensitive unless the sub-attribute is caseExact.
func canonicalValue(def *schema.Attribute, v any) string {
	s, ok := v.(string)
	if !ok {
		return strconv.Quote(strings.TrimSpace(stringOf(v)))
	}
	if def.CaseExact {
		return s
	}
	return strings.ToLower(s)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func stringOf(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return ""
}

// lookupKey returns obj's member named key, matched case-insensitively.
func lookupKey(obj map[string]any, key string) any {
	if v, ok := obj[key]; ok {
		return v
	}
	for k, v := range obj {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

// isTrue reports whether v is true, as a boolean or as the string Entra
// sends.
func isTrue(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(strings.TrimSpace(v), "true")
	}
	return false
}
