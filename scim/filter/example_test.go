package filter_test

import (
	"encoding/json"
	"fmt"

	"github.com/scimd/scimd/scim/filter"
	"github.com/scimd/scimd/scim/schema"
)

func Example() {
	var user map[string]any
	_ = json.Unmarshal([]byte(`{
		"id": "2819c223",
		"userName": "bjensen@example.com",
		"emails": [{"type": "work", "value": "bjensen@example.com"}]
	}`), &user)

	// Entra ID's non-RFC filter shape is accepted and normalised.
	f, err := filter.Parse(`emails[type eq "work"].value eq "BJensen@example.com"`)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f)
	fmt.Println(f.Tolerated())
	fmt.Println(f.Match(schema.UserType, user))
	// Output:
	// emails[type eq "work" and value eq "BJensen@example.com"]
	// [valuepath-subattr]
	// true
}

func ExampleFilter_IndexHint() {
	f, _ := filter.Parse(`userName eq "bjensen" and active eq true`)
	fmt.Println(f.IndexHint())
	f, _ = filter.Parse(`members[value eq "2819c223"]`)
	fmt.Println(f.IndexHint())
	// Output:
	// userName bjensen true
	// members.value 2819c223 true
}

func ExampleParsePath() {
	p, _ := filter.ParsePath(`emails[type eq "work"].value`)
	fmt.Printf("attr=%s sub=%s filter=%s\n", p.Attr, p.Sub, p.Filter)
	elem := map[string]any{"type": "work", "value": "x@example.com"}
	fmt.Println(p.Filter.MatchValue(schema.UserType, p.AttrPath(), elem))
	// Output:
	// attr=emails sub=value filter=type eq "work"
	// true
}

func ExampleError() {
	_, err := filter.Parse(`userName eq`)
	if fe, ok := err.(*filter.Error); ok {
		fmt.Println(fe.Kind)
		fmt.Println(fe.Detail)
	}
	// Output:
	// invalidFilter
	// invalid filter "userName eq": filter ends early
}
