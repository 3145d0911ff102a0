package patch

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []Operation
		err  string
	}{
		{
			name: "RFC request",
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			        "Operations":[{"op":"replace","path":"active","value":false}]}`,
			want: []Operation{{Op: "replace", Path: "active", Value: false}},
		},
		{
			// P3: Entra without aadOptscim062020.
			name: "Entra capitalised op names",
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			        {"op":"Add","path":"title","value":"x"},
			        {"op":"Replace","path":"active","value":"False"},
			        {"op":"Remove","path":"members","value":[{"value":"u1"}]}]}`,
			want: []Operation{
				{Op: "add", Path: "title", Value: "x"},
				{Op: "replace", Path: "active", Value: "False"},
				{Op: "remove", Path: "members", Value: []any{map[string]any{"value": "u1"}}},
			},
		},
		{
			// P17: indigo-iam/iam#934, ssoready#182.
			name: "lower-case operations key",
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"operations":[{"op":"remove","path":"title"}]}`,
			want: []Operation{{Op: "remove", Path: "title"}},
		},
		{
			name: "upper-case keys everywhere",
			body: `{"OPERATIONS":[{"OP":"REPLACE","PATH":"title","VALUE":"x"}]}`,
			want: []Operation{{Op: "replace", Path: "title", Value: "x"}},
		},
		{
			// P16: Microsoft SCIM validator.
			name: "empty Operations is a no-op",
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[]}`,
			want: []Operation{},
		},
		{
			name: "missing schemas",
			body: `{"Operations":[{"op":"add","path":"title","value":"x"}]}`,
			want: []Operation{{Op: "add", Path: "title", Value: "x"}},
		},
		{
			// Microsoft's test collection: an "id" beside Operations and a
			// "name" inside the operation.
			name: "extra schema URNs and unknown members",
			body: `{"id":"g1","schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp","http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
			        "Operations":[{"name":"addMember","op":"add","path":"members","value":"string id 1"}]}`,
			want: []Operation{{Op: "add", Path: "members", Value: "string id 1"}},
		},
		{
			name: "numbers decoded as json.Number",
			body: `{"Operations":[{"op":"add","path":"x","value":12345678901234567890}]}`,
			want: []Operation{{Op: "add", Path: "x", Value: json.Number("12345678901234567890")}},
		},
		{
			name: "explicit null value is kept as nil",
			body: `{"Operations":[{"op":"replace","path":"title","value":null}]}`,
			want: []Operation{{Op: "replace", Path: "title"}},
		},
		{
			name: "empty path means path-less",
			body: `{"Operations":[{"op":"replace","path":"","value":{"active":false}}]}`,
			want: []Operation{{Op: "replace", Value: map[string]any{"active": false}}},
		},
		{
			name: "path is trimmed",
			body: `{"Operations":[{"op":"replace","path":" title ","value":"x"}]}`,
			want: []Operation{{Op: "replace", Path: "title", Value: "x"}},
		},
		{name: "invalid JSON", body: `{"Operations":[`, err: InvalidSyntax},
		{name: "trailing data", body: `{"Operations":[]} {}`, err: InvalidSyntax},
		{name: "empty body", body: ``, err: InvalidSyntax},
		{name: "null body", body: `null`, err: InvalidSyntax},
		{name: "array body", body: `[{"op":"add"}]`, err: InvalidSyntax},
		{name: "no Operations", body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}`, err: InvalidSyntax},
		{name: "null Operations", body: `{"Operations":null}`, err: InvalidSyntax},
		{name: "Operations not an array", body: `{"Operations":{"op":"add"}}`, err: InvalidSyntax},
		{name: "Operations in two spellings", body: `{"Operations":[],"operations":[]}`, err: InvalidSyntax},
		{name: "operation not an object", body: `{"Operations":["add"]}`, err: InvalidSyntax},
		{name: "null operation", body: `{"Operations":[null]}`, err: InvalidSyntax},
		{name: "missing op", body: `{"Operations":[{"path":"title","value":"x"}]}`, err: InvalidSyntax},
		{name: "op not a string", body: `{"Operations":[{"op":1,"path":"title","value":"x"}]}`, err: InvalidSyntax},
		{name: "unknown op", body: `{"Operations":[{"op":"copy","path":"title","value":"x"}]}`, err: InvalidSyntax},
		{name: "remove without path", body: `{"Operations":[{"op":"remove"}]}`, err: NoTarget},
		{name: "remove with empty path", body: `{"Operations":[{"op":"remove","path":""}]}`, err: NoTarget},
		{name: "add without value", body: `{"Operations":[{"op":"add","path":"title"}]}`, err: InvalidSyntax},
		{name: "replace without value", body: `{"Operations":[{"op":"replace"}]}`, err: InvalidSyntax},
		{name: "path not a string", body: `{"Operations":[{"op":"add","path":5,"value":"x"}]}`, err: InvalidPath},
		{name: "malformed path", body: `{"Operations":[{"op":"add","path":"emails[type eq \"work\"","value":"x"}]}`, err: InvalidPath},
		{name: "malformed value", body: `{"Operations":[{"op":"add","path":"title","value":tru}]}`, err: InvalidSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRequest([]byte(tc.body))
			if tc.err != "" {
				if err == nil {
					t.Fatalf("want %s error, got %+v", tc.err, got)
				}
				if errType(err) != tc.err {
					t.Fatalf("error %v: scimType %q, want %q", err, errType(err), tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}
