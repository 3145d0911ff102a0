package filter

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

type tokKind uint8

const (
	tWord     tokKind = iota // attribute path, operator, keyword or bare value
	tString                  // quoted string; text holds the decoded value
	tLParen                  // (
	tRParen                  // )
	tLBracket                // [
	tRBracket                // ]
)

type token struct {
	kind tokKind
	text string
	pos  int // byte offset in the input, for error messages
	// lenient is set on strings that needed RuleLenientString to decode.
	lenient bool
}

func (t token) String() string {
	switch t.kind {
	case tString:
		return encodeString(t.text)
	case tLParen:
		return "("
	case tRParen:
		return ")"
	case tLBracket:
		return "["
	case tRBracket:
		return "]"
	}
	return t.text
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// lex splits s into tokens. Words are maximal runs of characters other than
// white space, quotes, parentheses and brackets; filter-parser validates
// their content later.
func lex(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isSpace(c):
			i++
		case c == '(':
			toks = append(toks, token{kind: tLParen, pos: i})
			i++
		case c == ')':
			toks = append(toks, token{kind: tRParen, pos: i})
			i++
		case c == '[':
			toks = append(toks, token{kind: tLBracket, pos: i})
			i++
		case c == ']':
			toks = append(toks, token{kind: tRBracket, pos: i})
			i++
		case c == '"':
			end := -1
			for j := i + 1; j < len(s); j++ {
				if s[j] == '\\' {
					j++
					continue
				}
				if s[j] == '"' {
					end = j
					break
				}
			}
			if end < 0 {
				return nil, fmt.Errorf("unterminated string starting at offset %d", i)
			}
			text, lenient := decodeString(s[i+1 : end])
			toks = append(toks, token{kind: tString, text: text, pos: i, lenient: lenient})
			i = end + 1
		default:
			j := i
			for j < len(s) && !isSpace(s[j]) && !strings.ContainsRune(`"()[]`, rune(s[j])) {
				j++
			}
			toks = append(toks, token{kind: tWord, text: s[i:j], pos: i})
			i = j
		}
	}
	return toks, nil
}

// decodeString decodes the content of a JSON string literal (without its
// quotes). It accepts what JSON accepts, and also, reporting lenient:
// unknown escapes (kept literally, so "CORP\jdoe" stays CORP\jdoe), raw
// control characters and invalid UTF-8 (replaced by U+FFFD).
func decodeString(raw string) (s string, lenient bool) {
	if !strings.ContainsAny(raw, "\\") {
		if utf8.ValidString(raw) && !hasControl(raw) {
			return raw, false
		}
		return strings.ToValidUTF8(raw, "\uFFFD"), true
	}
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c < 0x20 {
			lenient = true
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(raw) {
			b.WriteByte('\\')
			lenient = true
			break
		}
		i++
		switch e := raw[i]; e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, n := decodeHex4(raw[i+1:])
			if n == 0 {
				b.WriteString(`\u`)
				lenient = true
				continue
			}
			i += n
			if utf8.ValidRune(r) {
				b.WriteRune(r)
				continue
			}
			// A surrogate: combine with a following low surrogate.
			if r >= 0xD800 && r < 0xDC00 && strings.HasPrefix(raw[i+1:], `\u`) {
				if r2, n2 := decodeHex4(raw[i+3:]); n2 == 4 && r2 >= 0xDC00 && r2 < 0xE000 {
					b.WriteRune((r-0xD800)<<10 | (r2 - 0xDC00) + 0x10000)
					i += 2 + n2
					continue
				}
			}
			b.WriteRune(utf8.RuneError)
			lenient = true
		default:
			b.WriteByte('\\')
			b.WriteByte(e)
			lenient = true
		}
	}
	out := b.String()
	if !utf8.ValidString(out) {
		return strings.ToValidUTF8(out, "\uFFFD"), true
	}
	return out, lenient
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 {
			return true
		}
	}
	return false
}

// decodeHex4 decodes four hex digits (any case) at the start of s.
func decodeHex4(s string) (rune, int) {
	if len(s) < 4 {
		return 0, 0
	}
	var r rune
	for i := 0; i < 4; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, 0
		}
	}
	return r, 4
}

// encodeString quotes s in the form filter-parser accepts: JSON, with
// control characters as \u00XX (upper-case hex, as its grammar requires).
// s must be valid UTF-8.
func encodeString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	writeString(&b, s)
	return b.String()
}

func writeString(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xF])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// isJSONNumber reports whether s is a JSON number (RFC 8259 §6), the only
// number syntax the filter grammar accepts.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	return i == len(s)
}
