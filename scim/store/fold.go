package store

import (
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// FoldKey returns the form under which userNames (and group displayNames)
// are unique: the name trimmed of surrounding white space, in Unicode
// compatibility composition (NFKC, which also maps fullwidth letters to
// their ordinary forms), case-folded, and recomposed. "a@example.com ",
// "A@EXAMPLE.COM", a decomposed "é" and a fullwidth "ａ" therefore name
// the same user as "a@example.com", "é" and "a". The stored value stays as
// the client sent it. Names strings.EqualFold calls equal have the same
// key, so a case-insensitive userName filter finds its user in the name
// index.
func FoldKey(s string) string {
	if simpleName(s) {
		return asciiLower(s)
	}
	s = strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD"))
	s = norm.NFKC.String(s)
	s = cases.Fold().String(s) // a Caser is not safe for concurrent use
	return norm.NFKC.String(s)
}

// simpleName reports whether s is printable-safe ASCII with nothing to trim,
// whose key is its ASCII lower case.
func simpleName(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return len(s) == 0 || (s[0] > ' ' && s[len(s)-1] > ' ')
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// compareFold compares FoldKey(a) with FoldKey(b) as strings.Compare
// would, without building them for simple ASCII names.
func compareFold(a, b string) int {
	if !simpleName(a) || !simpleName(b) {
		return strings.Compare(FoldKey(a), FoldKey(b))
	}
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			if ca < cb {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) > n:
		return 1
	case len(b) > n:
		return -1
	}
	return 0
}
