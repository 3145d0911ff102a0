package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	contentType = "application/scim+json"
	userURN     = "urn:ietf:params:scim:schemas:core:2.0:User"
	groupURN    = "urn:ietf:params:scim:schemas:core:2.0:Group"
	enterURN    = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	patchURN    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	listURN     = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	// maxRetries bounds retries of throttled (429) or unavailable (503)
	// requests.
	maxRetries = 5
)

// client sends SCIM requests to one service provider.
type client struct {
	base  string
	token string
	http  *http.Client
}

func newClient(base, token string, concurrency int) *client {
	tr := &http.Transport{
		Proxy:               nil, // loopback benchmarks: never through a proxy
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        concurrency * 2,
		MaxIdleConnsPerHost: concurrency * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &client{base: base, token: token, http: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
}

// statusError is a response with an unexpected status.
type statusError struct {
	method, path string
	status       int
	body         string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.method, e.path, e.status, e.body)
}

// do sends one request and decodes a JSON answer into out (when not nil).
// It retries 429 and 503 answers after their Retry-After (at most
// maxRetries times). It returns the final status.
func (c *client) do(ctx context.Context, method, path string, body any, out any, want ...int) (int, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return 0, err
		}
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(payload))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Accept", contentType)
		if body != nil {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return resp.StatusCode, err
		}
		if (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) && attempt < maxRetries {
			wait := time.Second
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = min(time.Duration(s)*time.Second, 5*time.Second)
			}
			select {
			case <-ctx.Done():
				return resp.StatusCode, ctx.Err()
			case <-time.After(wait):
			}
			continue
		}
		ok := len(want) == 0 && resp.StatusCode/100 == 2
		for _, w := range want {
			ok = ok || resp.StatusCode == w
		}
		if !ok {
			return resp.StatusCode, &statusError{method: method, path: path, status: resp.StatusCode, body: truncate(string(b), 300)}
		}
		if out != nil && len(b) > 0 && resp.StatusCode/100 == 2 {
			if err := json.Unmarshal(b, out); err != nil {
				return resp.StatusCode, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
			}
		}
		return resp.StatusCode, nil
	}
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// filterQuery is the query string of a list request with a filter.
func filterQuery(attr, op, value string, extra url.Values) string {
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	b, _ := json.Marshal(value)
	q.Set("filter", attr+" "+op+" "+string(b))
	return "?" + q.Encode()
}

// resource is the part of a SCIM resource the simulator reads.
type resource struct {
	ID          string `json:"id"`
	UserName    string `json:"userName"`
	DisplayName string `json:"displayName"`
	Active      *bool  `json:"active"`
	Members     []struct {
		Value string `json:"value"`
	} `json:"members"`
}

// listResponse is a SCIM ListResponse.
type listResponse struct {
	TotalResults int        `json:"totalResults"`
	ItemsPerPage int        `json:"itemsPerPage"`
	StartIndex   int        `json:"startIndex"`
	Resources    []resource `json:"Resources"`
}

// findOne returns the id of the resource at endpoint whose attr equals
// value, or "" when there is none.
func (c *client) findOne(ctx context.Context, endpoint, attr, value string) (string, error) {
	var lr listResponse
	q := filterQuery(attr, "eq", value, url.Values{"attributes": {"id"}})
	if _, err := c.do(ctx, http.MethodGet, endpoint+q, nil, &lr, http.StatusOK); err != nil {
		return "", err
	}
	if len(lr.Resources) == 0 {
		return "", nil
	}
	return lr.Resources[0].ID, nil
}

// listAll pages through every resource at endpoint (at most limit), page
// resources per request, with the given extra query parameters.
func (c *client) listAll(ctx context.Context, endpoint string, extra url.Values, page, limit int) ([]resource, error) {
	var out []resource
	for start := 1; len(out) < limit; {
		q := url.Values{}
		for k, v := range extra {
			q[k] = v
		}
		q.Set("startIndex", strconv.Itoa(start))
		q.Set("count", strconv.Itoa(page))
		var lr listResponse
		if _, err := c.do(ctx, http.MethodGet, endpoint+"?"+q.Encode(), nil, &lr, http.StatusOK); err != nil {
			return nil, err
		}
		out = append(out, lr.Resources...)
		if len(lr.Resources) == 0 || start+len(lr.Resources) > lr.TotalResults {
			break
		}
		start += len(lr.Resources)
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func patchBody(ops ...map[string]any) map[string]any {
	list := make([]any, len(ops))
	for i, o := range ops {
		list[i] = o
	}
	return map[string]any{"schemas": []string{patchURN}, "Operations": list}
}

func memberValues(ids []string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = map[string]any{"value": id}
	}
	return out
}

// defaultMetricsURL is the origin of the SCIM base URL plus /metrics.
func defaultMetricsURL(base string) string {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return "none"
	}
	return u.Scheme + "://" + u.Host + "/metrics"
}
