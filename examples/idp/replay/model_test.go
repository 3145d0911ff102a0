package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestExampleSequencesAreSelfConsistent replays every example sequence
// against modelSP, a lenient model of the behaviour the sequences document
// (IdP quirks normalised the way the research notes recommend). It checks the
// sequence files — that each expectBody and each final expect follows from
// the steps — not scimd, whose replay test runs the same files against the
// real server.
func TestExampleSequencesAreSelfConsistent(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "*", "sequence.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f)), func(t *testing.T) {
			s, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			m := &modelSP{token: testToken, users: map[string]map[string]any{}, groups: map[string]map[string]any{}}
			srv := httptest.NewServer(m)
			defer srv.Close()
			if err := s.Run(context.Background(), srv.Client(), srv.URL+"/scim/v2", testToken); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// modelSP is an in-memory SCIM service provider that accepts the IdP request
// shapes of the example sequences.
type modelSP struct {
	mu     sync.Mutex
	token  string
	seq    int
	users  map[string]map[string]any
	groups map[string]map[string]any
}

const entURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

var (
	eqFilterRE    = regexp.MustCompile(`^(\w+) eq "([^"]*)"$`)
	valuePathRE   = regexp.MustCompile(`^(\w+)\[(\w+) eq "([^"]*)"\](?:\.(\w+))?$`)
	errBadRequest = fmt.Errorf("bad request")
)

func (m *modelSP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+m.token {
		writeJSON(w, 401, scimError(401, "unauthorized"))
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, "/scim/v2/")
	parts := strings.Split(rest, "/")
	body, _ := io.ReadAll(r.Body)
	var coll map[string]map[string]any
	switch parts[0] {
	case "Users":
		coll = m.users
	case "Groups":
		coll = m.groups
	case "Schemas", "ServiceProviderConfig", "ResourceTypes":
		writeJSON(w, 200, map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:ListResponse"}, "totalResults": 0, "Resources": []any{}})
		return
	default:
		writeJSON(w, 404, scimError(404, "no such endpoint"))
		return
	}
	isUser := parts[0] == "Users"
	exclude := r.URL.Query().Get("excludedAttributes") == "members"
	if len(parts) == 1 {
		switch r.Method {
		case http.MethodGet:
			m.list(w, r, coll, exclude)
		case http.MethodPost:
			res, err := decodeResource(body, isUser)
			if err != nil {
				writeJSON(w, 400, scimError(400, err.Error()))
				return
			}
			key := nameOf(res, isUser)
			for _, e := range coll {
				if strings.EqualFold(nameOf(e, isUser), key) {
					writeJSON(w, 409, scimError(409, "uniqueness"))
					return
				}
			}
			m.seq++
			res["id"] = fmt.Sprintf("%s%04d", strings.ToLower(parts[0][:1]), m.seq)
			res["_seq"] = m.seq
			coll[res["id"].(string)] = res
			writeJSON(w, 201, public(res, false))
		default:
			writeJSON(w, 405, scimError(405, "method not allowed"))
		}
		return
	}
	id := parts[1]
	res, ok := coll[id]
	if !ok {
		writeJSON(w, 404, scimError(404, "not found"))
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, 200, public(res, exclude))
	case http.MethodPut:
		nr, err := decodeResource(body, isUser)
		if err != nil {
			writeJSON(w, 400, scimError(400, err.Error()))
			return
		}
		nr["id"], nr["_seq"] = id, res["_seq"]
		coll[id] = nr
		writeJSON(w, 200, public(nr, false))
	case http.MethodPatch:
		if err := applyPatch(res, body); err != nil {
			writeJSON(w, 400, scimError(400, err.Error()))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		delete(coll, id)
		if isUser {
			for _, g := range m.groups {
				g["members"] = filterMembers(g["members"], func(v string) bool { return v != id })
			}
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, 405, scimError(405, "method not allowed"))
	}
}

func (m *modelSP) list(w http.ResponseWriter, r *http.Request, coll map[string]map[string]any, exclude bool) {
	q := r.URL.Query()
	var match []map[string]any
	for _, res := range coll {
		if f := q.Get("filter"); f != "" {
			fm := eqFilterRE.FindStringSubmatch(f)
			if fm == nil {
				writeJSON(w, 400, scimError(400, "invalidFilter"))
				return
			}
			v, _ := objectField(res, fm[1])
			if s, _ := v.(string); !strings.EqualFold(s, fm[2]) {
				continue
			}
		}
		match = append(match, res)
	}
	// Stable order: creation order.
	for i := 1; i < len(match); i++ {
		for j := i; j > 0 && match[j]["_seq"].(int) < match[j-1]["_seq"].(int); j-- {
			match[j], match[j-1] = match[j-1], match[j]
		}
	}
	start, count := 1, 100
	if s := q.Get("startIndex"); s != "" {
		start, _ = strconv.Atoi(s)
	}
	if c := q.Get("count"); c != "" {
		count, _ = strconv.Atoi(c)
	}
	page := []any{}
	for i := start - 1; i >= 0 && i < len(match) && len(page) < count; i++ {
		page = append(page, public(match[i], exclude))
	}
	writeJSON(w, 200, map[string]any{
		"schemas":      []string{"urn:ietf:params:scim:api:messages:2.0:ListResponse"},
		"totalResults": len(match), "startIndex": start, "itemsPerPage": len(page), "Resources": page,
	})
}

func nameOf(res map[string]any, isUser bool) string {
	if isUser {
		s, _ := res["userName"].(string)
		return s
	}
	s, _ := res["displayName"].(string)
	return s
}

// public returns the resource as served: without internal keys, and without
// members when excluded.
func public(res map[string]any, excludeMembers bool) map[string]any {
	out := map[string]any{}
	for k, v := range res {
		if strings.HasPrefix(k, "_") || (excludeMembers && k == "members") {
			continue
		}
		out[k] = v
	}
	return out
}

// decodeResource reads a POST or PUT body, coercing string booleans and
// dropping client-sent id, meta and password.
func decodeResource(body []byte, isUser bool) (map[string]any, error) {
	var res map[string]any
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, err
	}
	delete(res, "id")
	delete(res, "meta")
	delete(res, "password")
	delete(res, "groups")
	if isUser {
		if res["userName"] == nil {
			return nil, errBadRequest
		}
		a, err := toBool(res["active"], true)
		if err != nil {
			return nil, err
		}
		res["active"] = a
		if ext, ok := res[entURN].(map[string]any); ok {
			if s, ok := ext["manager"].(string); ok {
				ext["manager"] = map[string]any{"value": s}
			}
		}
	} else if res["members"] == nil {
		res["members"] = []any{}
	}
	return res, nil
}

func toBool(v any, dflt bool) (bool, error) {
	switch t := v.(type) {
	case nil:
		return dflt, nil
	case bool:
		return t, nil
	case string:
		switch strings.ToLower(t) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, fmt.Errorf("not a boolean: %v", v)
}

// applyPatch applies a PatchOp leniently: ops in any case, Entra's
// value-array member removal as a targeted removal, path-less values with
// dotted and URN-qualified keys, filtered paths that upsert, manager as a
// bare string.
func applyPatch(res map[string]any, body []byte) error {
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		return err
	}
	opsV, _ := objectField(req, "Operations")
	ops, _ := opsV.([]any)
	for _, o := range ops {
		op, _ := o.(map[string]any)
		name, _ := op["op"].(string)
		path, _ := op["path"].(string)
		value := op["value"]
		if err := applyOp(res, strings.ToLower(name), path, value); err != nil {
			return err
		}
	}
	return nil
}

func applyOp(res map[string]any, op, path string, value any) error {
	if path == "" {
		obj, ok := value.(map[string]any)
		if !ok || op == "remove" {
			return errBadRequest
		}
		for k, v := range obj {
			if k == "id" || k == "schemas" || k == "meta" {
				continue
			}
			if err := applyOp(res, op, k, v); err != nil {
				return err
			}
		}
		return nil
	}
	if m := valuePathRE.FindStringSubmatch(path); m != nil {
		attr, key, want, sub := m[1], m[2], m[3], m[4]
		list, _ := res[attr].([]any)
		if op == "remove" && sub == "" {
			res[attr] = filterList(list, func(e map[string]any) bool { return e[key] != want })
			return nil
		}
		for _, e := range list {
			if obj, _ := e.(map[string]any); obj[key] == want {
				obj[sub] = value
				return nil
			}
		}
		res[attr] = append(list, map[string]any{key: want, sub: value})
		return nil
	}
	if strings.EqualFold(path, "members") {
		vals, _ := value.([]any)
		cur, _ := res["members"].([]any)
		switch op {
		case "replace":
			res["members"] = vals
		case "add":
			for _, v := range vals {
				id, _ := v.(map[string]any)["value"].(string)
				if len(filterMembers(cur, func(x string) bool { return x == id })) == 0 {
					cur = append(cur, v)
				}
			}
			res["members"] = cur
		case "remove":
			if value == nil {
				res["members"] = []any{}
				return nil
			}
			drop := map[string]bool{}
			for _, v := range vals {
				id, _ := v.(map[string]any)["value"].(string)
				drop[id] = true
			}
			res["members"] = filterMembers(cur, func(x string) bool { return !drop[x] })
		default:
			return errBadRequest
		}
		return nil
	}
	target, segs := res, []string(nil)
	if strings.HasPrefix(path, "urn:") {
		i := strings.LastIndex(path, ":")
		ext, _ := res[path[:i]].(map[string]any)
		if ext == nil {
			ext = map[string]any{}
			res[path[:i]] = ext
		}
		target, segs = ext, strings.Split(path[i+1:], ".")
		if segs[0] == "manager" {
			if s, ok := value.(string); ok {
				value = map[string]any{"value": s}
			}
		}
	} else {
		segs = strings.Split(path, ".")
	}
	if strings.EqualFold(path, "active") {
		b, err := toBool(value, true)
		if err != nil {
			return err
		}
		value = b
	}
	for _, s := range segs[:len(segs)-1] {
		next, _ := target[s].(map[string]any)
		if next == nil {
			next = map[string]any{}
			target[s] = next
		}
		target = next
	}
	last := segs[len(segs)-1]
	if op == "remove" {
		delete(target, last)
	} else {
		target[last] = value
	}
	return nil
}

func filterList(list []any, keep func(map[string]any) bool) []any {
	out := []any{}
	for _, e := range list {
		if obj, _ := e.(map[string]any); keep(obj) {
			out = append(out, e)
		}
	}
	return out
}
