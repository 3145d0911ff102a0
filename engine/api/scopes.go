package api

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/scimd/scimd/scim/server"
)

// routeScopes are the admin routes whose scope is not the rule's
// (RouteScope): keyed by method and path template.
var routeScopes = map[string]string{
	"POST /api/v1/plan":                 server.ScopePlan,
	"POST /api/v1/whatif":               server.ScopePlan,
	"POST /api/v1/changes/{id}/approve": server.ScopeApprove,
	"POST /api/v1/changes/{id}/reject":  server.ScopeApprove,
}

// adminOnlyPrefixes are the routes that even reading needs admin for:
// credentials and where changes are sent.
var adminOnlyPrefixes = []string{"/api/v1/tokens", "/api/v1/clients", "/api/v1/webhooks"}

// ScopeFor is the scope an admin API route needs: plan for planning,
// approve for deciding pending changes, read for every other GET except
// tokens, clients and webhooks, admin for everything else.
func ScopeFor(method, pathTemplate string) string {
	if s, ok := routeScopes[method+" "+pathTemplate]; ok {
		return s
	}
	for _, p := range adminOnlyPrefixes {
		if pathTemplate == p || strings.HasPrefix(pathTemplate, p+"/") {
			return server.ScopeAdmin
		}
	}
	if method == http.MethodGet || method == http.MethodHead {
		return server.ScopeRead
	}
	return server.ScopeAdmin
}

// RouteScope is the scope the request's matched route needs (ScopeFor).
// A request with no matched route needs admin.
func RouteScope(r *http.Request) string {
	cur := mux.CurrentRoute(r)
	if cur == nil {
		return server.ScopeAdmin
	}
	tpl, err := cur.GetPathTemplate()
	if err != nil {
		return server.ScopeAdmin
	}
	return ScopeFor(r.Method, tpl)
}
