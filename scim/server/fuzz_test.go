package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/scimd/scimd/scim/schema"
)

// checkFuzzResponse fails unless r is a success in ok, or a 4xx SCIM error
// after which nothing was written.
func checkFuzzResponse(t *testing.T, ts *testServer, r *response, before uint64, ok ...int) bool {
	t.Helper()
	for _, s := range ok {
		if r.Status == s {
			return true
		}
	}
	if r.Status < 400 || r.Status >= 500 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	if p := scimErrorProblem(r, -1, "*"); p != "" {
		t.Fatalf("%s: %s", p, r.Body)
	}
	if got := ts.commit(); got != before {
		t.Fatalf("a refused request (%d) changed the store: commit %d → %d", r.Status, before, got)
	}
	return false
}

// FuzzCreateUserBody POSTs arbitrary bytes to /Users. The handler must never
// fail with a 5xx or panic; a refusal is a SCIM error that writes nothing;
// a created user reads back, and PUTting its representation back (what Okta
// does) changes nothing. Created users are deleted again, so every input
// meets the same state.
func FuzzCreateUserBody(f *testing.F) {
	// Seeds (bodies Okta, Entra, OneLogin and Microsoft's test collection
	// send, and malformed ones) are in testdata/fuzz/FuzzCreateUserBody.
	ts := newInProcessServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		ts := ts.with(t)
		before := ts.commit()
		r := ts.serve(http.MethodPost, "/Users", body)
		if !checkFuzzResponse(t, ts, r, before, http.StatusCreated) {
			return
		}
		id := str(r.JSON, "id")
		if id == "" || str(r.JSON, "userName") == "" || r.Header.Get("Location") == "" {
			t.Fatalf("201 without id, userName or Location: %s", r.Body)
		}
		g := ts.serve(http.MethodGet, "/Users/"+id, nil)
		if g.Status != http.StatusOK || string(g.Body) != string(r.Body) {
			t.Fatalf("GET after create: %s\ncreated: %s", g, r.Body)
		}
		// Okta's update: GET, then PUT the whole representation back.
		after := ts.commit()
		p := ts.serve(http.MethodPut, "/Users/"+id, r.Body)
		if p.Status != http.StatusOK {
			t.Fatalf("PUT of the created representation: %s\ncreated: %s", p, r.Body)
		}
		if got := ts.commit(); got != after {
			t.Fatalf("PUT of the unchanged representation wrote: %s\n→ %s", r.Body, p.Body)
		}
		// Delete it again, so that every input meets the same state.
		if d := ts.serve(http.MethodDelete, "/Users/"+id, nil); d.Status != http.StatusNoContent {
			t.Fatalf("DELETE: %s", d)
		}
	})
}

// FuzzPatchBody sends arbitrary PATCH bodies to a user and to a group. The
// handler must never fail with a 5xx or panic; a refusal is a SCIM error
// that writes nothing; a success leaves a valid resource whose version moved
// exactly when something was written. Both resources are reset after each
// input that changed them, so every input sees the same state.
//
// Seeds (the PATCH shapes Okta and Entra send, and malformed bodies) are in
// testdata/fuzz/FuzzPatchBody; MEMBER1, MEMBER2 and USER in an input stand
// for the fixture's ids.
func FuzzPatchBody(f *testing.F) {
	ts := newInProcessServer(f)
	setup := ts.with(f)
	m1 := setup.serve(http.MethodPost, "/Users", userBody("member1@example.com"))
	m2 := setup.serve(http.MethodPost, "/Users", userBody("member2@example.com"))
	if m1.Status != http.StatusCreated || m2.Status != http.StatusCreated {
		f.Fatalf("setup: %s; %s", m1, m2)
	}
	member1, member2 := str(m1.JSON, "id"), str(m2.JSON, "id")
	userDoc := userBody("fuzz@example.com",
		"displayName", "Fuzz",
		"name", map[string]any{"givenName": "F", "familyName": "Uzz"},
		"emails", []any{map[string]any{"type": "work", "value": "fuzz@example.com", "primary": true}, map[string]any{"type": "home", "value": "f@home"}},
		"roles", []any{map[string]any{"value": "reader"}},
		"externalId", "ext-fuzz",
		schema.EnterpriseUserURN, map[string]any{"department": "QA", "manager": map[string]any{"value": member1}})
	groupDoc := groupBody("Fuzzers", member1, member2)
	groupDoc["externalId"] = "ext-g"
	u := setup.serve(http.MethodPost, "/Users", userDoc)
	g := setup.serve(http.MethodPost, "/Groups", groupDoc)
	if u.Status != http.StatusCreated || g.Status != http.StatusCreated {
		f.Fatalf("setup: %s; %s", u, g)
	}
	userID, groupID := str(u.JSON, "id"), str(g.JSON, "id")

	targets := []struct {
		path  string
		reset map[string]any
	}{
		{"/Users/" + userID, userDoc},
		{"/Groups/" + groupID, groupDoc},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ts := ts.with(t)
		// Let inputs name the fixture's members without knowing their ids.
		body = replaceAll(body, "MEMBER1", member1, "MEMBER2", member2, "USER", userID)
		for _, tg := range targets {
			before := ts.commit()
			old := ts.serve(http.MethodGet, tg.path, nil)
			r := ts.serve(http.MethodPatch, tg.path, body)
			if !checkFuzzResponse(t, ts, r, before, http.StatusNoContent) {
				continue
			}
			cur := ts.serve(http.MethodGet, tg.path, nil)
			if cur.Status != http.StatusOK {
				t.Fatalf("GET after PATCH: %s", cur)
			}
			if cur.Header.Get("ETag") != r.Header.Get("ETag") {
				t.Fatalf("PATCH answered ETag %s, GET has %s", r.Header.Get("ETag"), cur.Header.Get("ETag"))
			}
			changed := ts.commit() != before
			if changed == (cur.Header.Get("ETag") == old.Header.Get("ETag")) {
				t.Fatalf("wrote %v, but ETag %s → %s", changed, old.Header.Get("ETag"), cur.Header.Get("ETag"))
			}
			if !changed && string(cur.Body) != string(old.Body) {
				t.Fatalf("representation changed without a write:\n%s\n%s", old.Body, cur.Body)
			}
			if str(cur.JSON, "userName") == "" && str(cur.JSON, "displayName") == "" {
				t.Fatalf("resource lost its name: %s", cur.Body)
			}
			// The stored state is a fixed point: PUTting it back changes nothing.
			commit := ts.commit()
			if p := ts.serve(http.MethodPut, tg.path, cur.Body); p.Status != http.StatusOK || ts.commit() != commit {
				t.Fatalf("PUT of the patched representation: %s (wrote: %v)\npatched: %s", p, ts.commit() != commit, cur.Body)
			}
			if changed {
				if p := ts.serve(http.MethodPut, tg.path, tg.reset); p.Status != http.StatusOK {
					t.Fatalf("reset: %s", p)
				}
			}
		}
	})
}

// replaceAll replaces placeholders in a body.
func replaceAll(body []byte, kv ...string) []byte {
	s := string(body)
	for i := 0; i+1 < len(kv); i += 2 {
		s = strings.ReplaceAll(s, kv[i], kv[i+1])
	}
	return []byte(s)
}
