package filter

import (
	"errors"
	"testing"

	"github.com/scimd/scimd/scim/schema"
)

// typedResource has one attribute of every SCIM type, so that every cell of
// the operator × attribute-type table can be checked.
var typedResource = &schema.ResourceType{Name: "Typed", Endpoint: "/Typed", Core: &schema.Schema{
	ID: "urn:example:params:scim:schemas:core:2.0:Typed",
	Attributes: []*schema.Attribute{
		{Name: "s", Type: schema.String},
		{Name: "r", Type: schema.Reference},
		{Name: "bin", Type: schema.Binary},
		{Name: "b", Type: schema.Boolean},
		{Name: "i", Type: schema.Integer},
		{Name: "d", Type: schema.Decimal},
		{Name: "t", Type: schema.DateTime},
		{Name: "c", Type: schema.Complex, SubAttributes: []*schema.Attribute{{Name: "x", Type: schema.String}}},
		{Name: "cv", Type: schema.Complex, MultiValued: true, SubAttributes: []*schema.Attribute{{Name: "value", Type: schema.Boolean}}},
	},
}}

func TestValidateOperatorTypeTable(t *testing.T) {
	ops := []string{"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"}
	// ok[attr] lists, per operator in ops order, whether the comparison
	// with a value of the attribute's own type is accepted.
	type row struct {
		attr  string
		value string
		ok    string // one letter per operator: y accepted, n invalidFilter
	}
	rows := []row{
		{"s", `"abc"`, "yyyyyyyyy"},
		{"r", `"https://x"`, "yyyyyyyyy"},
		{"bin", `"YWJj"`, "yyyyynnnn"},
		{"b", `true`, "yynnnnnnn"},
		{"i", `3`, "yynnnyyyy"},
		{"d", `3.5`, "yynnnyyyy"},
		{"t", `"2026-01-02T03:04:05Z"`, "yyyyyyyyy"},
		{"c", `"abc"`, "nnnnnnnnn"},
		{"cv", `true`, "yynnnnnnn"}, // complex compared as a whole: its boolean value
		{"unknown", `true`, "yyyyyyyyy"},
	}
	for _, r := range rows {
		for i, op := range ops {
			in := r.attr + " " + op + " " + r.value
			checkValidate(t, in, r.ok[i] == 'y')
		}
		checkValidate(t, r.attr+" pr", true)
		checkValidate(t, r.attr+" eq null", true)
		checkValidate(t, r.attr+" ne null", true)
		for _, op := range ops[2:] {
			checkValidate(t, r.attr+" "+op+" null", false)
		}
	}
	// Values of the wrong type.
	for _, c := range []struct {
		in string
		ok bool
	}{
		{`b eq "yes"`, false},
		{`b eq 1`, false},
		{`b eq "True"`, true}, // Entra writes booleans as strings
		{`i eq "x"`, false},
		{`i gt "7"`, true},
		{`d le true`, false},
		{`t gt "not-a-date"`, false},
		{`t eq 5`, false},
		{`t sw "2026"`, true},
		{`t co 5`, false},
		{`t ge "2026-01-02"`, true},
		{`s eq 5`, true},
		{`s gt true`, true},
		{`c.x sw "a"`, true},
		{`cv[value gt true]`, false},
		{`not (b lt true)`, false},
		{`s eq "a" or i co 1`, false},
	} {
		checkValidate(t, c.in, c.ok)
	}
}

func checkValidate(t *testing.T, in string, ok bool) {
	t.Helper()
	f, err := Parse(in)
	if err != nil {
		t.Fatalf("Parse(%q): %v", in, err)
	}
	err = f.Validate(typedResource)
	if (err == nil) != ok {
		t.Errorf("Validate(%q) = %v, want ok=%v", in, err, ok)
	}
	var fe *Error
	if err != nil && (!errors.As(err, &fe) || fe.Kind != KindInvalidFilter || fe.Detail == "") {
		t.Errorf("Validate(%q) error %#v, want an invalidFilter with a detail", in, err)
	}
}
