package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
)

// listPageSize is the count Run asks for when it pages through /Users and
// /Groups to check the final state. Tests lower it to exercise paging.
var listPageSize = 100

// maxBody bounds how much of a response Run reads.
const maxBody = 16 << 20

// StepError reports the step at which a replay stopped.
type StepError struct {
	// Index is the 1-based position of the step in the sequence.
	Index int
	// Step is the step's name.
	Step string
	// Method and Path are the request as sent (Path after substitution,
	// before encoding).
	Method, Path string
	// Err says what differed.
	Err error
}

// Error names the step, the request and what differed.
func (e *StepError) Error() string {
	return fmt.Sprintf("step %d %q (%s %s): %v", e.Index, e.Step, e.Method, e.Path, e.Err)
}

// Unwrap returns the underlying error.
func (e *StepError) Unwrap() error { return e.Err }

// StateError reports how the service provider's final Users and Groups
// differ from the sequence's expected state.
type StateError struct {
	// Diffs holds one line per difference.
	Diffs []string
}

// Error lists every difference.
func (e *StateError) Error() string {
	return "final state differs from expect:\n  " + strings.Join(e.Diffs, "\n  ")
}

// Run replays the steps against baseURL (e.g.
// http://127.0.0.1:8080/scim/v2) with the bearer token, checking each
// response status, expectBody and captures, then checks Expect by reading
// every page of GET /Users and GET /Groups. The service provider must start
// empty, since any User or Group not in Expect is reported.
//
// A failing step is returned as a *StepError; a final state that differs as
// a *StateError. A nil client means http.DefaultClient.
func (s *Sequence) Run(ctx context.Context, client *http.Client, baseURL, token string) error {
	if client == nil {
		client = http.DefaultClient
	}
	r := &runner{client: client, base: strings.TrimRight(baseURL, "/"), token: token}
	vars := map[string]string{}
	for i, st := range s.Steps {
		if i > 0 && s.AfterStep != nil {
			if err := s.AfterStep(ctx); err != nil {
				return fmt.Errorf("replay %s: after step %d: %w", s.IdP, i, err)
			}
		}
		if err := r.step(ctx, st, vars); err != nil {
			var se *StepError
			if errors.As(err, &se) {
				se.Index, se.Step = i+1, st.Name
				return fmt.Errorf("replay %s: %w", s.IdP, se)
			}
			return fmt.Errorf("replay %s: %w", s.IdP, &StepError{Index: i + 1, Step: st.Name, Method: st.Method, Path: st.Path, Err: err})
		}
	}
	if err := r.checkState(ctx, s.Expect); err != nil {
		return fmt.Errorf("replay %s: %w", s.IdP, err)
	}
	return nil
}

type runner struct {
	client *http.Client
	base   string
	token  string
}

// response is one HTTP exchange's outcome.
type response struct {
	status int
	body   []byte
}

func (r *runner) step(ctx context.Context, st Step, vars map[string]string) error {
	path, err := substitute(st.Path, vars)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		return &StepError{Method: st.Method, Path: path, Err: err}
	}
	var body []byte
	if b := bytes.TrimSpace(st.Body); len(b) > 0 && string(b) != "null" {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return fail(fmt.Errorf("body: %w", err))
		}
		if v, err = substituteIn(v, vars); err != nil {
			return fail(fmt.Errorf("body: %w", err))
		}
		if body, err = json.Marshal(v); err != nil {
			return fail(fmt.Errorf("body: %w", err))
		}
	}
	headers := map[string]string{}
	for k, v := range st.Headers {
		if headers[k], err = substitute(v, vars); err != nil {
			return fail(fmt.Errorf("header %s: %w", k, err))
		}
	}
	resp, err := r.do(ctx, st.Method, path, headers, body)
	if err != nil {
		return fail(err)
	}
	if !st.ExpectStatus.Contains(resp.status) {
		return fail(fmt.Errorf("status %d, want %s; response: %s", resp.status, st.ExpectStatus, snippet(resp.body)))
	}
	if len(st.ExpectBody) == 0 && len(st.Capture) == 0 {
		return nil
	}
	var doc any
	if err := json.Unmarshal(resp.body, &doc); err != nil {
		return fail(fmt.Errorf("response is not JSON (%v): %s", err, snippet(resp.body)))
	}
	for _, p := range sortedKeys(st.ExpectBody) {
		want, err := substituteIn(st.ExpectBody[p], vars)
		if err != nil {
			return fail(fmt.Errorf("expectBody %s: %w", p, err))
		}
		got, ok := lookup(doc, p)
		if want == nil {
			if ok && got != nil {
				return fail(fmt.Errorf("response %s = %s, want it absent", p, show(got)))
			}
			continue
		}
		if !ok {
			return fail(fmt.Errorf("response has no %s, want %s; response: %s", p, show(want), snippet(resp.body)))
		}
		if !reflect.DeepEqual(normalize(got), normalize(want)) {
			return fail(fmt.Errorf("response %s = %s, want %s", p, show(got), show(want)))
		}
	}
	for _, name := range sortedKeys(st.Capture) {
		p := st.Capture[name]
		v, ok := lookup(doc, p)
		if !ok {
			return fail(fmt.Errorf("capture %s: response has no %s: %s", name, p, snippet(resp.body)))
		}
		switch t := v.(type) {
		case string:
			vars[name] = t
		case float64:
			vars[name] = fmt.Sprint(t)
		default:
			return fail(fmt.Errorf("capture %s: %s is %s, not a string or number", name, p, show(v)))
		}
	}
	return nil
}

