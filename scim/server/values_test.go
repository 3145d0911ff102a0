package server_test

import (
	"fmt"
	"net/http"
	"testing"
)

// TestOneValueNormaliser runs one table of scalar values through the four
// ways a client sets an attribute (POST, PUT, PATCH with a path, PATCH
// without one) under the strict and the default profile: each way accepts
// or refuses the same values and stores the same result (issue 14, item
// 7; the rules are scim/values).
func TestOneValueNormaliser(t *testing.T) {
	ts := newTestServer(t)
	tokens := map[string]string{"auto": ts.Token, "rfc": profileToken(t, ts, "strict", "rfc")}
	const absent = "<absent>"
	for i, c := range []struct {
		attr    string
		value   any
		rfc     string // stored value, or "400"
		lenient string
	}{
		{"title", "Sales", "Sales", "Sales"},
		{"title", 42, "400", "42"},
		{"title", 1.5, "400", "1.5"},
		{"title", true, "400", "true"},
		{"title", "", absent, absent},
		{"active", false, "false", "false"},
		{"active", "True", "400", "true"},
		{"active", " false ", "400", "false"},
		{"active", "1", "400", "400"},
		{"active", "t", "400", "400"},
		{"active", 1, "400", "400"},
		{"active", "", "400", absent},
	} {
		for _, profile := range []string{"rfc", "auto"} {
			want := c.rfc
			if profile == "auto" {
				want = c.lenient
			}
			name := fmt.Sprintf("%s=%#v/%s", c.attr, c.value, profile)
			t.Run(name, func(t *testing.T) {
				tok := withToken(tokens[profile])
				got := map[string]string{}
				user := func(way string) map[string]any {
					return map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
						"userName": fmt.Sprintf("v%d-%s-%s@example.com", i, profile, way)}
				}
				stored := func(id string) string {
					r := expect(t, ts.do(http.MethodGet, "/Users/"+id, nil), http.StatusOK)
					v, ok := r.JSON[c.attr]
					if !ok {
						return absent
					}
					return fmt.Sprint(v)
				}
				outcome := func(r *response, id string) string {
					if r.Status == http.StatusBadRequest {
						return "400"
					}
					if r.Status/100 != 2 {
						t.Fatalf("%d %s", r.Status, r.Body)
					}
					return stored(id)
				}
				// POST
				body := user("post")
				body[c.attr] = c.value
				r := ts.do(http.MethodPost, "/Users", body, tok)
				id := ""
				if r.Status == http.StatusCreated {
					id = str(r.JSON, "id")
				}
				got["POST"] = outcome(r, id)
				// PUT, PATCH with and without a path, on a fresh user each
				for _, way := range []string{"PUT", "PATCH path", "PATCH no path"} {
					u := ts.createUser(fmt.Sprintf("v%d-%s-%d@example.com", i, profile, len(got)))
					id := str(u, "id")
					switch way {
					case "PUT":
						b := user("put")
						b["userName"] = str(u, "userName")
						b[c.attr] = c.value
						r = ts.do(http.MethodPut, "/Users/"+id, b, tok)
					case "PATCH path":
						r = ts.do(http.MethodPatch, "/Users/"+id, patchBody(op("replace", c.attr, c.value)), tok)
					default:
						r = ts.do(http.MethodPatch, "/Users/"+id, patchBody(op("replace", "", map[string]any{c.attr: c.value})), tok)
					}
					got[way] = outcome(r, id)
				}
				for way, g := range got {
					if g != want {
						t.Errorf("%s: %s, want %s (all ways: %v)", way, g, want, got)
					}
				}
			})
		}
	}
}
