package server_test

import (
	"net/http"
	"testing"
)

// TestPatchValueFiltersAreTypeChecked: the filter of a PATCH path is
// checked against the attribute types like a query filter (one table):
// an ordering or a non-boolean on a boolean, a number on a dateTime, a
// substring on an integer are 400 invalidFilter, and nothing changes;
// a well-typed filter that matches nothing stays noTarget.
func TestPatchValueFiltersAreTypeChecked(t *testing.T) {
	ts := newTestServer(t)
	u := ts.createUser("typed@example.com")
	id := str(u, "id")
	expect(t, ts.do(http.MethodPatch, "/Users/"+id, patchBody(op("add", "emails", []any{map[string]any{"value": "a@example.com", "type": "work", "primary": true}}))), http.StatusNoContent)
	rfc := profileToken(t, ts, "strict", "rfc")
	for _, c := range []struct {
		path, scimType string
	}{
		{`emails[primary gt true].value`, "invalidFilter"},
		{`emails[primary eq "yes"].value`, "invalidFilter"},
		{`emails[primary co true].value`, "invalidFilter"},
		{`emails[type eq null].value`, "noTarget"},
		{`emails[type eq "home"].value`, "noTarget"},
		{`emails[type eq "work" and primary sw "t"].value`, "invalidFilter"},
		{`emails[type eq "work"`, "invalidPath"},
	} {
		t.Run(c.path, func(t *testing.T) {
			before := expect(t, ts.do(http.MethodGet, "/Users/"+id, nil), http.StatusOK).JSON["meta"]
			r := ts.do(http.MethodPatch, "/Users/"+id, patchBody(op("replace", c.path, "b@example.com")), withToken(rfc))
			checkSCIMError(t, r, 400, c.scimType)
			if after := expect(t, ts.do(http.MethodGet, "/Users/"+id, nil), http.StatusOK).JSON["meta"]; str(after.(map[string]any), "version") != str(before.(map[string]any), "version") {
				t.Errorf("a refused PATCH changed the user")
			}
		})
	}
}
