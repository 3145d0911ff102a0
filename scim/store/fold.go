package store

import (
	"fmt"
	"strings"
	"unicode"
)

// FoldKey returns a key under which two strings are equal exactly when
// strings.EqualFold says they are: each rune is replaced by the smallest rune
// of its Unicode simple case-folding orbit. The name index and the
// uniqueness check use it, so they agree with the filter engine's
// case-insensitive comparison.
func FoldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < least {
				least = f
			}
		}
		b.WriteRune(least)
	}
	return b.String()
}

// foldedNameIndex indexes a Resource by FoldKey(Name).
type foldedNameIndex struct{}

func (foldedNameIndex) FromObject(obj any) (bool, []byte, error) {
	r, ok := obj.(*Resource)
	if !ok {
		return false, nil, fmt.Errorf("store: name index on %T", obj)
	}
	if r.Name == "" {
		return false, nil, nil
	}
	return true, []byte(FoldKey(r.Name) + "\x00"), nil
}

func (foldedNameIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("store: name index takes one argument")
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("store: name index argument must be a string, not %T", args[0])
	}
	return []byte(FoldKey(s) + "\x00"), nil
}
