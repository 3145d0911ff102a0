package server_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// The benchmarks call the real handler (router, middleware, auth, store
// over sqlite with fsync) in-process, without the network.

func benchRequest(b *testing.B, ts *testServer, method, path string, body []byte, want int) {
	req := ts.newRequest(method, path, body)
	rec := httptest.NewRecorder()
	ts.Handler.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: status %d: %s", method, path, rec.Code, rec.Body)
	}
}

// BenchmarkCreateUser creates users from parallel clients, so that the
// store's group commit shares each fsync between several requests.
func BenchmarkCreateUser(b *testing.B) {
	ts := newInProcessServer(b)
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8) // IdPs send several requests at a time; 8×GOMAXPROCS clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Appendf(nil, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bench%d@example.com","externalId":"%d","active":true,"name":{"givenName":"B","familyName":"%d"},"emails":[{"type":"work","value":"bench%d@example.com","primary":true}]}`, i, i, i, i)
			req := ts.newRequest(http.MethodPost, "/Users", body)
			rec := httptest.NewRecorder()
			ts.Handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusCreated {
				b.Errorf("status %d: %s", rec.Code, rec.Body)
				return
			}
		}
	})
}

// BenchmarkGetByUserNameFilter is Okta's and Entra's lookup before a
// create: GET /Users?filter=userName eq "…", against 10k users.
func BenchmarkGetByUserNameFilter(b *testing.B) {
	const users = 10000
	ts := newInProcessServer(b)
	loadUsers(b, ts, users)
	paths := make([]string, 256)
	for i := range paths {
		paths[i] = "/Users?filter=" + urlq(fmt.Sprintf(`userName eq "LOAD%05d@EXAMPLE.COM"`, (i*7919)%users)) + "&startIndex=1&count=100"
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		req := ts.newRequest(http.MethodGet, paths[i%len(paths)], nil)
		rec := httptest.NewRecorder()
		ts.Handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"totalResults":1`)) {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		i++
	}
}

// BenchmarkGroupMemberPatch adds one member per PATCH to a growing group.
func BenchmarkGroupMemberPatch(b *testing.B) {
	const users = 10000
	ts := newInProcessServer(b)
	ids := loadUsers(b, ts, users)
	r := ts.with(b).serve(http.MethodPost, "/Groups", groupBody("Bench"))
	if r.Status != http.StatusCreated {
		b.Fatal(r)
	}
	path := "/Groups/" + str(r.JSON, "id")
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		// Past the 10k users, alternate removing and re-adding so every op changes the group.
		id := ids[i%users]
		body := fmt.Appendf(nil, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":%q}]}]}`, id)
		if (i/users)%2 == 1 {
			body = fmt.Appendf(nil, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq %q]"}]}`, id)
		}
		benchRequest(b, ts, http.MethodPatch, path, body, http.StatusNoContent)
		i++
	}
}

// loadUsers creates n users through the API, 16 at a time.
func loadUsers(b *testing.B, ts *testServer, n int) []string {
	b.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	var failed atomic.Bool
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			body := fmt.Appendf(nil, `{"userName":"load%05d@example.com","externalId":"e%d","active":true}`, i, i)
			req := ts.newRequest(http.MethodPost, "/Users", body)
			rec := httptest.NewRecorder()
			ts.Handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusCreated {
				failed.Store(true)
				return
			}
			ids[i] = str(decodeResponse(rec.Code, rec.Header(), rec.Body.Bytes()).JSON, "id")
		})
	}
	wg.Wait()
	if failed.Load() {
		b.Fatal("loading users failed")
	}
	return ids
}
