package store

import (
	"strings"
	"testing"
)

func TestFoldKeyAgreesWithEqualFold(t *testing.T) {
	words := []string{"sam", "SAM", "ſam", "Sam", "straße", "STRASSE", "ǅemal", "ǆemal", "Ǆemal",
		"ıi", "Iİ", "kelvin", "\u212aelvin", "Ωmega", "ωmega", "\u2126mega", "a\xffb", "a\xfeb", ""}
	for _, a := range words {
		for _, b := range words {
			if got, want := FoldKey(a) == FoldKey(b), strings.EqualFold(a, b); got != want {
				t.Errorf("FoldKey(%q)==FoldKey(%q) is %v, EqualFold is %v", a, b, got, want)
			}
			if got, want := compareFold(a, b), strings.Compare(FoldKey(a), FoldKey(b)); got != want {
				t.Errorf("compareFold(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
}

func FuzzFoldKey(f *testing.F) {
	f.Add("sam", "ſAM")
	f.Add("straße", "STRASSE")
	f.Add("a\xffb", "A\u212a")
	f.Fuzz(func(t *testing.T, a, b string) {
		if got, want := FoldKey(a) == FoldKey(b), strings.EqualFold(a, b); got != want {
			t.Fatalf("FoldKey(%q)==FoldKey(%q) is %v, EqualFold is %v", a, b, got, want)
		}
		if got, want := compareFold(a, b), strings.Compare(FoldKey(a), FoldKey(b)); got != want {
			t.Fatalf("compareFold(%q, %q) = %d, want %d", a, b, got, want)
		}
	})
}