// do sends one request. path is relative to the base URL and unescaped.
func (r *runner) do(ctx context.Context, method, path string, headers map[string]string, body []byte) (*response, error) {
	target, err := r.url(path)
	if err != nil {
		return nil, err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/scim+json")
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for k, v := range headers {
		switch {
		case v != "":
			req.Header.Set(k, v)
		case http.CanonicalHeaderKey(k) == "User-Agent":
			// net/http sends no User-Agent when it is set to "".
			req.Header.Set(k, "")
		default:
			req.Header.Del(k)
		}
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	return &response{status: resp.StatusCode, body: data}, nil
}

// url joins the base URL and an unescaped relative path with an optional
// query. Query parameters are split on "&" and "="; values are
// percent-encoded with spaces as %20, as identity providers send them.
func (r *runner) url(path string) (string, error) {
	p, q, hasQuery := strings.Cut(path, "?")
	u := (&url.URL{Path: p}).EscapedPath()
	if !hasQuery {
		return r.base + u, nil
	}
	var parts []string
	for _, kv := range strings.Split(q, "&") {
		if kv == "" {
			continue
		}
		k, v, hasValue := strings.Cut(kv, "=")
		if k == "" {
			return "", fmt.Errorf("query %q has a parameter without a name", q)
		}
		if hasValue {
			parts = append(parts, queryEscape(k)+"="+queryEscape(v))
		} else {
			parts = append(parts, queryEscape(k))
		}
	}
	if len(parts) == 0 {
		return r.base + u, nil
	}
	return r.base + u + "?" + strings.Join(parts, "&"), nil
}

func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// checkState compares the server's Users and Groups with want.
func (r *runner) checkState(ctx context.Context, want State) error {
	users, err := r.listAll(ctx, "/Users")
	if err != nil {
		return err
	}
	groups, err := r.listAll(ctx, "/Groups")
	if err != nil {
		return err
	}
	var diffs []string
	diff := func(format string, a ...any) { diffs = append(diffs, fmt.Sprintf(format, a...)) }

	// Users, keyed by lower-cased userName.
	userNameByID := map[string]string{}
	got := map[string]map[string]any{}
	for _, u := range users {
		id, _ := u["id"].(string)
		name, _ := u["userName"].(string)
		if id == "" || name == "" {
			diff("a User without id or userName: %s", show(u))
			continue
		}
		userNameByID[id] = name
		key := strings.ToLower(name)
		if _, dup := got[key]; dup {
			diff("userName %q is held by more than one User", name)
		}
		got[key] = u
	}
	wantUsers := map[string]bool{}
	for _, w := range want.Users {
		key := strings.ToLower(w.UserName)
		wantUsers[key] = true
		u, ok := got[key]
		if !ok {
			diff("user %q is missing", w.UserName)
			continue
		}
		if w.Active != nil {
			a, present := u["active"]
			if b, isBool := a.(bool); !present || !isBool || b != *w.Active {
				if !present {
					diff("user %q: active is absent, want %t", w.UserName, *w.Active)
				} else {
					diff("user %q: active = %s, want %t", w.UserName, show(a), *w.Active)
				}
			}
		}
	}
	for _, key := range sortedKeys(got) {
		if !wantUsers[key] {
			name, _ := got[key]["userName"].(string)
			diff("user %q exists but is not expected (it should have been deleted or never created)", name)
		}
	}

	// Groups, keyed by displayName.
	gotGroups := map[string]map[string]any{}
	for _, g := range groups {
		name, _ := g["displayName"].(string)
		id, _ := g["id"].(string)
		if id == "" || name == "" {
			diff("a Group without id or displayName: %s", show(g))
			continue
		}
		if _, dup := gotGroups[name]; dup {
			diff("displayName %q is held by more than one Group", name)
		}
		gotGroups[name] = g
	}
	wantGroups := map[string]bool{}
	for _, w := range want.Groups {
		wantGroups[w.DisplayName] = true
		g, ok := gotGroups[w.DisplayName]
		if !ok {
			diff("group %q is missing", w.DisplayName)
			continue
		}
		if _, has := g["members"]; !has {
			// Some servers leave members out of list responses; read the
			// group itself.
			id, _ := g["id"].(string)
			full, err := r.get(ctx, "/Groups/"+id)
			if err != nil {
				return err
			}
			g = full
		}
		members, bad := memberNames(g["members"], userNameByID)
		for _, b := range bad {
			diff("group %q: %s", w.DisplayName, b)
		}
		wantMembers := make([]string, len(w.Members))
		for i, m := range w.Members {
			wantMembers[i] = strings.ToLower(m)
		}
		sort.Strings(wantMembers)
		if !reflect.DeepEqual(members, wantMembers) {
			diff("group %q: members %v, want %v", w.DisplayName, members, wantMembers)
		}
	}
	for _, name := range sortedKeys(gotGroups) {
		if !wantGroups[name] {
			diff("group %q exists but is not expected", name)
		}
	}
	if len(diffs) > 0 {
		return &StateError{Diffs: diffs}
	}
	return nil
}

// memberNames maps a group's members attribute to sorted, lower-cased
// userNames; members that are not known Users are reported in bad.
func memberNames(v any, userNameByID map[string]string) (names []string, bad []string) {
	names = []string{}
	if v == nil {
		return names, nil
	}
	list, ok := v.([]any)
	if !ok {
		return names, []string{fmt.Sprintf("members is %s, not a list", show(v))}
	}
	for _, m := range list {
		obj, _ := m.(map[string]any)
		id, _ := obj["value"].(string)
		if id == "" {
			bad = append(bad, fmt.Sprintf("member without a value: %s", show(m)))
			continue
		}
		name, ok := userNameByID[id]
		if !ok {
			bad = append(bad, fmt.Sprintf("member %q is not a User on the server", id))
			continue
		}
		names = append(names, strings.ToLower(name))
	}
	sort.Strings(names)
	return names, bad
}

// listResponse is the part of a SCIM ListResponse Run reads.
type listResponse struct {
	TotalResults int              `json:"totalResults"`
	Resources    []map[string]any `json:"Resources"`
}

// listAll reads every page of a resource collection.
func (r *runner) listAll(ctx context.Context, path string) ([]map[string]any, error) {
	var all []map[string]any
	start := 1
	for page := 0; page < 10000; page++ {
		p := fmt.Sprintf("%s?startIndex=%d&count=%d", path, start, listPageSize)
		resp, err := r.do(ctx, http.MethodGet, p, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("final state: GET %s: %w", p, err)
		}
		if resp.status != http.StatusOK {
			return nil, fmt.Errorf("final state: GET %s: status %d, want 200; response: %s", p, resp.status, snippet(resp.body))
		}
		var lr listResponse
		if err := json.Unmarshal(resp.body, &lr); err != nil {
			return nil, fmt.Errorf("final state: GET %s: not a ListResponse (%v): %s", p, err, snippet(resp.body))
		}
		all = append(all, lr.Resources...)
		if len(lr.Resources) == 0 || len(all) >= lr.TotalResults {
			return all, nil
		}
		start += len(lr.Resources)
	}
	return nil, fmt.Errorf("final state: GET %s: paging did not end", path)
}

// get reads one resource.
func (r *runner) get(ctx context.Context, path string) (map[string]any, error) {
	resp, err := r.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("final state: GET %s: %w", path, err)
	}
	if resp.status != http.StatusOK {
		return nil, fmt.Errorf("final state: GET %s: status %d, want 200; response: %s", path, resp.status, snippet(resp.body))
	}
	var m map[string]any
	if err := json.Unmarshal(resp.body, &m); err != nil {
		return nil, fmt.Errorf("final state: GET %s: %w", path, err)
	}
	return m, nil
}

// normalize round-trips a value through JSON so that numbers from the
// sequence file and from the response compare equal.
func normalize(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return v
	}
	return out
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return snippet(b)
}

func snippet(b []byte) string {
	const max = 400
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(empty)"
	}
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
