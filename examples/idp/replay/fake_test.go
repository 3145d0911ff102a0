package replay

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// fakeSCIM is a deliberately small SCIM service provider used to test the
// harness (not the real server): enough of /Users and /Groups for the
// sequences written in these tests.
type fakeSCIM struct {
	mu       sync.Mutex
	token    string
	nextID   int
	users    map[string]map[string]any
	groups   map[string]map[string]any
	requests []recorded
	// omitMembersInList leaves members out of GET /Groups list responses.
	omitMembersInList bool
	// activeAsString stores active as the string the client sent.
	activeAsString bool
	// keepDeletedInGroups leaves a deleted user's id in groups.
	keepDeletedInGroups bool
}

type recorded struct {
	method, rawPath, rawQuery string
	header                    http.Header
	body                      string
}

func newFake(token string) *fakeSCIM {
	return &fakeSCIM{token: token, users: map[string]map[string]any{}, groups: map[string]map[string]any{}}
}

var filterRE = regexp.MustCompile(`^(userName|displayName) eq "([^"]*)"$`)

func (f *fakeSCIM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	f.requests = append(f.requests, recorded{method: r.Method, rawPath: r.URL.EscapedPath(), rawQuery: r.URL.RawQuery, header: r.Header.Clone(), body: string(body)})
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		writeJSON(w, http.StatusUnauthorized, scimError(401, "bad token"))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/scim/v2/")
	if !ok {
		writeJSON(w, http.StatusNotFound, scimError(404, "no such endpoint"))
		return
	}
	parts := strings.Split(rest, "/")
	var coll map[string]map[string]any
	nameAttr := ""
	switch parts[0] {
	case "Users":
		coll, nameAttr = f.users, "userName"
	case "Groups":
		coll, nameAttr = f.groups, "displayName"
	default:
		writeJSON(w, http.StatusNotFound, scimError(404, "no such endpoint"))
		return
	}
	if len(parts) == 1 {
		switch r.Method {
		case http.MethodGet:
			f.list(w, r, coll, parts[0])
		case http.MethodPost:
			var res map[string]any
			if err := json.Unmarshal(body, &res); err != nil {
				writeJSON(w, http.StatusBadRequest, scimError(400, "bad json"))
				return
			}
			name, _ := res[nameAttr].(string)
			for _, e := range coll {
				if strings.EqualFold(e[nameAttr].(string), name) {
					writeJSON(w, http.StatusConflict, scimError(409, "exists"))
					return
				}
			}
			f.nextID++
			id := fmt.Sprintf("%s-%03d", strings.ToLower(parts[0][:1]), f.nextID)
			res["id"] = id
			if parts[0] == "Users" {
				if _, has := res["active"]; !has {
					res["active"] = true
				}
			} else if res["members"] == nil {
				res["members"] = []any{}
			}
			coll[id] = res
			writeJSON(w, http.StatusCreated, res)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
		return
	}
	id := parts[1]
	res, ok := coll[id]
	if !ok {
		writeJSON(w, http.StatusNotFound, scimError(404, "not found"))
		return
	}
	switch r.Method {
	case http.MethodGet:
		out := res
		if r.URL.Query().Get("excludedAttributes") == "members" {
			out = copyWithout(res, "members")
		}
		writeJSON(w, http.StatusOK, out)
	case http.MethodPut:
		var nr map[string]any
		if err := json.Unmarshal(body, &nr); err != nil {
			writeJSON(w, http.StatusBadRequest, scimError(400, "bad json"))
			return
		}
		nr["id"] = id
		coll[id] = nr
		writeJSON(w, http.StatusOK, nr)
	case http.MethodDelete:
		delete(coll, id)
		if parts[0] == "Users" && !f.keepDeletedInGroups {
			for _, g := range f.groups {
				g["members"] = filterMembers(g["members"], func(v string) bool { return v != id })
			}
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPatch:
		if err := f.patch(res, body); err != nil {
			writeJSON(w, http.StatusBadRequest, scimError(400, err.Error()))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (f *fakeSCIM) list(w http.ResponseWriter, r *http.Request, coll map[string]map[string]any, kind string) {
	q := r.URL.Query()
	var ids []string
	for id, res := range coll {
		if flt := q.Get("filter"); flt != "" {
			m := filterRE.FindStringSubmatch(flt)
			if m == nil {
				writeJSON(w, http.StatusBadRequest, scimError(400, "invalidFilter"))
				return
			}
			v, _ := res[m[1]].(string)
			if !strings.EqualFold(v, m[2]) {
				continue
			}
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	start, count := 1, 1000
	if s := q.Get("startIndex"); s != "" {
		start, _ = strconv.Atoi(s)
	}
	if c := q.Get("count"); c != "" {
		count, _ = strconv.Atoi(c)
	}
	page := []any{}
	for i := start - 1; i >= 0 && i < len(ids) && len(page) < count; i++ {
		res := coll[ids[i]]
		if kind == "Groups" && f.omitMembersInList {
			res = copyWithout(res, "members")
		}
		page = append(page, res)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":      []string{"urn:ietf:params:scim:api:messages:2.0:ListResponse"},
		"totalResults": len(ids),
		"startIndex":   start,
		"itemsPerPage": len(page),
		"Resources":    page,
	})
}

var memberFilterRE = regexp.MustCompile(`^members\[value eq "([^"]*)"\]$`)

// patch applies the few PatchOp shapes the tests send.
func (f *fakeSCIM) patch(res map[string]any, body []byte) error {
	var req struct {
		Operations []struct {
			Op    string          `json:"op"`
			Path  string          `json:"path"`
			Value json.RawMessage `json:"value"`
		}
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return err
	}
	for _, op := range req.Operations {
		switch strings.ToLower(op.Op) + " " + op.Path {
		case "replace active":
			var b any
			if err := json.Unmarshal(op.Value, &b); err != nil {
				return err
			}
			if s, ok := b.(string); ok && !f.activeAsString {
				b = strings.EqualFold(s, "true")
			}
			res["active"] = b
		case "replace displayName":
			var s string
			if err := json.Unmarshal(op.Value, &s); err != nil {
				return err
			}
			res["displayName"] = s
		case "add members":
			var ms []any
			if err := json.Unmarshal(op.Value, &ms); err != nil {
				return err
			}
			cur, _ := res["members"].([]any)
			res["members"] = append(cur, ms...)
		default:
			m := memberFilterRE.FindStringSubmatch(op.Path)
			if strings.ToLower(op.Op) != "remove" || m == nil {
				return fmt.Errorf("unsupported op %s %s", op.Op, op.Path)
			}
			res["members"] = filterMembers(res["members"], func(v string) bool { return v != m[1] })
		}
	}
	return nil
}

func filterMembers(v any, keep func(string) bool) []any {
	out := []any{}
	list, _ := v.([]any)
	for _, m := range list {
		obj, _ := m.(map[string]any)
		if id, _ := obj["value"].(string); keep(id) {
			out = append(out, m)
		}
	}
	return out
}

func copyWithout(m map[string]any, key string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

func scimError(status int, detail string) map[string]any {
	return map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:Error"},
		"status":  strconv.Itoa(status),
		"detail":  detail,
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
