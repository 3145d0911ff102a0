package app_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"
)

// routeScopes is the scope each admin API route needs. Every route under
// /api/v1 must be listed: a new route fails TestEveryAdminRouteScope until
// its scope is decided here.
var routeScopes = map[string]string{
	"GET /api/v1/tokens":                             "admin",
	"POST /api/v1/tokens":                            "admin",
	"DELETE /api/v1/tokens/{name}":                   "admin",
	"POST /api/v1/tokens/{name}/rotate":              "admin",
	"GET /api/v1/teammates":                          "read",
	"GET /api/v1/teammates/{id}":                     "read",
	"PUT /api/v1/teammates/{id}/role":                "admin",
	"POST /api/v1/teammates/{id}/drift":              "admin",
	"GET /api/v1/teammates/{id}/history":             "read",
	"GET /api/v1/teammates/{id}/explain":             "read",
	"POST /api/v1/whatif":                            "plan",
	"GET /api/v1/policy/shadow":                      "read",
	"PUT /api/v1/policy/shadow":                      "admin",
	"DELETE /api/v1/policy/shadow":                   "admin",
	"GET /api/v1/groups":                             "read",
	"GET /api/v1/policy":                             "read",
	"POST /api/v1/policy/reload":                     "admin",
	"GET /api/v1/changes":                            "read",
	"GET /api/v1/changes/{id}":                       "read",
	"POST /api/v1/changes/{id}/approve":              "approve",
	"POST /api/v1/changes/{id}/reject":               "approve",
	"POST /api/v1/backup":                            "admin",
	"GET /api/v1/audit":                              "read",
	"GET /api/v1/audit/verify":                       "read",
	"GET /api/v1/audit/{seq:[0-9]+}":                 "read",
	"GET /api/v1/report":                             "read",
	"GET /api/v1/settled":                            "read",
	"POST /api/v1/plan":                              "plan",
	"GET /api/v1/feed":                               "read",
	"POST /api/v1/webhooks":                          "admin",
	"GET /api/v1/webhooks":                           "admin",
	"GET /api/v1/webhooks/{id}":                      "admin",
	"DELETE /api/v1/webhooks/{id}":                   "admin",
	"POST /api/v1/webhooks/{id}/resume":              "admin",
	"POST /api/v1/clients":                           "admin",
	"GET /api/v1/clients":                            "admin",
	"DELETE /api/v1/clients/{id}":                    "admin",
	"POST /api/v1/clients/{id}/secrets":              "admin",
	"DELETE /api/v1/clients/{id}/secrets/{secretId}": "admin",
}

var scopeNames = []string{"scim", "read", "plan", "approve", "admin"}

// TestEveryAdminRouteScope calls every admin API route (found by walking
// the router) with a token of each scope: the route's scope and admin get
// through authorization; every other scope gets 403 naming the scope
// needed; no token gets 401.
func TestEveryAdminRouteScope(t *testing.T) {
	e := newEnv(t)
	tokens := map[string]string{}
	for _, sc := range scopeNames {
		var out struct{ Token string }
		b := e.mustDo(http.MethodPost, e.srv.URL+"/api/v1/tokens", adminToken,
			map[string]any{"name": "only-" + sc, "scopes": []string{sc}}, http.StatusCreated)
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		tokens[sc] = out.Token
	}
	var routes []string
	err := e.app.Router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil || !strings.HasPrefix(tpl, "/api/v1/") {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			return nil // a subrouter's prefix route
		}
		for _, m := range methods {
			routes = append(routes, m+" "+tpl)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(routes)
	for _, r := range routes {
		if _, ok := routeScopes[r]; !ok {
			t.Errorf("route %s has no entry in routeScopes: decide its scope", r)
		}
	}
	for r := range routeScopes {
		if !slices.Contains(routes, r) {
			t.Errorf("routeScopes lists %s, which the router does not serve", r)
		}
	}
	vars := regexp.MustCompile(`\{[^}]+\}`)
	for _, r := range routes {
		need, ok := routeScopes[r]
		if !ok {
			continue
		}
		method, tpl, _ := strings.Cut(r, " ")
		path := vars.ReplaceAllStringFunc(tpl, func(v string) string {
			if strings.HasPrefix(v, "{seq") {
				return "1"
			}
			return "no-such-id"
		})
		url := e.srv.URL + path
		if strings.HasSuffix(path, "/settled") {
			url += "?timeout=1ms"
		}
		t.Run(r, func(t *testing.T) {
			if status, body := e.do(method, url, "", nil); status != http.StatusUnauthorized {
				t.Errorf("no token: %d %s", status, body)
			}
			for _, sc := range scopeNames {
				status, body := e.do(method, url, tokens[sc], nil)
				allowed := sc == need || (sc == "admin" && need != "scim")
				switch {
				case allowed && (status == http.StatusUnauthorized || status == http.StatusForbidden):
					t.Errorf("%s token refused: %d %s", sc, status, body)
				case !allowed && status != http.StatusForbidden:
					t.Errorf("%s token: %d %s, want 403", sc, status, body)
				case !allowed && !strings.Contains(string(body), `\"`+need+`\" scope`):
					t.Errorf("%s token: 403 body does not name the scope %q: %s", sc, need, body)
				}
			}
		})
	}
}
