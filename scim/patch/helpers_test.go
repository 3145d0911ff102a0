package patch

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/scimd/scimd/scim/schema"
)

const entURN = schema.EnterpriseUserURN

// testMatcher is a minimal value filter for the tests: `sub eq value`
// comparisons joined by "and", strings compared case-insensitively. The
// server plugs in scim/filter instead.
type testMatcher struct{ tests []eqTest }

func (m testMatcher) MatchValue(_ *schema.ResourceType, _ string, elem any) bool {
	obj, ok := elem.(map[string]any)
	if !ok {
		return false
	}
	for _, t := range m.tests {
		_, v, found := lookupFold(obj, t.name)
		if !found {
			return false
		}
		vs, vIsStr := v.(string)
		ts, tIsStr := t.value.(string)
		switch {
		case vIsStr && tIsStr:
			if !strings.EqualFold(vs, ts) {
				return false
			}
		case !equalValue(v, t.value):
			return false
		}
	}
	return true
}

// testFilterParser is the ValueFilterParser used by the tests.
func testFilterParser(expr string) (ValueMatcher, error) {
	tests, ok := eqList(expr, "and")
	if !ok {
		return nil, errors.New("test matcher supports only `sub eq value [and …]`")
	}
	return testMatcher{tests: tests}, nil
}

func testPatcher() *Patcher { return &Patcher{ValueFilterParser: testFilterParser} }

func mustJSON(t testing.TB, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return m
}

const userJSON = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
  "id": "2819c223-7f76-453a-919d-413861904646",
  "externalId": "bjensen",
  "userName": "bjensen@example.com",
  "name": {"familyName": "Jensen", "givenName": "Barbara"},
  "displayName": "Babs Jensen",
  "title": "Tour Guide",
  "active": true,
  "emails": [
    {"value": "bjensen@example.com", "type": "work", "primary": true},
    {"value": "babs@jensen.org", "type": "home"}
  ],
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
    "employeeNumber": "701984",
    "department": "Tour Operations",
    "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
  },
  "meta": {
    "resourceType": "User",
    "created": "2010-01-23T04:56:22Z",
    "lastModified": "2011-05-13T04:42:34Z",
    "version": "W/\"3694e05e9dff590\"",
    "location": "https://example.com/scim/v2/Users/2819c223-7f76-453a-919d-413861904646"
  }
}`

// A freshly created Entra user: no e-mails, no extension yet.
const bareUserJSON = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
  "id": "7f1c0c8e",
  "userName": "Test_User_ab6490ee@contoso.com",
  "active": true,
  "meta": {"resourceType": "User", "created": "2026-01-01T00:00:00Z", "lastModified": "2026-01-01T00:00:00Z"}
}`

const groupJSON = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
  "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
  "externalId": "00g1emaKYZTWRYYRRTSK",
  "displayName": "Tour Guides",
  "meta": {"resourceType": "Group", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"}
}`

func userDoc(t testing.TB) map[string]any     { return mustJSON(t, userJSON) }
func bareUserDoc(t testing.TB) map[string]any { return mustJSON(t, bareUserJSON) }
func groupDoc(t testing.TB) map[string]any    { return mustJSON(t, groupJSON) }

// wrapOps turns a bare Operations array into a PatchOp body.
func wrapOps(ops string) string {
	if strings.HasPrefix(strings.TrimSpace(ops), "[") {
		return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":` + ops + `}`
	}
	return ops
}

// at reads a value by a slash-separated path; array indexes are numbers.
func at(doc map[string]any, path string) (any, bool) {
	var cur any = doc
	for _, seg := range strings.Split(path, "/") {
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			cur = x[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func compactJSON(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("bad expectation %s: %v", s, err)
	}
	// Re-encode through a map so object keys are sorted like json.Marshal.
	dec := json.NewDecoder(&b)
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// absent is the expectation for a value that must not be present.
const absent = "<absent>"

func checkDoc(t *testing.T, doc map[string]any, want map[string]string) {
	t.Helper()
	for path, w := range want {
		v, ok := at(doc, path)
		if w == absent {
			if ok {
				t.Errorf("%s: want absent, got %v", path, v)
			}
			continue
		}
		if !ok {
			t.Errorf("%s: absent, want %s", path, w)
			continue
		}
		got, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if string(got) != compactJSON(t, w) {
			t.Errorf("%s = %s, want %s", path, got, compactJSON(t, w))
		}
	}
}

func errType(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.ScimType
	}
	return "not *Error: " + err.Error()
}
