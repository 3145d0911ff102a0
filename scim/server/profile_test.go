package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/server"
	"github.com/scimd/scimd/scim/store"
)

// profileToken creates a SCIM token with a compatibility profile.
func profileToken(t *testing.T, ts *testServer, name, profile string) string {
	t.Helper()
	secret, err := server.CreateScopedToken(context.Background(), ts.Store,
		server.TokenSpec{Name: name, Scopes: []string{server.ScopeSCIM}, Profile: profile}, audit.Actor{Kind: "system", Name: "test"})
	if err != nil {
		t.Fatalf("create %s token: %v", profile, err)
	}
	return secret
}

// compatRules returns the profile and rules the last audit event names.
func compatRules(t *testing.T, ts *testServer) string {
	t.Helper()
	ev := ts.auditEvents(t, store.AuditQuery{})
	c, _ := ev[len(ev)-1].Details["compatibility"].(map[string]any)
	if c == nil {
		return ""
	}
	var rules []string
	for _, r := range c["rules"].([]any) {
		rules = append(rules, r.(string))
	}
	return c["profile"].(string) + ":" + strings.Join(rules, ",")
}

// TestCompatibilityProfiles: a token's profile decides which tolerance
// rules apply to its requests; rfc applies none (noTarget included, RFC
// 7644 §3.5.2.3); the audit event of a SCIM write names the rules that
// changed it.
func TestCompatibilityProfiles(t *testing.T) {
	ts := newTestServer(t)
	tokens := map[string]string{"auto": ts.Token}
	for _, p := range []string{"rfc", "okta", "entra", "onelogin"} {
		tokens[p] = profileToken(t, ts, "idp-"+p, p)
	}
	u := ts.createUser("u@example.com")
	id := str(u, "id")
	upsert := patchBody(op("replace", `emails[type eq "work"].value`, "u@work.example"))
	for _, c := range []struct {
		profile string
		status  int
		rules   string
	}{
		{"rfc", 400, ""}, {"okta", 400, ""}, {"onelogin", 400, ""},
		{"entra", 204, "entra:patch-filtered-upsert"},
		{"auto", 204, "auto:patch-filtered-upsert"},
	} {
		r := ts.do(http.MethodPatch, "/Users/"+id, upsert, withToken(tokens[c.profile]))
		if c.status == 400 {
			checkSCIMError(t, r, 400, "noTarget")
			continue
		}
		expect(t, r, c.status)
		if got := compatRules(t, ts); got != c.rules {
			t.Errorf("%s: audit names %q, want %q", c.profile, got, c.rules)
		}
		expect(t, ts.do(http.MethodPatch, "/Users/"+id, patchBody(op("remove", "emails", nil))), http.StatusNoContent)
	}

	// String booleans and capitalised op names.
	for _, c := range []struct {
		profile, userName string
		status            int
		rules             string
	}{
		{"rfc", "a1@example.com", 400, ""},
		{"okta", "a2@example.com", 400, ""},
		{"onelogin", "a3@example.com", 201, "onelogin:string-booleans"},
		{"entra", "a4@example.com", 201, "entra:string-booleans"},
	} {
		r := ts.do(http.MethodPost, "/Users", map[string]any{"userName": c.userName, "active": "True"}, withToken(tokens[c.profile]))
		if c.status == 400 {
			checkSCIMError(t, r, 400, "invalidValue")
			continue
		}
		expect(t, r, c.status)
		if got := compatRules(t, ts); got != c.rules {
			t.Errorf("%s: audit names %q, want %q", c.profile, got, c.rules)
		}
	}
	checkSCIMError(t, ts.do(http.MethodPatch, "/Users/"+id, patchBody(op("Replace", "title", "x")), withToken(tokens["rfc"])), 400, "invalidSyntax")
	expect(t, ts.do(http.MethodPatch, "/Users/"+id, patchBody(op("Replace", "title", "x")), withToken(tokens["entra"])), 204)
	if got := compatRules(t, ts); got != "entra:patch-op-name-case" {
		t.Errorf("audit names %q", got)
	}
	// A request no rule changed names none.
	expect(t, ts.do(http.MethodPatch, "/Users/"+id, patchBody(op("replace", "title", "y")), withToken(tokens["entra"])), 204)
	if got := compatRules(t, ts); got != "" {
		t.Errorf("a plain request names %q", got)
	}
	// Filters: an unquoted value is Microsoft's form, not the RFC's.
	checkSCIMError(t, ts.do(http.MethodGet, "/Users?filter="+urlq("userName eq u@example.com"), nil, withToken(tokens["rfc"])), 400, "invalidFilter")
	expect(t, ts.do(http.MethodGet, "/Users?filter="+urlq("userName eq u@example.com"), nil, withToken(tokens["entra"])), 200)
	expect(t, ts.do(http.MethodGet, "/Users?filter="+urlq(`userName eq "u@example.com"`), nil, withToken(tokens["rfc"])), 200)
	// Members as bare ids.
	checkSCIMError(t, ts.do(http.MethodPost, "/Groups", map[string]any{"displayName": "G", "members": []any{id}}, withToken(tokens["rfc"])), 400, "invalidValue")
	expect(t, ts.do(http.MethodPost, "/Groups", map[string]any{"displayName": "G", "members": []any{id}}, withToken(tokens["entra"])), 201)

	// The admin API: profile on create and list; an unknown one is 400.
	r := ts.do(http.MethodPost, "/api/v1/tokens", map[string]any{"name": "ping", "profile": "ping"}, withToken(ts.Admin))
	if expect(t, r, http.StatusCreated); r.JSON["profile"] != "ping" {
		t.Fatalf("created token %s", r.Body)
	}
	checkSCIMError(t, ts.do(http.MethodPost, "/api/v1/tokens", map[string]any{"name": "x", "profile": "netscape"}, withToken(ts.Admin)), 400, "invalidValue")
	list := expect(t, ts.do(http.MethodGet, "/api/v1/tokens", nil, withToken(ts.Admin)), http.StatusOK)
	if !strings.Contains(string(list.Body), `"profile":"entra"`) || !strings.Contains(string(list.Body), `"profile":"auto"`) {
		t.Fatalf("token list %s", list.Body)
	}
}

