package server

import (
	"github.com/scimd/scimd/scim/filter"
	"strconv"
	"strings"
	"time"

	"github.com/scimd/scimd/scim/schema"
	"github.com/scimd/scimd/scim/store"
)

// etag is the weak entity tag of a resource version.
func etag(r *store.Resource) string { return `W/"` + strconv.FormatUint(r.Version, 10) + `"` }

// renderer turns stored resources into SCIM JSON documents.
type renderer struct {
	snap    memberReader
	baseURL string
	// teammate, when set, gives a user's Teammate extension.
	teammate TeammateFunc
	// shared renders documents that share attribute values with the
	// store (see sharedResourceDoc): for answers that are encoded as they
	// are, with no projection to apply.
	shared bool
}

// memberReader is the part of a snapshot or write transaction rendering
// needs.
type memberReader interface {
	Resource(k store.Kind, id string) (*store.Resource, bool)
	Members(groupID string) []*store.Membership
	GroupsOf(memberID string) []*store.Membership
	RecordReader
}

// RecordReader reads the records other components keep in the store.
type RecordReader interface {
	Record(table, key string) (any, bool)
}

// Teammate is what the read-only Teammate extension of a User shows:
// the decided state of the teammate.
type Teammate struct {
	Role           string
	Access         bool
	Excluded       bool
	Reasons        []string
	PolicyRevision string
}

// TeammateFunc returns the decided state of the teammate of user id, read
// from the records of the snapshot being rendered; false when there is
// none yet.
type TeammateFunc func(records RecordReader, userID string) (Teammate, bool)

func resourceTypeOf(k store.Kind) *schema.ResourceType {
	if k == store.KindGroup {
		return schema.GroupType
	}
	return schema.UserType
}

// render returns the full SCIM representation of r. withMembers controls
// whether a group's members (the expensive part) are rendered.
func (rd renderer) render(r *store.Resource, withMembers bool) map[string]any {
	rt := resourceTypeOf(r.Kind)
	var doc map[string]any
	if rd.shared {
		doc = sharedResourceDoc(rt, r)
	} else {
		doc = resourceDoc(rt, r)
	}
	location := rd.baseURL + rt.Endpoint + "/" + r.ID
	doc["meta"] = map[string]any{
		"resourceType": string(r.Kind),
		"created":      r.Created.UTC().Format(time.RFC3339Nano),
		"lastModified": r.Modified.UTC().Format(time.RFC3339Nano),
		"location":     location,
		"version":      etag(r),
	}
	switch r.Kind {
	case store.KindGroup:
		if withMembers {
			members := rd.snap.Members(r.ID)
			list := make([]any, 0, len(members))
			for _, m := range members {
				list = append(list, rd.memberJSON(m))
			}
			doc["members"] = list
		}
	case store.KindUser:
		groups := rd.snap.GroupsOf(r.ID)
		if len(groups) > 0 {
			list := make([]any, 0, len(groups))
			for _, m := range groups {
				g := map[string]any{"value": m.GroupID, "$ref": rd.baseURL + "/Groups/" + m.GroupID, "type": "direct"}
				if gr, ok := rd.snap.Resource(store.KindGroup, m.GroupID); ok {
					g["display"] = gr.Name
				}
				list = append(list, g)
			}
			doc["groups"] = list
		}
		if rd.teammate != nil {
			if tm, ok := rd.teammate(rd.snap, r.ID); ok {
				doc[schema.TeammateURN] = teammateJSON(tm)
				doc["schemas"] = schemaURNs(rt, doc)
			}
		}
	}
	return doc
}

func teammateJSON(tm Teammate) map[string]any {
	reasons := make([]any, len(tm.Reasons))
	for i, r := range tm.Reasons {
		reasons[i] = r
	}
	out := map[string]any{"access": tm.Access, "excluded": tm.Excluded, "reasons": reasons}
	if tm.Role != "" {
		out["role"] = tm.Role
	}
	if tm.PolicyRevision != "" {
		out["policyRevision"] = tm.PolicyRevision
	}
	return out
}

func (rd renderer) memberJSON(m *store.Membership) map[string]any {
	kind := m.MemberKind
	if kind == "" {
		kind = store.KindUser
	}
	out := map[string]any{
		"value": m.MemberID,
		"type":  string(kind),
		"$ref":  rd.baseURL + resourceTypeOf(kind).Endpoint + "/" + m.MemberID,
	}
	display := m.Display
	if display == "" {
		if r, ok := rd.snap.Resource(kind, m.MemberID); ok {
			display = r.Name
			if dn, ok := r.Attrs["displayName"].(string); ok && dn != "" && kind == store.KindUser {
				display = dn
			}
		}
	}
	if display != "" {
		out["display"] = display
	}
	return out
}

// projection implements the attributes and excludedAttributes query
// parameters (RFC 7644 §3.4.2.5).
type projection struct {
	include []string // lower-cased attribute paths
	exclude []string
}

