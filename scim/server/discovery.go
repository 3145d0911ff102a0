package server

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/scimd/scimd/scim/schema"
)

func (s *Server) registerDiscovery(r *mux.Router) {
	get := func(path string, h http.HandlerFunc) {
		r.HandleFunc(path, h).Methods(http.MethodGet)
		r.HandleFunc(path, methodNotAllowed(http.MethodGet))
	}
	get("/ServiceProviderConfig", s.serviceProviderConfig)
	get("/ResourceTypes", s.resourceTypes)
	get("/ResourceTypes/{name}", s.resourceType)
	get("/Schemas", s.schemas)
	get("/Schemas/{id}", s.schemaByID)
}

func (s *Server) serviceProviderConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":          []string{schema.SPConfigURN},
		"documentationUri": "https://github.com/scimd/scimd",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": true, "maxOperations": s.bulkMaxOps, "maxPayloadSize": s.maxBody},
		"filter":           map[string]any{"supported": true, "maxResults": s.maxResults},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": true},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type":        "oauthbearertoken",
			"name":        "OAuth Bearer Token",
			"description": "Authentication with a bearer token created by `scimd token create`.",
			"primary":     true,
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": s.baseURL(r) + "/ServiceProviderConfig"},
	})
}

func (s *Server) resourceTypeJSON(r *http.Request, rt *schema.ResourceType) map[string]any {
	exts := []any{}
	for _, e := range rt.Extensions {
		exts = append(exts, map[string]any{"schema": e.ID, "required": false})
	}
	return map[string]any{
		"schemas":          []string{schema.ResourceTypeURN},
		"id":               rt.Name,
		"name":             rt.Name,
		"endpoint":         rt.Endpoint,
		"description":      rt.Core.Description,
		"schema":           rt.Core.ID,
		"schemaExtensions": exts,
		"meta":             map[string]any{"resourceType": "ResourceType", "location": s.baseURL(r) + "/ResourceTypes/" + rt.Name},
	}
}

func listResponse(resources []any) map[string]any {
	return map[string]any{
		"schemas":      []string{schema.ListResponseURN},
		"totalResults": len(resources),
		"itemsPerPage": len(resources),
		"startIndex":   1,
		"Resources":    resources,
	}
}

func (s *Server) resourceTypes(w http.ResponseWriter, r *http.Request) {
	var out []any
	for _, rt := range schema.ResourceTypes() {
		out = append(out, s.resourceTypeJSON(r, rt))
	}
	writeJSON(w, http.StatusOK, listResponse(out))
}

func (s *Server) resourceType(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	for _, rt := range schema.ResourceTypes() {
		if rt.Name == name {
			writeJSON(w, http.StatusOK, s.resourceTypeJSON(r, rt))
			return
		}
	}
	writeError(w, notFound("ResourceType", name))
}

func (s *Server) schemaJSON(r *http.Request, sc *schema.Schema) map[string]any {
	attrs := sc.Attributes
	return map[string]any{
		"schemas":     []string{schema.SchemaURN},
		"id":          sc.ID,
		"name":        sc.Name,
		"description": sc.Description,
		"attributes":  attrs,
		"meta":        map[string]any{"resourceType": "Schema", "location": s.baseURL(r) + "/Schemas/" + sc.ID},
	}
}

func (s *Server) schemas(w http.ResponseWriter, r *http.Request) {
	var out []any
	for _, sc := range schema.All() {
		out = append(out, s.schemaJSON(r, sc))
	}
	writeJSON(w, http.StatusOK, listResponse(out))
}

func (s *Server) schemaByID(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	for _, sc := range schema.All() {
		if sc.ID == id {
			writeJSON(w, http.StatusOK, s.schemaJSON(r, sc))
			return
		}
	}
	writeError(w, notFound("Schema", id))
}