// TestRFCProfileIsStrictInPatch: every PATCH tolerance is a rule of its
// own: under the rfc profile each request below is refused with the
// status and scimType RFC 7644 gives, changing nothing; under the profile
// that enables the rule (and auto) it is accepted, and the audit event
// names the rule.
func TestRFCProfileIsStrictInPatch(t *testing.T) {
	ts := newTestServer(t)
	tokens := map[string]string{"auto": ts.Token}
	for _, p := range []string{"rfc", "entra", "jumpcloud"} {
		tokens[p] = profileToken(t, ts, "idp-"+p, p)
	}
	for _, c := range []struct {
		name     string
		group    bool // the request targets a group with one member
		body     func(member string) map[string]any
		scimType string
		lenient  string // a profile enabling the rule
		rule     string
	}{
		{"no PatchOp schema", false, func(string) map[string]any {
			return map[string]any{"Operations": []any{op("replace", "title", "x")}}
		}, "invalidSyntax", "entra", "patch-lenient-request"},
		{"empty Operations", false, func(string) map[string]any {
			return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": []any{}}
		}, "invalidSyntax", "entra", ""}, // nothing changed, so no rule is named
		{"empty path", false, func(string) map[string]any {
			return patchBody(map[string]any{"op": "replace", "path": "", "value": map[string]any{"title": "x"}})
		}, "invalidPath", "entra", "patch-lenient-request"},
		{"string boolean in a PATCH value", false, func(string) map[string]any {
			return patchBody(op("replace", "active", "False"))
		}, "invalidValue", "entra", "string-booleans"},
		{"number for a string", false, func(string) map[string]any {
			return patchBody(op("replace", "title", 42))
		}, "invalidValue", "entra", "scalars-as-strings"},
		{"bare manager id", false, func(string) map[string]any {
			return patchBody(op("add", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "271"))
		}, "invalidValue", "entra", "manager-as-string"},
		{"single value for a multi-valued attribute", false, func(string) map[string]any {
			return patchBody(op("add", "emails", map[string]any{"value": "one@example.com", "type": "work"}))
		}, "invalidValue", "entra", "single-value-for-multi-valued"},
		{"dotted key in a path-less value", false, func(string) map[string]any {
			return patchBody(op("replace", "", map[string]any{"name.givenName": "Barbara"}))
		}, "invalidPath", "entra", "patch-dotted-keys"},
		{"URN-qualified key in a path-less value", false, func(string) map[string]any {
			return patchBody(op("replace", "", map[string]any{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Sales"}))
		}, "invalidPath", "entra", "urn-qualified-attributes"},
		{"remove members by value", true, func(member string) map[string]any {
			return patchBody(op("remove", "members", []any{map[string]any{"value": member}}))
		}, "invalidSyntax", "jumpcloud", "patch-remove-by-value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, profile := range []string{"rfc", c.lenient, "auto"} {
				u := ts.createUser(strings.ReplaceAll(c.name, " ", "-") + "-" + profile + "@example.com")
				path := "/Users/" + str(u, "id")
				if c.group {
					g := ts.do(http.MethodPost, "/Groups", map[string]any{"displayName": c.name + " " + profile,
						"members": []any{map[string]any{"value": str(u, "id")}}})
					expect(t, g, http.StatusCreated)
					path = "/Groups/" + str(g.JSON, "id")
				}
				before := expect(t, ts.do(http.MethodGet, path, nil), http.StatusOK).JSON["meta"]
				r := ts.do(http.MethodPatch, path, c.body(str(u, "id")), withToken(tokens[profile]))
				if profile == "rfc" {
					checkSCIMError(t, r, 400, c.scimType)
					after := expect(t, ts.do(http.MethodGet, path, nil), http.StatusOK).JSON["meta"]
					if fmt.Sprint(after) != fmt.Sprint(before) {
						t.Errorf("a refused PATCH changed the resource: meta %v → %v", before, after)
					}
					continue
				}
				if r.Status/100 != 2 {
					t.Fatalf("%s: %d %s", profile, r.Status, r.Body)
				}
				if c.rule != "" {
					if got := compatRules(t, ts); !strings.Contains(got, c.rule) {
						t.Errorf("%s: audit names %q, want %s", profile, got, c.rule)
					}
				}
			}
		})
	}
}
