// Package replay loads recorded identity-provider request sequences (the
// examples/idp/<idp>/sequence.json files) and replays them against a SCIM 2.0
// service provider, checking every response status and, at the end, the
// Users and Groups the service provider holds.
//
// A sequence file looks like this:
//
//	{
//	  "idp": "Okta",
//	  "sources": ["https://developer.okta.com/docs/reference/scim/scim-20/"],
//	  "steps": [
//	    {"name": "create alice", "method": "POST", "path": "/Users",
//	     "body": {"userName": "alice@example.com"},
//	     "expectStatus": 201, "capture": {"aliceId": "id"}},
//	    {"name": "add alice", "method": "PATCH", "path": "/Groups/{{admins}}",
//	     "body": {...}, "expectStatus": [200, 204]}
//	  ],
//	  "expect": {
//	    "users":  [{"userName": "alice@example.com", "active": true}],
//	    "groups": [{"displayName": "Intercom Admins", "members": ["alice@example.com"]}]
//	  }
//	}
//
// Paths are relative to the SCIM base URL and written unescaped
// (/Users?filter=userName eq "alice@example.com"); Run percent-encodes them.
// A {{name}} placeholder in a path, header value, body string or expectBody
// string is replaced by the value an earlier step captured under that name.
package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
)

// Sequence is one identity provider's recorded request sequence and the
// state the service provider must hold after replaying it.
type Sequence struct {
	// IdP names the identity provider, e.g. "Okta".
	IdP string `json:"idp"`
	// Sources lists the documents (URLs or owner/repo paths) the request
	// shapes were taken from.
	Sources []string `json:"sources"`
	// Steps are replayed in order; the first failing step stops the replay.
	Steps []Step `json:"steps"`
	// Expect is the complete state after the last step: every User and Group
	// that must exist. Anything else found on the server is a difference.
	Expect State `json:"expect"`
	// AfterStep, when set, runs between steps: the walkthrough waits
	// there until scimd has applied the roles, so every step's effect is
	// in the history it shows (an IdP does not wait, and two steps that
	// cancel each other within milliseconds may leave no change).
	AfterStep func(ctx context.Context) error `json:"-"`
}

// Step is one HTTP request the identity provider sends and what the service
// provider must answer.
type Step struct {
	// Name describes the step; it must be unique within the sequence and is
	// used in error messages.
	Name string `json:"name"`
	// Note optionally says where the request shape comes from or which quirk
	// it exercises.
	Note string `json:"note,omitempty"`
	// Method is GET, POST, PUT, PATCH or DELETE.
	Method string `json:"method"`
	// Path is relative to the SCIM base URL, starts with "/", and may carry
	// an unescaped query string.
	Path string `json:"path"`
	// Headers are sent in addition to Authorization and, for requests with a
	// body, Content-Type: application/scim+json. An empty value removes the
	// header (User-Agent "" sends no User-Agent at all).
	Headers map[string]string `json:"headers,omitempty"`
	// Body is the JSON request body, sent as is after placeholder
	// substitution.
	Body json.RawMessage `json:"body,omitempty"`
	// ExpectStatus lists the acceptable response status codes. In JSON it is
	// an integer or a list of integers.
	ExpectStatus StatusSet `json:"expectStatus"`
	// ExpectBody maps response paths (see Capture) to the JSON value they
	// must hold. A null value means the attribute must be absent or null.
	ExpectBody map[string]any `json:"expectBody,omitempty"`
	// Capture maps a variable name to a path in the JSON response: a
	// top-level attribute ("id") or a dotted path ("Resources.0.id"). The
	// value, which must be a string or a number, is available to later steps
	// as {{name}}.
	Capture map[string]string `json:"capture,omitempty"`
}

// StatusSet is a set of acceptable HTTP status codes. It decodes from a JSON
// integer or a JSON list of integers.
type StatusSet []int

// UnmarshalJSON accepts 201 or [200, 204].
func (s *StatusSet) UnmarshalJSON(data []byte) error {
	var one int
	if err := json.Unmarshal(data, &one); err == nil {
		*s = StatusSet{one}
		return nil
	}
	var many []int
	if err := json.Unmarshal(data, &many); err != nil {
		return fmt.Errorf("expectStatus must be an integer or a list of integers, got %s", data)
	}
	*s = StatusSet(many)
	return nil
}

// MarshalJSON writes a single status as an integer, several as a list.
func (s StatusSet) MarshalJSON() ([]byte, error) {
	if len(s) == 1 {
		return json.Marshal(s[0])
	}
	return json.Marshal([]int(s))
}

// Contains reports whether code is one of the acceptable statuses.
func (s StatusSet) Contains(code int) bool {
	for _, c := range s {
		if c == code {
			return true
		}
	}
	return false
}

