package values

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/scimd/scimd/scim/compat"
	"github.com/scimd/scimd/scim/schema"
)

// TestScalarTable checks the package documentation's table cell by cell,
// under the strict profile (no rule) and with every rule.
func TestScalarTable(t *testing.T) {
	strict := compat.For(compat.WithProfile(t.Context(), "rfc"))
	lenient := compat.For(compat.WithProfile(t.Context(), "auto"))
	attr := func(typ schema.Type) *schema.Attribute { return &schema.Attribute{Name: "x", Type: typ} }
	const bad = "invalidValue"
	for _, c := range []struct {
		typ             schema.Type
		v               any
		strict, lenient string // fmt of the result, "invalidValue" or "<nil>"
	}{
		{schema.Boolean, true, "true", "true"},
		{schema.Boolean, "False", bad, "false"},
		{schema.Boolean, "", bad, "<nil>"},
		{schema.Boolean, "yes", bad, bad},
		{schema.Boolean, json.Number("1"), bad, bad},
		{schema.Integer, json.Number("12"), "12", "12"},
		{schema.Integer, 12.0, "12", "12"},
		{schema.Integer, json.Number("1.5"), bad, bad},
		{schema.Integer, json.Number("2.0"), "2", "2"},
		{schema.Integer, "12", bad, "12"},
		{schema.Integer, "", bad, "<nil>"},
		{schema.Integer, "1.5", bad, bad},
		{schema.Integer, true, bad, bad},
		{schema.Decimal, json.Number("1.5"), "1.5", "1.5"},
		{schema.Decimal, 2.25, "2.25", "2.25"},
		{schema.Decimal, "1.5", bad, "1.5"},
		{schema.Decimal, "x", bad, bad},
		{schema.String, "a", "a", "a"},
		{schema.String, "", "<nil>", "<nil>"},
		{schema.String, json.Number("7"), bad, "7"},
		{schema.String, false, bad, "false"},
		{schema.DateTime, "2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z"},
		{schema.Complex, "a", bad, bad},
		{schema.String, nil, "<nil>", "<nil>"},
	} {
		for _, p := range []struct {
			tol  *compat.Tracker
			want string
		}{{strict, c.strict}, {lenient, c.lenient}} {
			got, err := Scalar(attr(c.typ), c.v, "x", p.tol)
			s := fmt.Sprint(got)
			if err != nil {
				s = bad
			}
			if s != p.want {
				t.Errorf("%s %#v under %s = %s, want %s", c.typ, c.v, p.tol.Profile(), s, p.want)
			}
		}
	}
}
