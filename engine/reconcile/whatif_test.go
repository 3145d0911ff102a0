package reconcile

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestSplitAttributePath(t *testing.T) {
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"title", []string{"title"}},
		{"name.givenName", []string{"name", "givenName"}},
		{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.department", []string{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "department"}},
		{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager.value", []string{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager", "value"}},
		{"urn:x:User", []string{"urn:x:User"}},
	} {
		if got := SplitAttributePath(tt.path); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitAttributePath(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestParseAttributeValue(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want any
	}{
		{"false", false},
		{"7", json.Number("7")},
		{`"x y"`, "x y"},
		{"Support", "Support"},
		{"7 dwarfs", "7 dwarfs"},
		{`{"a":1}`, map[string]any{"a": json.Number("1")}},
	} {
		if got := ParseAttributeValue(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseAttributeValue(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}
