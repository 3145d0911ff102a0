package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// binClient drives a daemon started by startDaemon over HTTP.
type binClient struct {
	t    *testing.T
	d    *daemon
	scim string // SCIM token
}

func newBinClient(t *testing.T, d *daemon) *binClient {
	return &binClient{t: t, d: d, scim: d.scimToken("idp")}
}

// do sends a request with token and returns status and body.
func (c *binClient) do(method, path, token string, body any) (int, string) {
	c.t.Helper()
	status, b, err := call(context.Background(), http.DefaultClient, method, c.d.base+path, token, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return status, string(b)
}

// must sends a request and fails the test unless it succeeds; it decodes
// the answer into out when out is not nil.
func (c *binClient) must(method, path, token string, body, out any) string {
	c.t.Helper()
	status, b := c.do(method, path, token, body)
	if status/100 != 2 {
		c.t.Fatalf("%s %s = %d %s", method, path, status, b)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(b), out); err != nil {
			c.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return b
}

func (c *binClient) admin(method, path string, body, out any) string {
	c.t.Helper()
	return c.must(method, path, c.d.admin, body, out)
}

func (c *binClient) createUser(user map[string]any) string {
	c.t.Helper()
	var out struct{ ID string }
	c.must(http.MethodPost, "/scim/v2/Users", c.scim, user, &out)
	return out.ID
}

func (c *binClient) createGroup(name string, members ...string) string {
	c.t.Helper()
	list := []any{}
	for _, m := range members {
		list = append(list, map[string]any{"value": m})
	}
	var out struct{ ID string }
	c.must(http.MethodPost, "/scim/v2/Groups", c.scim, map[string]any{"displayName": name, "members": list}, &out)
	return out.ID
}

// patch applies SCIM PATCH operations to a resource.
func (c *binClient) patch(path string, ops ...map[string]any) {
	c.t.Helper()
	c.must(http.MethodPatch, path, c.scim, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": ops,
	}, nil)
}

// teammate returns GET /api/v1/teammates/{id} as a map (nil when absent).
func (c *binClient) teammate(id string) map[string]any {
	c.t.Helper()
	status, b := c.do(http.MethodGet, "/api/v1/teammates/"+id, c.d.admin, nil)
	if status == http.StatusNotFound {
		return nil
	}
	if status != http.StatusOK {
		c.t.Fatalf("GET teammate %s = %d %s", id, status, b)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(b), &m); err != nil {
		c.t.Fatal(err)
	}
	return m
}

// eventually polls cond every 20 ms until it holds or limit passes, and
// returns how long it took.
func (c *binClient) eventually(limit time.Duration, what string, cond func() bool) time.Duration {
	c.t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			c.t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// metric returns the value of a metric line of /metrics ("" when absent).
func (c *binClient) metric(name string) string {
	c.t.Helper()
	_, body := c.do(http.MethodGet, "/metrics", "", nil)
	for line := range strings.SplitSeq(body, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return rest
		}
	}
	return ""
}

// auditEvents returns the audit events of one type, oldest first.
func (c *binClient) auditEvents(typ string) []map[string]any {
	c.t.Helper()
	var out struct {
		Events []map[string]any `json:"events"`
	}
	c.admin(http.MethodGet, "/api/v1/audit?type="+typ+"&limit=1000", nil, &out)
	return out.Events
}
