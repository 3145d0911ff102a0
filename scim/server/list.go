package server

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/scimd/scimd/scim/compat"
	"github.com/scimd/scimd/scim/filter"
	"github.com/scimd/scimd/scim/schema"
	"github.com/scimd/scimd/scim/store"
)

// valueMatcher adapts a filter to the PATCH engine's value-path matcher.
type valueMatcher struct{ f *filter.Filter }

func (v valueMatcher) MatchValue(rt *schema.ResourceType, parent string, elem any) bool {
	return v.f.MatchValue(rt, parent, elem)
}

// listParams are the query parameters of a list request, or the members
// of a SearchRequest body (RFC 7644 §3.4.3).
type listParams struct {
	filter     *filter.Filter
	startIndex int
	count      int
	proj       projection
	sortBy     string
	descending bool
}

// parseListParams reads the list parameters of a GET request.
func (s *Server) parseListParams(r *http.Request, rts ...*schema.ResourceType) (listParams, *Error) {
	return s.listParamsFrom(r.URL.Query().Get, compat.For(r.Context()), rts...)
}

// listParamsFrom reads list parameters through get, which returns a
// parameter's value or "". The filter and sortBy are checked against every
// resource type of rts.
func (s *Server) listParamsFrom(get func(string) string, tol *compat.Tracker, rts ...*schema.ResourceType) (listParams, *Error) {
	p := listParams{startIndex: 1, count: s.maxResults,
		proj: parseProjection(get("attributes"), get("excludedAttributes"))}
	if v := get("startIndex"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, badRequest("invalidValue", "startIndex must be an integer, got %q", v)
		}
		if n > 1 {
			p.startIndex = n
		}
	}
	if v := get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, badRequest("invalidValue", "count must be an integer, got %q", v)
		}
		switch {
		case n < 0:
			p.count = 0
		case n < s.maxResults:
			p.count = n
		}
	}
	if v := strings.TrimSpace(get("filter")); v != "" {
		f, err := filter.Parse(v)
		if err != nil {
			return p, badRequest("invalidFilter", "%v", err)
		}
		for _, rule := range f.Tolerated() {
			if cr := filterRules[rule]; !tol.Allow(cr) {
				return p, badRequest("invalidFilter", "the filter is not RFC 7644 syntax: it needs the %q tolerance, which profile %q does not enable", cr, tol.Profile())
			}
		}
		for _, rt := range rts {
			if err := f.Validate(rt); err != nil {
				return p, badRequest("invalidFilter", "%v", err)
			}
		}
		p.filter = f
	}
	if v := strings.TrimSpace(get("sortBy")); v != "" {
		known := false
		for _, rt := range rts {
			if def, _ := rt.Lookup(v); def != nil {
				known = true
			}
		}
		if !known {
			return p, badRequest("invalidValue", "sortBy %q is not an attribute of the resources listed", v)
		}
		p.sortBy = v
	}
	switch v := strings.ToLower(strings.TrimSpace(get("sortOrder"))); v {
	case "", "ascending":
	case "descending":
		p.descending = true
	default:
		return p, badRequest("invalidValue", "sortOrder must be \"ascending\" or \"descending\", got %q", v)
	}
	return p, nil
}

// candidates returns the resources a filter can match, using an index when
// the filter has an equality on an indexed attribute, or nil and false when
// every resource must be scanned.
func candidates(snap *store.Snapshot, kind store.Kind, f *filter.Filter) ([]*store.Resource, bool) {
	if f == nil {
		return nil, false
	}
	attr, value, ok := f.IndexHint()
	if !ok {
		return nil, false
	}
	one := func(r *store.Resource, found bool) ([]*store.Resource, bool) {
		if !found {
			return []*store.Resource{}, true
		}
		return []*store.Resource{r}, true
	}
	switch {
	case attr == "id":
		return one(snap.Resource(kind, value))
	case attr == "externalId":
		return snap.ResourcesByExternalID(kind, value), true
	case attr == "userName" && kind == store.KindUser, attr == "displayName" && kind == store.KindGroup:
		return one(snap.ResourceByName(kind, value))
	case attr == "members.value" && kind == store.KindGroup:
		var out []*store.Resource
		for _, m := range snap.GroupsOf(value) {
			if g, ok := snap.Resource(store.KindGroup, m.GroupID); ok {
				out = append(out, g)
			}
		}
		return out, true
	}
	return nil, false
}

func (s *Server) list(kind store.Kind) http.HandlerFunc {
	rt := resourceTypeOf(kind)
	return func(w http.ResponseWriter, r *http.Request) {
		p, e := s.parseListParams(r, rt)
		if e != nil {
			writeError(w, e)
			return
		}
		writeJSON(w, http.StatusOK, s.runList(r, p, kind))
	}
}

// listed is one resource a list request matched, rendered in full.
type listed struct {
	rt  *schema.ResourceType
	doc map[string]any
}

// runList answers a list or search request over the resources of kinds, in
// that order (or sorted by p.sortBy), as a ListResponse.
func (s *Server) runList(r *http.Request, p listParams, kinds ...store.Kind) map[string]any {
	snap := s.store.Read()
	rd := renderer{snap: snap, baseURL: s.baseURL(r), shared: p.proj.none(), teammate: s.teammate}
	renderMembers := !p.proj.excludes("members") || p.sortBy != ""
	filterMembers := p.filter != nil && strings.Contains(strings.ToLower(p.filter.String()), "members")

	total := 0
	page := []any{}
	var all []listed // every match, when sorting
	for _, kind := range kinds {
		rt := resourceTypeOf(kind)
		consider := func(res *store.Resource) {
			var doc map[string]any
			if p.filter != nil {
				doc = rd.render(res, filterMembers || renderMembers)
				if !p.filter.Match(rt, doc) {
					return
				}
			}
			total++
			if p.sortBy != "" {
				if doc == nil {
					doc = rd.render(res, true)
				}
				all = append(all, listed{rt, doc})
				return
			}
			if total < p.startIndex || len(page) >= p.count {
				return
			}
			if doc == nil || (filterMembers && !renderMembers) {
				doc = rd.render(res, renderMembers)
			}
			page = append(page, p.proj.apply(rt, doc))
		}
		if list, indexed := candidates(snap, kind, p.filter); indexed {
			for _, res := range list {
				consider(res)
			}
		} else {
			snap.Resources(kind, func(res *store.Resource) bool { consider(res); return true })
		}
	}
	if p.sortBy != "" {
		sortListed(all, p.sortBy, p.descending)
		for i := p.startIndex - 1; i >= 0 && i < len(all) && len(page) < p.count; i++ {
			page = append(page, p.proj.apply(all[i].rt, all[i].doc))
		}
	}
	return map[string]any{
		"schemas":      []string{schema.ListResponseURN},
		"totalResults": total,
		"startIndex":   p.startIndex,
		"itemsPerPage": len(page),
		"Resources":    page,
	}
}

// filterRules maps the filter parser's tolerance rewrites to the rules
// profiles enable.
var filterRules = map[filter.Rule]compat.Rule{
	filter.RuleValuePathSubAttr: compat.FilterValuePathSubAttr,
	filter.RuleBareValue:        compat.FilterBareValue,
	filter.RuleLenientString:    compat.FilterLenientString,
	filter.RuleMissingSpace:     compat.FilterMissingSpace,
}
