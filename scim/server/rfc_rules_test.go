package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestMultiValuedPrimaryAndDuplicates: RFC 7643 §2.4. A POST or PUT with
// two primary values is refused with 400 invalidValue; in a PATCH the value
// written last as primary wins and the others are cleared (RFC 7644
// §3.5.2); a duplicate (type, value) pair is kept once.
func TestMultiValuedPrimaryAndDuplicates(t *testing.T) {
	ts := newTestServer(t)
	two := []any{
		map[string]any{"value": "a@example.com", "type": "work", "primary": true},
		map[string]any{"value": "b@example.com", "type": "home", "primary": true},
	}
	before := ts.commit()
	checkSCIMError(t, ts.do(http.MethodPost, "/Users", userBody("two@example.com", "emails", two)), http.StatusBadRequest, "invalidValue")
	ts.unchanged(t, before)

	u := ts.createUser("one@example.com", "emails", []any{
		map[string]any{"value": "a@example.com", "type": "work", "primary": true},
		map[string]any{"value": "A@example.com", "type": "Work"},
		map[string]any{"value": "b@example.com", "type": "home"},
	})
	if got := emailsOf(u); fmt.Sprint(got) != "[a@example.com/work/true b@example.com/home/false]" {
		t.Fatalf("emails after POST = %v, want the duplicate dropped", got)
	}
	id := str(u, "id")
	before = ts.commit()
	checkSCIMError(t, ts.do(http.MethodPut, "/Users/"+id, userBody("one@example.com", "emails", two)), http.StatusBadRequest, "invalidValue")
	ts.unchanged(t, before)

	expect(t, ts.do(http.MethodPatch, "/Users/"+id, patchBody(op("replace", `emails[value eq "b@example.com"].primary`, true))), http.StatusNoContent)
	got := expect(t, ts.do(http.MethodGet, "/Users/"+id, nil), http.StatusOK).JSON
	if fmt.Sprint(emailsOf(got)) != "[a@example.com/work/false b@example.com/home/true]" {
		t.Fatalf("emails after PATCH = %v, want only b primary", emailsOf(got))
	}
	expect(t, ts.do(http.MethodPatch, "/Users/"+id, patchBody(op("add", "emails", []any{
		map[string]any{"value": "c@example.com", "type": "other", "primary": true},
		map[string]any{"value": "d@example.com", "type": "other", "primary": true},
		map[string]any{"value": "B@EXAMPLE.COM", "type": "home"},
	}))), http.StatusNoContent)
	got = expect(t, ts.do(http.MethodGet, "/Users/"+id, nil), http.StatusOK).JSON
	if fmt.Sprint(emailsOf(got)) != "[a@example.com/work/false b@example.com/home/false c@example.com/other/false d@example.com/other/true]" {
		t.Fatalf("emails after PATCH add = %v, want one primary and no duplicate", emailsOf(got))
	}
}

