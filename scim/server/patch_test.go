package server_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/scimd/scimd/scim/schema"
)

func TestPatchUser(t *testing.T) {
	ts := newTestServer(t)
	base := func() map[string]any {
		return userBody("patchme@example.com",
			"displayName", "Patch Me",
			"name", map[string]any{"givenName": "Pat", "familyName": "Me"},
			"emails", []any{
				map[string]any{"type": "work", "value": "patchme@example.com", "primary": true},
				map[string]any{"type": "home", "value": "pm@home.net"},
			},
			"title", "Engineer",
			schema.EnterpriseUserURN, map[string]any{"department": "R&D"})
	}
	tests := []struct {
		name  string
		ops   []map[string]any
		check func(t *testing.T, doc map[string]any)
	}{
		{"add attribute", []map[string]any{op("add", "nickName", "patty")}, func(t *testing.T, d map[string]any) {
			want(t, d["nickName"], "patty")
		}},
		{"replace attribute", []map[string]any{op("replace", "displayName", "Patricia")}, func(t *testing.T, d map[string]any) {
			want(t, d["displayName"], "Patricia")
		}},
		{"remove attribute", []map[string]any{op("remove", "title", nil)}, func(t *testing.T, d map[string]any) {
			want(t, d["title"], nil)
		}},
		{"replace sub-attribute", []map[string]any{op("replace", "name.familyName", "You")}, func(t *testing.T, d map[string]any) {
			want(t, d["name"], map[string]any{"givenName": "Pat", "familyName": "You"})
		}},
		{"Okta path-less deactivate", []map[string]any{op("replace", "", map[string]any{"active": false})}, func(t *testing.T, d map[string]any) {
			want(t, d["active"], false)
			want(t, d["displayName"], "Patch Me")
		}},
		{"Entra string boolean", []map[string]any{op("Replace", "active", "False")}, func(t *testing.T, d map[string]any) {
			want(t, d["active"], false)
		}},
		{"path-less replace with dotted and URN keys", []map[string]any{op("replace", "", map[string]any{
			"displayName": "PM", "name.givenName": "Patrick",
			schema.EnterpriseUserURN + ":department": "Ops"})}, func(t *testing.T, d map[string]any) {
			want(t, d["displayName"], "PM")
			want(t, d["name"], map[string]any{"givenName": "Patrick", "familyName": "Me"})
			want(t, d[schema.EnterpriseUserURN], map[string]any{"department": "Ops"})
		}},
		{"value path replace", []map[string]any{op("replace", `emails[type eq "work"].value`, "new@example.com")}, func(t *testing.T, d map[string]any) {
			want(t, d["emails"], []any{
				map[string]any{"type": "work", "value": "new@example.com", "primary": true},
				map[string]any{"type": "home", "value": "pm@home.net"},
			})
		}},
		{"value path remove", []map[string]any{op("remove", `emails[type eq "home"]`, nil)}, func(t *testing.T, d map[string]any) {
			want(t, d["emails"], []any{map[string]any{"type": "work", "value": "patchme@example.com", "primary": true}})
		}},
		{"value path upsert (Entra)", []map[string]any{op("replace", `phoneNumbers[type eq "mobile"].value`, "+1 555")}, func(t *testing.T, d map[string]any) {
			want(t, d["phoneNumbers"], []any{map[string]any{"type": "mobile", "value": "+1 555"}})
		}},
		{"add to multi-valued", []map[string]any{op("add", "emails", []any{map[string]any{"type": "other", "value": "o@x"}})}, func(t *testing.T, d map[string]any) {
			if l, _ := d["emails"].([]any); len(l) != 3 {
				t.Errorf("emails %v, want 3", d["emails"])
			}
		}},
		{"enterprise manager as a string", []map[string]any{op("Add", schema.EnterpriseUserURN+":manager", "mgr-1")}, func(t *testing.T, d map[string]any) {
			want(t, d[schema.EnterpriseUserURN], map[string]any{"department": "R&D", "manager": map[string]any{"value": "mgr-1"}})
		}},
		{"several operations", []map[string]any{op("replace", "title", "Lead"), op("remove", "nickName", nil), op("add", "locale", "en-GB")}, func(t *testing.T, d map[string]any) {
			want(t, d["title"], "Lead")
			want(t, d["locale"], "en-GB")
		}},
		{"rename userName", []map[string]any{op("replace", "userName", "renamed@example.com")}, func(t *testing.T, d map[string]any) {
			want(t, d["userName"], "renamed@example.com")
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := base()
			b["userName"] = "patch" + string(rune('a'+i)) + "@example.com"
			r := expect(t, ts.do(http.MethodPost, "/Users", b), http.StatusCreated)
			id := str(r.JSON, "id")
			p := ts.do(http.MethodPatch, "/Users/"+id, patchBody(tc.ops...))
			expect(t, p, http.StatusNoContent)
			doc := expect(t, ts.do(http.MethodGet, "/Users/"+id, nil), http.StatusOK).JSON
			if tc.name == "rename userName" {
				b["userName"] = "renamed@example.com"
			} else {
				want(t, doc["userName"], b["userName"])
			}
			tc.check(t, doc)
			if str(meta(doc), "version") == str(meta(r.JSON), "version") {
				t.Errorf("version unchanged by a changing PATCH")
			}
			// The same PATCH again is a no-op, except for adds to multi-valued attributes.
			if tc.name != "add to multi-valued" {
				before := ts.commit()
				expect(t, ts.do(http.MethodPatch, "/Users/"+id, patchBody(tc.ops...)), http.StatusNoContent)
				ts.unchanged(t, before)
			}
		})
	}
}

