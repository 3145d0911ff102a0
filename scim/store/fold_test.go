package store

import (
	"strings"
	"testing"
)

var foldWords = []string{"sam", "SAM", "ſam", "Sam", "straße", "STRASSE", "ǅemal", "ǆemal", "Ǆemal",
	"ıi", "Iİ", "kelvin", "\u212aelvin", "Ωmega", "ωmega", "\u2126mega", "a\xffb", "a\xfeb", "",
	"a@example.com", "a@example.com ", " A@Example.com", "caf\u00e9", "cafe\u0301", "CAF\u00c9",
	"\uff41@example.com", "a_b", "A_B", "a~b", "Zz", "zz", "[x]"}

func TestFoldKeyNormalises(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"a@example.com", "a@example.com "},
		{"a@example.com", "\ta@EXAMPLE.com\u00a0"},
		{"caf\u00e9", "cafe\u0301"},             // NFC vs NFD
		{"a@example.com", "\uff41@example.com"}, // fullwidth
		{"STRASSE", "straße"},
		{"\u212aelvin", "kelvin"},
	} {
		if FoldKey(c.a) != FoldKey(c.b) {
			t.Errorf("FoldKey(%q)=%q and FoldKey(%q)=%q differ", c.a, FoldKey(c.a), c.b, FoldKey(c.b))
		}
	}
	for _, c := range []struct{ a, b string }{{"a@example.com", "b@example.com"}, {"a b", "ab"}, {"ıi", "ii"}} {
		if FoldKey(c.a) == FoldKey(c.b) {
			t.Errorf("FoldKey(%q) and FoldKey(%q) are both %q", c.a, c.b, FoldKey(c.a))
		}
	}
}

func TestFoldKeyCoversEqualFold(t *testing.T) {
	for _, a := range foldWords {
		for _, b := range foldWords {
			if strings.EqualFold(a, b) && FoldKey(a) != FoldKey(b) {
				t.Errorf("EqualFold(%q, %q) but FoldKey differs: %q, %q", a, b, FoldKey(a), FoldKey(b))
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
	f.Add("a@example.com ", "\uff41@EXAMPLE.com")
	f.Fuzz(func(t *testing.T, a, b string) {
		if got, want := compareFold(a, b), strings.Compare(FoldKey(a), FoldKey(b)); got != want {
			t.Fatalf("compareFold(%q, %q) = %d, want %d", a, b, got, want)
		}
		if k := FoldKey(a); FoldKey(k) != k {
			t.Fatalf("FoldKey is not idempotent on %q: %q then %q", a, k, FoldKey(k))
		}
	})
}