func emailsOf(doc map[string]any) []string {
	var out []string
	list, _ := doc["emails"].([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		p, _ := m["primary"].(bool)
		out = append(out, fmt.Sprintf("%s/%s/%v", str(m, "value"), str(m, "type"), p))
	}
	return out
}

// TestIdentifiersThatCannotBeConfused: invalid UTF-8, escaped lone
// surrogates and control characters are refused; lengths are bounded;
// userName and displayName are unique on their trimmed, NFKC, case-folded
// form while the value is returned as sent.
func TestIdentifiersThatCannotBeConfused(t *testing.T) {
	ts := newTestServer(t)
	before := ts.commit()
	for name, body := range map[string]string{
		"invalid UTF-8":      "{\"userName\":\"a\xffb@example.com\"}",
		"lone surrogate":     `{"userName":"a\ud800b@example.com"}`,
		"lone low surrogate": `{"userName":"a\udc00@example.com"}`,
		"NUL":                `{"userName":"a\u0000b@example.com"}`,
		"newline in name":    `{"userName":"a\nb@example.com"}`,
		"DEL":                `{"userName":"a\u007fb@example.com"}`,
		"control in title":   `{"userName":"c@example.com","title":"x\u0007"}`,
		"externalId control": `{"userName":"c@example.com","externalId":"x\u0001"}`,
		"long userName":      `{"userName":"` + strings.Repeat("a", 513) + `"}`,
		"long title":         `{"userName":"c@example.com","title":"` + strings.Repeat("a", 16385) + `"}`,
		"too many emails":    `{"userName":"c@example.com","emails":[` + strings.TrimSuffix(strings.Repeat(`{"value":"x"},`, 1001), ",") + `]}`,
	} {
		t.Run(name, func(t *testing.T) {
			checkSCIMError(t, ts.with(t).do(http.MethodPost, "/Users", body), http.StatusBadRequest, "invalidValue")
		})
	}
	t.Run("group member control", func(t *testing.T) {
		checkSCIMError(t, ts.with(t).do(http.MethodPost, "/Groups", `{"displayName":"g","members":[{"value":"x\u0000"}]}`), http.StatusBadRequest, "invalidValue")
	})
	t.Run("patch lone surrogate", func(t *testing.T) {
		u := ts.with(t).createUser("p@example.com")
		b := ts.commit()
		checkSCIMError(t, ts.with(t).do(http.MethodPatch, "/Users/"+str(u, "id"),
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"title","value":"\udfff"}]}`),
			http.StatusBadRequest, "invalidValue")
		ts.unchanged(t, b)
		before = ts.commit()
	})
	ts.unchanged(t, before)
	// A paired surrogate is a valid character.
	u := expect(t, ts.do(http.MethodPost, "/Users", `{"userName":"emoji\ud83d\ude00@example.com","addresses":[{"formatted":"1 Main St\nTown"}]}`), http.StatusCreated).JSON
	if str(u, "userName") != "emoji😀@example.com" {
		t.Fatalf("userName %q", str(u, "userName"))
	}

	first := ts.createUser("José@example.com") // NFC é
	for _, dup := range []string{
		"José@example.com ",      // trailing space
		" jOSÉ@EXAMPLE.COM",      // case, leading space
		"Jose\u0301@example.com", // NFD é
		"Ｊｏｓé@example.com",       // fullwidth letters
	} {
		t.Run("duplicate "+dup, func(t *testing.T) {
			checkSCIMError(t, ts.with(t).do(http.MethodPost, "/Users", userBody(dup)), http.StatusConflict, "uniqueness")
		})
	}
	if got := str(expect(t, ts.do(http.MethodGet, "/Users/"+str(first, "id"), nil), http.StatusOK).JSON, "userName"); got != "José@example.com" {
		t.Fatalf("userName returned as %q, want it as sent", got)
	}
	// Renaming to a confusable form of itself is allowed and kept as sent.
	r := expect(t, ts.do(http.MethodPut, "/Users/"+str(first, "id"), userBody("JOSE\u0301@example.com")), http.StatusOK).JSON
	if str(r, "userName") != "JOSE\u0301@example.com" {
		t.Fatalf("userName after PUT %q", str(r, "userName"))
	}
	ts.createGroup("Engineering")
	checkSCIMError(t, ts.do(http.MethodPost, "/Groups", groupBody("engineering ")), http.StatusConflict, "uniqueness")
	checkSCIMError(t, ts.do(http.MethodPost, "/Groups", groupBody("ＥＮＧＩＮＥＥＲＩＮＧ")), http.StatusConflict, "uniqueness")
}

// TestSortBy: sortBy sorts (RFC 7644 §3.4.2.3) and is advertised; an
// unknown attribute or sortOrder is refused.
func TestSortBy(t *testing.T) {
	ts := newTestServer(t)
	cfg := expect(t, ts.do(http.MethodGet, "/ServiceProviderConfig", nil), http.StatusOK).JSON
	if sort, _ := cfg["sort"].(map[string]any); sort["supported"] != true {
		t.Fatalf("sort.supported = %v", cfg["sort"])
	}
	ts.createUser("carol@example.com", "name", map[string]any{"familyName": "Zed"}, "emails", []any{map[string]any{"value": "z@example.com"}, map[string]any{"value": "a@example.com", "primary": true}})
	ts.createUser("alice@example.com", "name", map[string]any{"familyName": "bee"})
	ts.createUser("Bob@example.com", "name", map[string]any{"familyName": "Ant"}, "emails", []any{map[string]any{"value": "m@example.com"}})
	names := func(r *response) string {
		var out []string
		for _, u := range resources(t, r) {
			out = append(out, str(u, "userName"))
		}
		return strings.Join(out, " ")
	}
	for _, c := range []struct {
		kv   []string
		want string
	}{
		{[]string{"sortBy", "userName"}, "alice@example.com Bob@example.com carol@example.com"},
		{[]string{"sortBy", "userName", "sortOrder", "descending"}, "carol@example.com Bob@example.com alice@example.com"},
		{[]string{"sortBy", "name.familyName"}, "Bob@example.com alice@example.com carol@example.com"},
		{[]string{"sortBy", "emails"}, "carol@example.com Bob@example.com alice@example.com"}, // primary a@, then m@, then none
		{[]string{"sortBy", "emails", "sortOrder", "descending"}, "alice@example.com Bob@example.com carol@example.com"},
		{[]string{"sortBy", "userName", "startIndex", "2", "count", "1"}, "Bob@example.com"},
		{[]string{"sortBy", "meta.created", "sortOrder", "descending", "count", "1"}, "Bob@example.com"},
	} {
		if got := names(expect(t, ts.list("/Users", c.kv...), http.StatusOK)); got != c.want {
			t.Errorf("%v: %s, want %s", c.kv, got, c.want)
		}
	}
	checkSCIMError(t, ts.list("/Users", "sortBy", "madeUp"), http.StatusBadRequest, "invalidValue")
	checkSCIMError(t, ts.list("/Users", "sortBy", "userName", "sortOrder", "sideways"), http.StatusBadRequest, "invalidValue")
}

// TestUserVersionFollowsMemberships: a user's meta.version and ETag change
// when its groups change (added, removed, group deleted), so If-Match on
// the user refuses a write based on the old membership.
func TestUserVersionFollowsMemberships(t *testing.T) {
	ts := newTestServer(t)
	u := ts.createUser("v@example.com")
	id := str(u, "id")
	version := func() string {
		r := expect(t, ts.do(http.MethodGet, "/Users/"+id, nil), http.StatusOK)
		if r.Header.Get("ETag") != str(meta(r.JSON), "version") {
			t.Fatalf("ETag %q and meta.version %q differ", r.Header.Get("ETag"), str(meta(r.JSON), "version"))
		}
		return r.Header.Get("ETag")
	}
	v0 := version()
	g := ts.createGroup("Admins", id)
	v1 := version()
	if v1 == v0 {
		t.Fatal("version unchanged after the user joined a group on the group's POST")
	}
	checkSCIMError(t, ts.do(http.MethodPut, "/Users/"+id, userBody("v@example.com", "title", "x"), withHeader("If-Match", v0)), http.StatusPreconditionFailed, "")
	gid := str(g, "id")
	expect(t, ts.do(http.MethodPatch, "/Groups/"+gid, patchBody(op("remove", `members[value eq "`+id+`"]`, nil))), http.StatusNoContent)
	v2 := version()
	if v2 == v1 {
		t.Fatal("version unchanged after the user left a group")
	}
	expect(t, ts.do(http.MethodPatch, "/Groups/"+gid, patchBody(op("add", "members", []any{map[string]any{"value": id}}))), http.StatusNoContent)
	v3 := version()
	if v3 == v2 {
		t.Fatal("version unchanged after PATCH add member")
	}
	expect(t, ts.do(http.MethodDelete, "/Groups/"+gid, nil), http.StatusNoContent)
	if version() == v3 {
		t.Fatal("version unchanged after the user's group was deleted")
	}
	expect(t, ts.do(http.MethodPut, "/Users/"+id, userBody("v@example.com", "title", "x"), withHeader("If-Match", version())), http.StatusOK)
}
