package patch_test

import (
	"fmt"
	"strings"

	"github.com/scimd/scimd/scim/patch"
	"github.com/scimd/scimd/scim/schema"
)

// typeIs is a stand-in for a real filter package: it understands only
// `type eq "<t>"`.
func typeIs(expr string) (patch.ValueMatcher, error) {
	want, ok := strings.CutPrefix(expr, `type eq "`)
	if !ok || !strings.HasSuffix(want, `"`) {
		return nil, fmt.Errorf("unsupported filter %q", expr)
	}
	want = strings.TrimSuffix(want, `"`)
	return patch.MatchFunc(func(_ *schema.ResourceType, _ string, elem any) bool {
		m, _ := elem.(map[string]any)
		got, _ := m["type"].(string)
		return strings.EqualFold(got, want)
	}), nil
}

func Example() {
	// The server plugs its filter package in; with scim/filter this is a
	// function returning the compiled *filter.Filter, which has the
	// MatchValue method ValueMatcher asks for.
	p := &patch.Patcher{ValueFilterParser: typeIs}

	// What Entra ID sends without the aadOptscim062020 flag.
	ops, err := patch.ParseRequest([]byte(`{
	  "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
	  "Operations": [
	    {"op": "Replace", "path": "active", "value": "False"},
	    {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "kim@contoso.com"},
	    {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "271"}
	  ]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	user := map[string]any{
		"schemas":  []any{schema.UserURN},
		"id":       "7f1c",
		"userName": "kim@contoso.com",
		"active":   true,
	}
	res, err := p.Apply(schema.UserType, user, ops)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Changed, res.Doc["active"], res.Doc["emails"])
	fmt.Println(res.Doc[schema.EnterpriseUserURN], res.Doc["schemas"])

	// Entra's member removal: exactly u1 goes, nobody else.
	ops, _ = patch.ParseRequest([]byte(`{"Operations":[{"op":"Remove","path":"members","value":[{"value":"u1"}]}]}`))
	res, _ = p.Apply(schema.GroupType, map[string]any{"id": "g1", "displayName": "Admins"}, ops)
	fmt.Printf("%+v\n", res.Members)
	// Output:
	// true false [map[type:work value:kim@contoso.com]]
	// map[manager:map[value:271]] [urn:ietf:params:scim:schemas:core:2.0:User urn:ietf:params:scim:schemas:extension:enterprise:2.0:User]
	// {Replace:false Add:[] Remove:[u1] RemoveAll:false}
}
