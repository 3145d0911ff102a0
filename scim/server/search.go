package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/scimd/scimd/scim/compat"
	"github.com/scimd/scimd/scim/schema"
	"github.com/scimd/scimd/scim/store"
)

// SearchRequestURN is the schema of a POST .search body (RFC 7644 §3.4.3).
const SearchRequestURN = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

// search answers POST /Users/.search, /Groups/.search and, with both kinds,
// the root /.search: the SearchRequest body carries what a GET list takes
// as query parameters, and the answer is the same ListResponse.
func (s *Server) search(kinds ...store.Kind) http.HandlerFunc {
	rts := make([]*schema.ResourceType, len(kinds))
	for i, k := range kinds {
		rts[i] = resourceTypeOf(k)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		_, body, e := readObject(r)
		if e != nil {
			writeError(w, e)
			return
		}
		params, e := searchParams(body)
		if e != nil {
			writeError(w, e)
			return
		}
		p, e := s.listParamsFrom(func(k string) string { return params[strings.ToLower(k)] }, compat.For(r.Context()), rts...)
		if e != nil {
			writeError(w, e)
			return
		}
		writeJSON(w, http.StatusOK, s.runList(r, p, kinds...))
	}
}

// searchParams turns a SearchRequest body into list parameters, keyed by
// lower-cased name. attributes and excludedAttributes are arrays of
// strings (a comma-separated string is taken too); startIndex and count
// are integers.
func searchParams(body map[string]any) (map[string]string, *Error) {
	out := map[string]string{}
	for key, v := range body {
		k := strings.ToLower(key)
		switch k {
		case "schemas":
			list, ok := v.([]any)
			if !ok {
				return nil, badRequest("invalidSyntax", "schemas must be an array of URNs")
			}
			found := false
			for _, u := range list {
				if s, _ := u.(string); strings.EqualFold(s, SearchRequestURN) {
					found = true
				}
			}
			if !found {
				return nil, badRequest("invalidSyntax", "schemas must contain %s", SearchRequestURN)
			}
		case "attributes", "excludedattributes":
			switch x := v.(type) {
			case nil:
			case string:
				out[k] = x
			case []any:
				parts := make([]string, 0, len(x))
				for _, e := range x {
					s, ok := e.(string)
					if !ok {
						return nil, badRequest("invalidValue", "%s must be an array of attribute names", key)
					}
					parts = append(parts, s)
				}
				out[k] = strings.Join(parts, ",")
			default:
				return nil, badRequest("invalidValue", "%s must be an array of attribute names", key)
			}
		case "filter", "sortby", "sortorder":
			switch x := v.(type) {
			case nil:
			case string:
				out[k] = x
			default:
				return nil, badRequest("invalidValue", "%s must be a string", key)
			}
		case "startindex", "count":
			switch x := v.(type) {
			case nil:
			case json.Number:
				n, err := x.Int64()
				if err != nil {
					return nil, badRequest("invalidValue", "%s must be an integer, got %s", key, x)
				}
				out[k] = strconv.FormatInt(n, 10)
			case string:
				out[k] = x
			default:
				return nil, badRequest("invalidValue", "%s must be an integer", key)
			}
		}
	}
	return out, nil
}
