package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// openAPI is docs/openapi.yaml, read as plain data.
type openAPI struct {
	Paths      map[string]map[string]map[string]any `yaml:"paths"`
	Components struct {
		Schemas map[string]any `yaml:"schemas"`
	} `yaml:"components"`
}

func loadOpenAPI(t *testing.T) openAPI {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPI
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	return doc
}

var routeVar = regexp.MustCompile(`\{([^}:]+):[^}]+\}`)

// TestOpenAPIDescribesEveryRoute: every admin API route the router serves
// (and /oauth/token) is in docs/openapi.yaml with the scope it needs, and
// every route there is served (the cluster route by cluster members only).
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	e := newEnv(t)
	var served []string
	err := e.app.Router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil || !(strings.HasPrefix(tpl, "/api/v1/") || tpl == "/oauth/token") {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			return nil
		}
		for _, m := range methods {
			served = append(served, m+" "+routeVar.ReplaceAllString(tpl, "{$1}"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			r := strings.ToUpper(method) + " " + path
			if op["x-scimd-cluster-only"] == true {
				continue
			}
			documented = append(documented, r)
			if strings.HasPrefix(path, "/api/v1/") && op["x-scimd-scope"] == nil {
				t.Errorf("%s has no x-scimd-scope", r)
			}
		}
	}
	sort.Strings(served)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("the router serves %s, which docs/openapi.yaml does not describe", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("docs/openapi.yaml describes %s, which the router does not serve", r)
		}
	}
}

// TestOpenAPISchemasMatchAnswers calls the read routes of a server with a
// teammate, a group, a held change and a webhook, and validates each
// answer against the schema docs/openapi.yaml gives for it.
func TestOpenAPISchemasMatchAnswers(t *testing.T) {
	doc := loadOpenAPI(t)
	// The component schemas as one JSON Schema (2020-12) document.
	raw, err := json.Marshal(map[string]any{"$defs": doc.Components.Schemas})
	if err != nil {
		t.Fatal(err)
	}
	raw = bytes.ReplaceAll(raw, []byte("#/components/schemas/"), []byte("#/$defs/"))
	defs, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("openapi.json", defs); err != nil {
		t.Fatal(err)
	}
	schemaOf := func(path, method string, status int) *jsonschema.Schema {
		t.Helper()
		op := doc.Paths[path][method]
		resp, _ := op["responses"].(map[string]any)[fmt.Sprint(status)].(map[string]any)
		content, _ := resp["content"].(map[string]any)["application/json"].(map[string]any)
		ref, _ := content["schema"].(map[string]any)["$ref"].(string)
		if ref == "" {
			t.Fatalf("%s %s: no JSON schema for %d", method, path, status)
		}
		s, err := c.Compile("openapi.json" + strings.Replace(ref, "#/components/schemas/", "#/$defs/", 1))
		if err != nil {
			t.Fatalf("compile %s: %v", ref, err)
		}
		return s
	}

	e := newEnv(t)
	u := e.createUser("schema@example.com", nil)
	e.createGroup("Intercom Admins", u)
	e.idle()
	hook := map[string]any{"url": "http://127.0.0.1:9/hook", "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}
	e.mustDo(http.MethodPost, e.srv.URL+"/api/v1/webhooks", adminToken, hook, http.StatusCreated)

	for _, tc := range []struct{ path, url string }{
		{"/api/v1/tokens", "/api/v1/tokens"},
		{"/api/v1/teammates", "/api/v1/teammates"},
		{"/api/v1/teammates/{id}", "/api/v1/teammates/" + u},
		{"/api/v1/teammates/{id}/history", "/api/v1/teammates/" + u + "/history"},
		{"/api/v1/teammates/{id}/explain", "/api/v1/teammates/" + u + "/explain"},
		{"/api/v1/groups", "/api/v1/groups"},
		{"/api/v1/policy", "/api/v1/policy"},
		{"/api/v1/policy/shadow", "/api/v1/policy/shadow"},
		{"/api/v1/changes", "/api/v1/changes?state=all"},
		{"/api/v1/audit", "/api/v1/audit?limit=50"},
		{"/api/v1/audit/verify", "/api/v1/audit/verify"},
		{"/api/v1/audit/{seq}", "/api/v1/audit/1"},
		{"/api/v1/report", "/api/v1/report"},
		{"/api/v1/settled", "/api/v1/settled"},
		{"/api/v1/feed", "/api/v1/feed?after=0"},
		{"/api/v1/webhooks", "/api/v1/webhooks"},
		{"/api/v1/clients", "/api/v1/clients"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			body := e.mustDo(http.MethodGet, e.srv.URL+tc.url, adminToken, nil, http.StatusOK)
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if err := schemaOf(tc.path, "get", http.StatusOK).Validate(v); err != nil {
				t.Errorf("GET %s does not match docs/openapi.yaml: %v\n%s", tc.url, err, body)
			}
		})
	}
}