func parseProjection(attributes, excluded string) projection {
	split := func(s string) []string {
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	return projection{include: split(attributes), exclude: split(excluded)}
}

// none reports whether the projection keeps the whole document.
func (p projection) none() bool { return len(p.include) == 0 && len(p.exclude) == 0 }

// excludes reports whether the projection certainly drops a top-level
// attribute, so the renderer can skip computing it.
func (p projection) excludes(attr string) bool {
	attr = strings.ToLower(attr)
	for _, e := range p.exclude {
		if strings.ToLower(e) == attr {
			return true
		}
	}
	if len(p.include) > 0 {
		for _, i := range p.include {
			i = strings.ToLower(i)
			if i == attr || strings.HasPrefix(i, attr+".") || strings.HasPrefix(i, attr+"[") {
				return false
			}
		}
		return true
	}
	return false
}

// alwaysReturned are never removed by a projection.
var alwaysReturned = map[string]bool{"id": true, "schemas": true}

func (p projection) apply(rt *schema.ResourceType, doc map[string]any) map[string]any {
	if p.none() {
		return doc
	}
	if len(p.include) > 0 {
		out := map[string]any{}
		for k, v := range doc {
			if alwaysReturned[strings.ToLower(k)] {
				out[k] = v
			}
		}
		for _, path := range p.include {
			if attr, expr, ok := valuePathSelector(path); ok {
				copyMatching(rt, doc, out, attr, expr)
				continue
			}
			copyPath(rt, doc, out, path)
		}
		return out
	}
	for _, path := range p.exclude {
		removePath(rt, doc, path)
	}
	return doc
}

// splitPath splits an attribute path into the document key (an extension
// URN, or "") and the attribute and sub-attribute names.
func splitPath(rt *schema.ResourceType, path string) (urn, attr, sub string) {
	path = strings.ToLower(path)
	for _, ext := range rt.Extensions {
		id := strings.ToLower(ext.ID)
		if path == id {
			return ext.ID, "", ""
		}
		if strings.HasPrefix(path, id+":") {
			path = path[len(id)+1:]
			urn = ext.ID
			break
		}
	}
	core := strings.ToLower(rt.Core.ID) + ":"
	path = strings.TrimPrefix(path, core)
	attr, sub, _ = strings.Cut(path, ".")
	return urn, attr, sub
}

func findKey(m map[string]any, lowerName string) (string, bool) {
	for k := range m {
		if strings.ToLower(k) == lowerName {
			return k, true
		}
	}
	return "", false
}

func copyPath(rt *schema.ResourceType, src, dst map[string]any, path string) {
	urn, attr, sub := splitPath(rt, path)
	if urn != "" {
		ext, _ := src[urn].(map[string]any)
		if ext == nil {
			return
		}
		if attr == "" {
			dst[urn] = ext
			return
		}
		out, _ := dst[urn].(map[string]any)
		if out == nil {
			out = map[string]any{}
			dst[urn] = out
		}
		src, dst = ext, out
	}
	key, ok := findKey(src, attr)
	if !ok {
		return
	}
	if sub == "" {
		dst[key] = src[key]
		return
	}
	switch v := src[key].(type) {
	case map[string]any:
		out, _ := dst[key].(map[string]any)
		if out == nil {
			out = map[string]any{}
			dst[key] = out
		}
		if sk, ok := findKey(v, sub); ok {
			out[sk] = v[sk]
		}
	case []any:
		// Keep each element's sub-attribute.
		list := make([]any, 0, len(v))
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				if sk, ok := findKey(m, sub); ok {
					list = append(list, map[string]any{sk: m[sk]})
				}
			}
		}
		dst[key] = list
	}
}

func removePath(rt *schema.ResourceType, doc map[string]any, path string) {
	urn, attr, sub := splitPath(rt, path)
	target := doc
	if urn != "" {
		if attr == "" {
			delete(doc, urn)
			return
		}
		ext, _ := doc[urn].(map[string]any)
		if ext == nil {
			return
		}
		target = ext
	}
	key, ok := findKey(target, attr)
	if !ok || alwaysReturned[strings.ToLower(key)] {
		return
	}
	if sub == "" {
		delete(target, key)
		return
	}
	switch v := target[key].(type) {
	case map[string]any:
		if sk, ok := findKey(v, sub); ok {
			delete(v, sk)
		}
	case []any:
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				if sk, ok := findKey(m, sub); ok {
					delete(m, sk)
				}
			}
		}
	}
}

// valuePathSelector splits "emails[type eq \"work\"]" into the attribute
// and the filter; Microsoft's test collection selects attributes this way.
func valuePathSelector(path string) (attr, expr string, ok bool) {
	open := strings.IndexByte(path, '[')
	if open <= 0 || !strings.HasSuffix(path, "]") {
		return "", "", false
	}
	return path[:open], path[open+1 : len(path)-1], true
}

// copyMatching copies the elements of a multi-valued attribute that match
// a value filter.
func copyMatching(rt *schema.ResourceType, src, dst map[string]any, attr, expr string) {
	key, ok := findKey(src, strings.ToLower(attr))
	if !ok {
		return
	}
	list, ok := src[key].([]any)
	if !ok {
		return
	}
	f, err := filter.Parse(expr)
	if err != nil {
		return
	}
	var kept []any
	for _, e := range list {
		if f.MatchValue(rt, key, e) {
			kept = append(kept, e)
		}
	}
	if len(kept) > 0 {
		dst[key] = kept
	}
}
