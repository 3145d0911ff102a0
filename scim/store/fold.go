package store

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// FoldKey returns a key under which two strings are equal exactly when
// strings.EqualFold says they are: each rune is replaced by the smallest rune
// of its Unicode simple case-folding orbit. The name index and the
// uniqueness check use the same folding (compareFold), so they agree with
// the filter engine's case-insensitive comparison.
func FoldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// foldRune returns the smallest rune of r's simple case-folding orbit.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < least {
			least = f
		}
	}
	return least
}

// compareFold compares FoldKey(a) with FoldKey(b) as strings.Compare
// would, without building them.
func compareFold(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		var ra, rb rune
		if c := a[i]; c < utf8.RuneSelf {
			ra, i = foldRune(rune(c)), i+1
		} else {
			r, n := utf8.DecodeRuneInString(a[i:])
			ra, i = foldRune(r), i+n
		}
		if c := b[j]; c < utf8.RuneSelf {
			rb, j = foldRune(rune(c)), j+1
		} else {
			r, n := utf8.DecodeRuneInString(b[j:])
			rb, j = foldRune(r), j+n
		}
		if ra != rb {
			if ra < rb {
				return -1
			}
			return 1
		}
	}
	switch {
	case i < len(a):
		return 1
	case j < len(b):
		return -1
	}
	return 0
}
