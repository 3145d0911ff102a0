package filter

import (
	"testing"

	"github.com/scimd/scimd/scim/schema"
)

var benchFilters = []struct{ name, filter string }{
	{"eq", `userName eq "bjensen@example.com"`},
	{"entra", `emails[type eq "work"].value eq "bjensen@example.com"`},
	{"complex", `userType eq "Employee" and (emails[type eq "work" and value co "@example.com"] or meta.lastModified gt "2011-05-13T04:42:34Z") and not (active eq false)`},
}

func BenchmarkParse(b *testing.B) {
	for _, bf := range benchFilters {
		b.Run(bf.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(bf.filter); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParsePath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePath(`emails[type eq "work"].value`); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	doc := decode(b, userJSON, false)
	for _, bm := range []struct {
		name, filter string
		want         bool
	}{
		{"eq", `userName eq "BJENSEN@example.com"`, true},
		{"eq-miss", `userName eq "nobody@example.com"`, false},
		{"valuepath", `emails[type eq "work" and value co "@example.com"]`, true},
		{"complex", benchFilters[2].filter, true},
	} {
		f, err := Parse(bm.filter)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if f.Match(schema.UserType, doc) != bm.want {
					b.Fatal("wrong result")
				}
			}
		})
	}
}