func want(t *testing.T, got, wantV any) {
	t.Helper()
	if fmtAny(got) != fmtAny(wantV) {
		t.Errorf("got %s, want %s", fmtAny(got), fmtAny(wantV))
	}
}

func TestPatchResponse(t *testing.T) {
	ts := newTestServer(t)
	u := ts.createUser("resp@example.com", "displayName", "R")
	id := str(u, "id")

	t.Run("204 by default", func(t *testing.T) {
		r := ts.do(http.MethodPatch, "/Users/"+id, patchBody(op("replace", "displayName", "R2")))
		expect(t, r, http.StatusNoContent)
		if len(r.Body) != 0 || r.Header.Get("ETag") == "" {
			t.Errorf("204 body %q, ETag %q", r.Body, r.Header.Get("ETag"))
		}
	})
	t.Run("200 with attributes", func(t *testing.T) {
		r := ts.do(http.MethodPatch, "/Users/"+id+"?attributes=displayName", patchBody(op("replace", "displayName", "R3")))
		expect(t, r, http.StatusOK)
		if !slices.Equal(sortedKeys(r.JSON), []string{"displayName", "id", "schemas"}) || r.JSON["displayName"] != "R3" {
			t.Errorf("body %s", r.Body)
		}
		if r.Header.Get("ETag") == "" {
			t.Error("no ETag")
		}
	})
	t.Run("200 with excludedAttributes", func(t *testing.T) {
		r := ts.do(http.MethodPatch, "/Users/"+id+"?excludedAttributes=emails", patchBody(op("replace", "displayName", "R4")))
		expect(t, r, http.StatusOK)
		if r.JSON["displayName"] != "R4" || r.JSON["userName"] != "resp@example.com" || meta(r.JSON) == nil {
			t.Errorf("body %s", r.Body)
		}
	})
	t.Run("no-op keeps lastModified and version", func(t *testing.T) {
		before := expect(t, ts.do(http.MethodGet, "/Users/"+id, nil), http.StatusOK)
		commit := ts.commit()
		seq := lastSeq(t, ts)
		for _, body := range []map[string]any{
			patchBody(op("replace", "displayName", "R4")),
			patchBody(op("add", "displayName", "R4")),
			patchBody(op("remove", "nickName", nil)),
			patchBody(op("replace", "", map[string]any{"id": id, "displayName": "R4"})),
			patchBody(),
		} {
			r := ts.do(http.MethodPatch, "/Users/"+id, body)
			expect(t, r, http.StatusNoContent)
			if r.Header.Get("ETag") != before.Header.Get("ETag") {
				t.Errorf("no-op ETag %s, before %s", r.Header.Get("ETag"), before.Header.Get("ETag"))
			}
		}
		r := ts.do(http.MethodPatch, "/Users/"+id+"?attributes=meta", patchBody(op("replace", "displayName", "R4")))
		expect(t, r, http.StatusOK)
		want(t, r.JSON["meta"], before.JSON["meta"])
		ts.unchanged(t, commit)
		if got := lastSeq(t, ts); got != seq {
			t.Errorf("a no-op PATCH was audited: seq %d → %d", seq, got)
		}
	})
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestPatchGroupMembers(t *testing.T) {
	ts := newTestServer(t)
	var u []string
	for _, n := range []string{"gm0", "gm1", "gm2", "gm3"} {
		u = append(u, str(ts.createUser(n), "id"))
	}
	memberList := func(ids ...string) []any {
		out := []any{}
		for _, id := range ids {
			out = append(out, map[string]any{"value": id})
		}
		return out
	}
	tests := []struct {
		name    string
		initial []string
		ops     []map[string]any
		want    []string
	}{
		{"add one", nil, []map[string]any{op("add", "members", memberList(u[0]))}, []string{u[0]}},
		{"add several (Entra)", []string{u[0]}, []map[string]any{op("Add", "members", []any{
			map[string]any{"$ref": nil, "value": u[1]}, map[string]any{"value": u[2]}})}, []string{u[0], u[1], u[2]}},
		{"add existing is idempotent", []string{u[0]}, []map[string]any{op("add", "members", memberList(u[0]))}, []string{u[0]}},
		{"remove by filter (Okta)", []string{u[0], u[1]}, []map[string]any{op("remove", `members[value eq "`+u[0]+`"]`, nil)}, []string{u[1]}},
		{"remove with value array (Entra)", []string{u[0], u[1], u[2]}, []map[string]any{op("Remove", "members", memberList(u[1]))}, []string{u[0], u[2]}},
		{"remove all", []string{u[0], u[1]}, []map[string]any{op("remove", "members", nil)}, []string{}},
		{"replace members", []string{u[0], u[1]}, []map[string]any{op("replace", "members", memberList(u[2], u[3]))}, []string{u[2], u[3]}},
		{"replace members [] (Okta empty push)", []string{u[0]}, []map[string]any{op("replace", "members", []any{})}, []string{}},
		{"remove and add in one request (Okta)", []string{u[0], u[1]}, []map[string]any{
			op("remove", `members[value eq "`+u[0]+`"]`, nil), op("add", "members", memberList(u[3]))}, []string{u[1], u[3]}},
		{"path-less rename keeps members (Okta)", []string{u[0], u[1]}, []map[string]any{
			op("replace", "", map[string]any{"id": "ignored", "displayName": "Renamed"})}, []string{u[0], u[1]}},
		{"unknown member is skipped", []string{u[0]}, []map[string]any{op("add", "members", memberList("no-such-user", u[1]))}, []string{u[0], u[1]}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "pg" + string(rune('a'+i))
			g := ts.createGroup(name, tc.initial...)
			gid := str(g, "id")
			expect(t, ts.do(http.MethodPatch, "/Groups/"+gid, patchBody(tc.ops...)), http.StatusNoContent)
			doc := expect(t, ts.do(http.MethodGet, "/Groups/"+gid, nil), http.StatusOK).JSON
			got := memberIDs(doc)
			slices.Sort(got)
			w := slices.Clone(tc.want)
			slices.Sort(w)
			if !slices.Equal(got, w) {
				t.Errorf("members %v, want %v", got, w)
			}
		})
	}

	t.Run("200 with the members when attributes is given", func(t *testing.T) {
		gid := str(ts.createGroup("withattrs"), "id")
		r := ts.do(http.MethodPatch, "/Groups/"+gid+"?attributes=members", patchBody(op("add", "members", memberList(u[0]))))
		expect(t, r, http.StatusOK)
		if got := memberIDs(r.JSON); !slices.Equal(got, []string{u[0]}) {
			t.Errorf("members in the response %v", got)
		}
	})
	t.Run("no-op member PATCH changes nothing", func(t *testing.T) {
		gid := str(ts.createGroup("noop", u[0]), "id")
		before := ts.commit()
		for _, body := range []map[string]any{
			patchBody(op("add", "members", memberList(u[0]))),
			patchBody(op("remove", `members[value eq "`+u[1]+`"]`, nil)),
			patchBody(op("replace", "members", memberList(u[0]))),
			patchBody(op("replace", "", map[string]any{"displayName": "noop"})),
		} {
			expect(t, ts.do(http.MethodPatch, "/Groups/"+gid, body), http.StatusNoContent)
		}
		ts.unchanged(t, before)
	})
}