// String formats the set for error messages: "201" or "[200 204]".
func (s StatusSet) String() string {
	if len(s) == 1 {
		return fmt.Sprint(s[0])
	}
	return fmt.Sprint([]int(s))
}

// State is the set of Users and Groups a service provider holds.
type State struct {
	Users  []ExpectedUser  `json:"users"`
	Groups []ExpectedGroup `json:"groups"`
}

// ExpectedUser is a User that must exist after the replay.
type ExpectedUser struct {
	// UserName is compared case-insensitively (userName is caseExact false
	// in RFC 7643).
	UserName string `json:"userName"`
	// Active, when set, is the value the User's active attribute must have.
	Active *bool `json:"active,omitempty"`
}

// ExpectedGroup is a Group that must exist after the replay.
type ExpectedGroup struct {
	// DisplayName is compared exactly.
	DisplayName string `json:"displayName"`
	// Members are the userNames of the group's exact members, in any order.
	Members []string `json:"members"`
}

// Load reads a sequence file and checks that it is well formed (see
// Validate). Unknown fields are an error, so a typo cannot silently drop a
// check.
func Load(path string) (*Sequence, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load sequence: %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load sequence %s: %w", path, err)
	}
	return s, nil
}

// Parse decodes a sequence from JSON and validates it.
func Parse(data []byte) (*Sequence, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Sequence
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decode: trailing data after the sequence object")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

var (
	placeholderRE = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_.-]*)\s*\}\}`)
	varNameRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

var validMethods = map[string]bool{
	http.MethodGet: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true,
}

// Validate checks that the sequence can be replayed: it names its IdP and
// sources; every step has a unique name, a known method, a path starting
// with "/" written without percent-escapes, an expected status, a body only
// where the method takes one, and uses only {{variables}} captured by an
// earlier step; the expected state has unique, non-empty names and every
// group member is one of the expected users.
func (s *Sequence) Validate() error {
	var errs []error
	if strings.TrimSpace(s.IdP) == "" {
		errs = append(errs, errors.New(`"idp" is empty`))
	}
	if len(s.Sources) == 0 {
		errs = append(errs, errors.New(`"sources" is empty`))
	}
	if len(s.Steps) == 0 {
		errs = append(errs, errors.New(`"steps" is empty`))
	}
	captured := map[string]bool{}
	names := map[string]bool{}
	for i, st := range s.Steps {
		label := fmt.Sprintf("step %d %q", i+1, st.Name)
		fail := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("%s: %s", label, fmt.Sprintf(format, a...)))
		}
		if strings.TrimSpace(st.Name) == "" {
			fail("name is empty")
		} else if names[st.Name] {
			fail("name is used by an earlier step")
		}
		names[st.Name] = true
		if !validMethods[st.Method] {
			fail("method %q is not GET, POST, PUT, PATCH or DELETE", st.Method)
		}
		if !strings.HasPrefix(st.Path, "/") {
			fail("path %q does not start with /", st.Path)
		}
		if strings.Contains(st.Path, "%") {
			fail("path %q contains %%: write it unescaped, Run encodes it", st.Path)
		}
		if len(st.ExpectStatus) == 0 {
			fail("expectStatus is missing")
		}
		for _, c := range st.ExpectStatus {
			if c < 100 || c > 599 {
				fail("expectStatus %d is not an HTTP status", c)
			}
		}
		hasBody := len(bytes.TrimSpace(st.Body)) > 0 && string(bytes.TrimSpace(st.Body)) != "null"
		if hasBody && (st.Method == http.MethodGet || st.Method == http.MethodDelete) {
			fail("%s request has a body", st.Method)
		}
		if !hasBody && (st.Method == http.MethodPost || st.Method == http.MethodPut || st.Method == http.MethodPatch) {
			fail("%s request has no body", st.Method)
		}
		// Every placeholder must refer to an earlier capture.
		var used []string
		used = append(used, placeholders(st.Path)...)
		for k, v := range st.Headers {
			used = append(used, placeholders(k)...)
			used = append(used, placeholders(v)...)
		}
		if hasBody {
			var body any
			if err := json.Unmarshal(st.Body, &body); err != nil {
				fail("body: %v", err)
			} else {
				used = append(used, placeholdersIn(body)...)
			}
		}
		for _, v := range st.ExpectBody {
			used = append(used, placeholdersIn(v)...)
		}
		for _, name := range used {
			if !captured[name] {
				fail("uses {{%s}}, which no earlier step captures", name)
			}
		}
		for name, path := range st.Capture {
			if !varNameRE.MatchString(name) {
				fail("capture name %q is not an identifier", name)
			}
			if strings.TrimSpace(path) == "" {
				fail("capture %q has an empty path", name)
			}
		}
		if len(st.Capture) > 0 && len(st.ExpectStatus) == 1 && st.ExpectStatus[0] == http.StatusNoContent {
			fail("captures from a response expected to be 204 No Content")
		}
		for name := range st.Capture {
			captured[name] = true
		}
	}
	users := map[string]bool{}
	for i, u := range s.Expect.Users {
		key := strings.ToLower(u.UserName)
		switch {
		case strings.TrimSpace(u.UserName) == "":
			errs = append(errs, fmt.Errorf("expect.users[%d]: userName is empty", i))
		case users[key]:
			errs = append(errs, fmt.Errorf("expect.users[%d]: userName %q is listed twice", i, u.UserName))
		}
		users[key] = true
	}
	groups := map[string]bool{}
	for i, g := range s.Expect.Groups {
		switch {
		case strings.TrimSpace(g.DisplayName) == "":
			errs = append(errs, fmt.Errorf("expect.groups[%d]: displayName is empty", i))
		case groups[g.DisplayName]:
			errs = append(errs, fmt.Errorf("expect.groups[%d]: displayName %q is listed twice", i, g.DisplayName))
		}
		groups[g.DisplayName] = true
		seen := map[string]bool{}
		for _, m := range g.Members {
			key := strings.ToLower(m)
			if !users[key] {
				errs = append(errs, fmt.Errorf("expect.groups[%d] %q: member %q is not in expect.users", i, g.DisplayName, m))
			}
			if seen[key] {
				errs = append(errs, fmt.Errorf("expect.groups[%d] %q: member %q is listed twice", i, g.DisplayName, m))
			}
			seen[key] = true
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid sequence: %w", errors.Join(errs...))
	}
	return nil
}

// placeholders returns the variable names used in s.
func placeholders(s string) []string {
	var names []string
	for _, m := range placeholderRE.FindAllStringSubmatch(s, -1) {
		names = append(names, m[1])
	}
	return names
}

// placeholdersIn returns the variable names used in the strings (values and
// object keys) of a decoded JSON value.
func placeholdersIn(v any) []string {
	var names []string
	switch t := v.(type) {
	case string:
		names = placeholders(t)
	case []any:
		for _, e := range t {
			names = append(names, placeholdersIn(e)...)
		}
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			names = append(names, placeholders(k)...)
			names = append(names, placeholdersIn(t[k])...)
		}
	}
	return names
}

// substitute replaces every {{name}} in s by vars[name].
func substitute(s string, vars map[string]string) (string, error) {
	var missing []string
	out := placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		name := placeholderRE.FindStringSubmatch(m)[1]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("no value captured for {{%s}}", strings.Join(missing, "}}, {{"))
	}
	return out, nil
}

// substituteIn replaces placeholders in every string (values and object
// keys) of a decoded JSON value, returning a new value.
func substituteIn(v any, vars map[string]string) (any, error) {
	switch t := v.(type) {
	case string:
		return substitute(t, vars)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			s, err := substituteIn(e, vars)
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			nk, err := substitute(k, vars)
			if err != nil {
				return nil, err
			}
			s, err := substituteIn(e, vars)
			if err != nil {
				return nil, err
			}
			out[nk] = s
		}
		return out, nil
	default:
		return v, nil
	}
}

// lookup resolves a dotted path in a decoded JSON value. Path segments that
// are decimal integers index arrays. Object keys are matched exactly first,
// then case-insensitively (SCIM attribute names are case-insensitive). A key
// that itself contains dots, such as the enterprise extension URN
// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", is matched by
// joining segments: the shortest run of segments that names a key wins.
func lookup(v any, path string) (any, bool) {
	if path == "" {
		return v, true
	}
	return lookupSegs(v, strings.Split(path, "."))
}

func lookupSegs(v any, segs []string) (any, bool) {
	if len(segs) == 0 {
		return v, true
	}
	switch t := v.(type) {
	case map[string]any:
		for n := 1; n <= len(segs); n++ {
			key := strings.Join(segs[:n], ".")
			if e, ok := objectField(t, key); ok {
				return lookupSegs(e, segs[n:])
			}
		}
		return nil, false
	case []any:
		var i int
		if _, err := fmt.Sscanf(segs[0], "%d", &i); err != nil || fmt.Sprint(i) != segs[0] {
			return nil, false
		}
		if i < 0 || i >= len(t) {
			return nil, false
		}
		return lookupSegs(t[i], segs[1:])
	default:
		return nil, false
	}
}

func objectField(m map[string]any, key string) (any, bool) {
	if e, ok := m[key]; ok {
		return e, true
	}
	for k, e := range m {
		if strings.EqualFold(k, key) {
			return e, true
		}
	}
	return nil, false
}
