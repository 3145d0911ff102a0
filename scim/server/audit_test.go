package server_test

import (
	"net/http"
	"testing"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/store"
)

// TestAuditPerWrite: every SCIM write appends exactly one audit event, in
// the same commit, naming the token and the request id; reads, no-ops and
// refused requests append none.
func TestAuditPerWrite(t *testing.T) {
	ts := newTestServer(t)
	u1 := str(ts.createUser("aud1"), "id")
	g := str(ts.createGroup("AuditGroup"), "id")

	var created string
	tests := []struct {
		name       string
		method     string
		path       func() string
		body       any
		status     int
		wantType   string // "" when nothing is audited
		wantTarget func() string
		after      func(r *response)
	}{
		{"create user", http.MethodPost, func() string { return "/Users" }, userBody("aud2"), 201, "scim.user.created", func() string { return created },
			func(r *response) { created = str(r.JSON, "id") }},
		{"replace user", http.MethodPut, func() string { return "/Users/" + created }, userBody("aud2", "title", "T"), 200, "scim.user.replaced", func() string { return created }, nil},
		{"replace user unchanged", http.MethodPut, func() string { return "/Users/" + created }, userBody("aud2", "title", "T"), 200, "", nil, nil},
		{"patch user", http.MethodPatch, func() string { return "/Users/" + created }, patchBody(op("replace", "active", false)), 204, "scim.user.patched", func() string { return created }, nil},
		{"patch user no-op", http.MethodPatch, func() string { return "/Users/" + created }, patchBody(op("replace", "active", false)), 204, "", nil, nil},
		{"add members", http.MethodPatch, func() string { return "/Groups/" + g }, func() any {
			return patchBody(op("add", "members", []any{map[string]any{"value": u1}, map[string]any{"value": created}}))
		}, 204, "scim.group.patched", func() string { return g }, nil},
		{"replace group", http.MethodPut, func() string { return "/Groups/" + g }, groupBody("AuditGroup", u1), 200, "scim.group.replaced", func() string { return g }, nil},
		{"delete user", http.MethodDelete, func() string { return "/Users/" + u1 }, nil, 204, "scim.user.deleted", func() string { return u1 }, nil},
		{"delete group", http.MethodDelete, func() string { return "/Groups/" + g }, nil, 204, "scim.group.deleted", func() string { return g }, nil},
		{"list", http.MethodGet, func() string { return "/Users" }, nil, 200, "", nil, nil},
		{"refused create", http.MethodPost, func() string { return "/Users" }, userBody("AUD2"), 409, "", nil, nil},
		{"refused patch", http.MethodPatch, func() string { return "/Users/" + created }, patchBody(op("remove", "userName", nil)), 400, "", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seq := lastSeq(t, ts)
			reqID := "req-" + tc.name
			body := tc.body
			if f, ok := body.(func() any); ok {
				body = f()
			}
			r := ts.do(tc.method, tc.path(), body, withHeader("X-Request-Id", reqID))
			expect(t, r, tc.status)
			// scimd assigns its own request id; the client's stays out
			// of the audit log.
			respID := r.Header.Get("X-Request-Id")
			if len(respID) != 16 || respID == reqID {
				t.Errorf("X-Request-Id %q: want one scimd generated", respID)
			}
			if tc.after != nil {
				tc.after(r)
			}
			ev := ts.auditEvents(t, store.AuditQuery{AfterSeq: seq})
			if tc.wantType == "" {
				if len(ev) != 0 {
					t.Fatalf("%d audit events, want none: %+v", len(ev), ev)
				}
				return
			}
			if len(ev) != 1 {
				t.Fatalf("%d audit events, want 1: %+v", len(ev), ev)
			}
			e := ev[0]
			if e.Type != tc.wantType || e.Target.ID != tc.wantTarget() {
				t.Errorf("event %s on %s, want %s on %s", e.Type, e.Target.ID, tc.wantType, tc.wantTarget())
			}
			if e.Actor != (audit.Actor{Kind: "token", Name: scimTokenName}) {
				t.Errorf("actor %+v", e.Actor)
			}
			if e.RequestID != respID {
				t.Errorf("request id %q, want %q", e.RequestID, respID)
			}
		})
	}

	t.Run("generated request id", func(t *testing.T) {
		seq := lastSeq(t, ts)
		r := expect(t, ts.do(http.MethodPost, "/Users", userBody("aud3")), http.StatusCreated)
		ev := ts.auditEvents(t, store.AuditQuery{AfterSeq: seq})
		if len(ev) != 1 || ev[0].RequestID == "" || ev[0].RequestID != r.Header.Get("X-Request-Id") {
			t.Fatalf("events %+v, response X-Request-Id %q", ev, r.Header.Get("X-Request-Id"))
		}
	})

	t.Run("membership details", func(t *testing.T) {
		a := str(ts.createUser("aud4"), "id")
		gid := str(ts.createGroup("AuditMembers", a), "id")
		seq := lastSeq(t, ts)
		expect(t, ts.do(http.MethodPatch, "/Groups/"+gid, patchBody(
			op("remove", `members[value eq "`+a+`"]`, nil),
			op("add", "members", []any{map[string]any{"value": "ghost"}}))), http.StatusNoContent)
		ev := ts.auditEvents(t, store.AuditQuery{AfterSeq: seq})
		if len(ev) != 1 {
			t.Fatalf("events %+v", ev)
		}
		want(t, ev[0].Details, map[string]any{"membersRemoved": []any{a}, "membersSkipped": []any{"ghost"}})
	})

	t.Run("chain verifies", func(t *testing.T) {
		all := ts.auditEvents(t, store.AuditQuery{})
		v := audit.NewVerifier()
		for _, e := range all {
			if err := v.Next(e); err != nil {
				t.Fatal(err)
			}
		}
		if v.Count() != uint64(len(all)) || all[0].Seq != 1 {
			t.Fatalf("verified %d of %d events", v.Count(), len(all))
		}
	})
}
