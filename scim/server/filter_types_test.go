package server_test

import (
	"net/http"
	"testing"
)

// TestFilterOperatorTypeTable sends every operator against an attribute of
// every type the User schema has (RFC 7644 §3.4.2.2) and checks that the
// ill-typed comparisons are 400 invalidFilter and the others are answered.
// Integer and decimal, which no served schema has, are covered in
// scim/filter's table test.
func TestFilterOperatorTypeTable(t *testing.T) {
	ts := newTestServer(t)
	ts.createUser("alice@example.com", "profileUrl", "https://example.com/alice",
		"emails", []any{map[string]any{"value": "alice@example.com", "primary": true}},
		"x509Certificates", []any{map[string]any{"value": "YWJj"}})
	ops := []string{"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"}
	rows := []struct {
		attr, value string
		ok          string // per operator in ops: y answered, n invalidFilter
	}{
		{"userName", `"alice@example.com"`, "yyyyyyyyy"},
		{"profileUrl", `"https://example.com/alice"`, "yyyyyyyyy"},
		{"x509Certificates.value", `"YWJj"`, "yyyyynnnn"},
		{"active", `true`, "yynnnnnnn"},
		{"emails.primary", `true`, "yynnnnnnn"},
		{"meta.lastModified", `"2020-01-01T00:00:00Z"`, "yyyyyyyyy"},
		{"name", `"alice"`, "nnnnnnnnn"},
	}
	before := ts.commit()
	for _, r := range rows {
		for i, op := range ops {
			f := r.attr + " " + op + " " + r.value
			t.Run(f, func(t *testing.T) {
				res := ts.with(t).list("/Users", "filter", f)
				if r.ok[i] == 'y' {
					expect(t, res, http.StatusOK)
					return
				}
				checkSCIMError(t, res, http.StatusBadRequest, "invalidFilter")
			})
		}
	}
	for _, c := range []struct {
		filter string
		ok     bool
		total  int
	}{
		{`meta.lastModified gt "not-a-date"`, false, 0},
		{`meta.created lt 5`, false, 0},
		{`active eq "maybe"`, false, 0},
		{`active gt null`, false, 0},
		{`emails[primary le true]`, false, 0},
		{`active eq true`, true, 1},
		{`active eq "True"`, true, 1},
		{`meta.lastModified gt "2020-01-01T00:00:00Z"`, true, 1},
		{`meta.lastModified lt "2020-01-01T00:00:00Z"`, true, 0},
		{`name.givenName pr or active ne false`, true, 1},
	} {
		t.Run(c.filter, func(t *testing.T) {
			res := ts.with(t).list("/Users", "filter", c.filter)
			if !c.ok {
				checkSCIMError(t, res, http.StatusBadRequest, "invalidFilter")
				return
			}
			expect(t, res, http.StatusOK)
			if got := intField(t, res.JSON, "totalResults"); got != c.total {
				t.Fatalf("totalResults %d, want %d", got, c.total)
			}
		})
	}
	ts.unchanged(t, before)
}
