package store

import (
	"encoding/json"
	"reflect"
	"testing"
	"unsafe"
)

// decodeSeeds are stored rows as the store writes them and variants that
// encoding/json accepts or rejects in ways the fast path must not differ
// from.
var decodeSeeds = []string{
	`{"id":"000077c2-81bd-4d7a-be3d-796f723c3cb0","kind":"User","externalId":"load-0036208","name":"load.user0036208@example.com","attrs":{"active":true,"displayName":"Given Family36208","emails":[{"primary":true,"type":"work","value":"load.user0036208@example.com"}],"name":{"familyName":"Family36208","givenName":"Given"},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Marketing","employeeNumber":"36208"}},"created":"2026-11-27T13:22:03.783826Z","modified":"2026-11-27T13:22:03.783826Z","version":1}`,
	`{"id":"g","kind":"Group","name":"G","attrs":{},"created":"2026-11-27T13:22:46.790427Z","modified":"2026-11-27T13:23:01.588081+02:00","version":4}`,
	`{"id":"g","kind":"Group","name":"G","attrs":null,"version":0}`,
	` { "id" : "u" , "name":"ünïcødé", "attrs" : { "n" : [ 1 , -2.5e3 , 0 , 1E+2 , [] , {} , null , false ] } } `,
	`{"id":"u","attrs":{"a":1},"attrs":{"b":2}}`,
	`{"id":"u","attrs":{"a":1,"a":2}}`,
	`{"id":"u","ID":"v"}`,
	`{"id":"u","other":1}`,
	`{"id":"u\u0041","name":"a\"b"}`,
	`{"id":"u","version":1.5}`,
	`{"id":"u","version":-1}`,
	`{"id":"u","version":18446744073709551616}`,
	`{"id":"u","attrs":{"n":01}}`,
	`{"id":"u","attrs":{"n":1e400}}`,
	`{"id":"u","attrs":{"n":.5}}`,
	`{"id":"u","created":"2026-13-01T00:00:00Z"}`,
	`{"id":"u","created":null}`,
	`{"id":"u","name":"bad \xff utf8"}`,
	`{"id":"u","name":"tab	inside"}`,
	`{"id":"u"} x`,
	`{"id":"u",}`,
	`{"id":"u","attrs":{"a":tru}}`,
	`{"id":"u","attrs":{"a":[1,]}}`,
	`{"groupId":"0017b6bc-6326-40cf-866e-1dea83cebc31","memberId":"00d2ede1-7305-42a9-a6be-9f612d2ea405","memberKind":"User"}`,
	`{"groupId":"g","memberId":"m","memberKind":"Group","display":"Ms Ünïcødé"}`,
	`{"table":"teammates","key":"k","value":{"id":"k","reasons":["a → b"],"n":1.5}}`,
	`{"table":"teammates","key":"k","value": [1,{"a":"b"}] }`,
	`{"table":"teammates","key":"k","value":{"a":1},"extra":2}`,
	`{"table":"teammates","key":"k","value":{"a":1}`,
	`{}`,
	`[]`,
	``,
}

// checkFastDecode fails when the fast path accepts data and its result
// differs from encoding/json's (or encoding/json rejects data).
func checkFastDecode(t *testing.T, data []byte) {
	t.Helper()
	d := newRowDecoder()
	if got, ok := d.resource(data); ok {
		var want Resource
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("fast path accepted a resource encoding/json rejects (%v): %q", err, data)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("resource %q:\nfast path     %#v\nencoding/json %#v", data, *got, want)
		}
	}
	if got, ok := d.membership(data); ok {
		var want Membership
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("fast path accepted a membership encoding/json rejects (%v): %q", err, data)
		}
		if *got != want {
			t.Fatalf("membership %q: fast path %#v, encoding/json %#v", data, *got, want)
		}
	}
	if got, ok := d.recordEnvelope(data); ok {
		var want recordEnvelope
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("fast path accepted an envelope encoding/json rejects (%v): %q", err, data)
		}
		if got.Table != want.Table || got.Key != want.Key || string(got.Value) != string(want.Value) {
			t.Fatalf("envelope %q: fast path %q %q %s, encoding/json %q %q %s", data, got.Table, got.Key, got.Value, want.Table, want.Key, want.Value)
		}
	}
}

func TestRowDecoderMatchesEncodingJSON(t *testing.T) {
	for _, s := range decodeSeeds {
		checkFastDecode(t, []byte(s))
	}
	// The rows the store writes take the fast path.
	d := newRowDecoder()
	if _, ok := d.resource([]byte(decodeSeeds[0])); !ok {
		t.Fatal("a stored user took the slow path")
	}
	if _, ok := d.membership([]byte(decodeSeeds[23])); !ok {
		t.Fatal("a stored membership took the slow path")
	}
	if _, ok := d.recordEnvelope([]byte(decodeSeeds[25])); !ok {
		t.Fatal("a stored record took the slow path")
	}
	// Repeated short strings and attribute names are shared.
	a, _ := d.resource([]byte(decodeSeeds[0]))
	b, _ := d.resource([]byte(decodeSeeds[0]))
	ea := a.Attrs["emails"].([]any)[0].(map[string]any)["type"].(string)
	eb := b.Attrs["emails"].([]any)[0].(map[string]any)["type"].(string)
	if ea != "work" || !sameString(ea, eb) {
		t.Fatalf("short values not shared: %q %q", ea, eb)
	}
}

func sameString(a, b string) bool {
	return len(a) == len(b) && (len(a) == 0 || unsafeStringData(a) == unsafeStringData(b))
}

func FuzzRowDecoder(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastDecode(t, data)
	})
}

func unsafeStringData(s string) *byte { return unsafe.StringData(s) }
