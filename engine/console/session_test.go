package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/console"
	"github.com/scimd/scimd/engine/reconcile"
	"github.com/scimd/scimd/scim/store"
)

// browser is a cookie-keeping HTTP client that does not follow redirects.
type browser struct {
	t   *testing.T
	e   *env
	hc  *http.Client
	jar *cookiejar.Jar
}

func newBrowser(t *testing.T, e *env) *browser {
	jar, _ := cookiejar.New(nil)
	hc := *e.srv.Client()
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: t, e: e, hc: &hc, jar: jar}
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.hc.Get(b.e.srv.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.hc.PostForm(b.e.srv.URL+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func hidden(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in %s", page)
	}
	return m[1]
}

// signIn signs in with a token and returns the session's CSRF token.
func (b *browser) signIn(token string) string {
	b.t.Helper()
	_, page := b.get("/ui/login")
	resp, _ := b.post("/ui/login", url.Values{"token": {token}, "csrf": {hidden(b.t, page)}})
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("sign-in: %d, want 303", resp.StatusCode)
	}
	_, page = b.get("/ui/")
	return hidden(b.t, page)
}

func auditOf(t *testing.T, e *env, typ string) []audit.Event {
	t.Helper()
	events, err := e.app.Store.AuditEvents(context.Background(), store.AuditQuery{Types: []string{typ}})
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func TestSignInSetsAStrictSessionCookieAndIsAudited(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tls    bool
		secure bool
	}{{"plain HTTP", false, false}, {"TLS", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.tls)
			b := newBrowser(t, e)
			resp, _ := b.get("/ui/")
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login") {
				t.Fatalf("GET /ui/ signed out: %d %s, want a redirect to the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
			}
			resp, page := b.get("/ui/login")
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") {
				t.Fatalf("CSP = %q", csp)
			}
			if strings.Contains(page, "<script>") || strings.Contains(page, "http://") && !strings.Contains(page, e.srv.URL) && strings.Contains(page, "https://fonts") {
				t.Fatal("login page has inline script or external resources")
			}
			resp, _ = b.post("/ui/login", url.Values{"token": {adminSecret}, "csrf": {hidden(t, page)}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign-in: %d", resp.StatusCode)
			}
			var session *http.Cookie
			for _, c := range resp.Cookies() {
				if c.Name == "scimd_session" {
					session = c
				}
			}
			if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Secure != tc.secure ||
				session.MaxAge <= 0 || session.Path != "/ui/" {
				t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Strict, Secure=%v, an expiry, Path=/ui/", session, tc.secure)
			}
			if resp, _ := b.get("/ui/"); resp.StatusCode != http.StatusOK {
				t.Fatalf("overview after sign-in: %d", resp.StatusCode)
			}
			in := auditOf(t, e, console.TypeSignedIn)
			if len(in) != 1 || in[0].Actor.Name != "admin" {
				t.Fatalf("sign-in audit = %+v", in)
			}
			_, page = b.get("/ui/")
			resp, _ = b.post("/ui/logout", url.Values{"csrf": {hidden(t, page)}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign-out: %d", resp.StatusCode)
			}
			if resp, _ := b.get("/ui/"); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("overview after sign-out: %d, want a redirect", resp.StatusCode)
			}
			if out := auditOf(t, e, console.TypeSignedOut); len(out) != 1 || out[0].Actor.Name != "admin" {
				t.Fatalf("sign-out audit = %+v", out)
			}
		})
	}
}

func TestSignInRefusals(t *testing.T) {
	e := newEnv(t, false)
	for _, tc := range []struct {
		name  string
		token string
		csrf  func(page string) string
		want  int
	}{
		{"no login nonce", adminSecret, func(string) string { return "" }, http.StatusForbidden},
		{"wrong login nonce", adminSecret, func(string) string { return "forged" }, http.StatusForbidden},
		{"unknown token", "scimd_nope", func(p string) string { return hidden(t, p) }, http.StatusUnauthorized},
		{"SCIM token", e.scim, func(p string) string { return hidden(t, p) }, http.StatusForbidden},
		{"plan token", e.token("ci", "plan"), func(p string) string { return hidden(t, p) }, http.StatusForbidden},
		{"approve token without read", e.token("pager", "approve"), func(p string) string { return hidden(t, p) }, http.StatusForbidden},
		{"expired read token", e.tokenExpiring("old", time.Now().Add(-time.Minute), "read"), func(p string) string { return hidden(t, p) }, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, e)
			_, page := b.get("/ui/login")
			resp, _ := b.post("/ui/login", url.Values{"token": {tc.token}, "csrf": {tc.csrf(page)}})
			if resp.StatusCode != tc.want {
				t.Fatalf("sign-in: %d, want %d", resp.StatusCode, tc.want)
			}
			if resp, _ := b.get("/ui/"); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("overview after a refused sign-in: %d, want a redirect", resp.StatusCode)
			}
		})
	}
	if in := auditOf(t, e, console.TypeSignedIn); len(in) != 0 {
		t.Fatalf("refused sign-ins were audited as sign-ins: %+v", in)
	}
}

func TestForgedAndUnscopedDecisionsAreRefused(t *testing.T) {
	e := newEnv(t, false)
	group, _ := e.seed()
	id := e.holdChange(group)
	ch, _ := e.app.Reconciler.Change(id)
	confirm := pageConfirm(t, e, id)

	reader := newBrowser(t, e)
	csrf := reader.signIn(e.token("auditor", "read"))
	if _, page := reader.get("/ui/changes/" + id); strings.Contains(page, `id="approve"`) || !strings.Contains(page, `id="read-only"`) {
		t.Fatal("a read token is shown the approve button")
	}
	approver := newBrowser(t, e)
	approverCSRF := approver.signIn(adminSecret)

	for _, tc := range []struct {
		name string
		b    *browser
		form url.Values
		want int
	}{
		{"read token without CSRF token", reader, url.Values{"confirm": {confirm}}, http.StatusForbidden},
		{"read token with its CSRF token", reader, url.Values{"confirm": {confirm}, "csrf": {csrf}}, http.StatusForbidden},
		{"approver without CSRF token", approver, url.Values{"confirm": {confirm}}, http.StatusForbidden},
		{"approver with another session's CSRF token", approver, url.Values{"confirm": {confirm}, "csrf": {csrf}}, http.StatusForbidden},
		{"approver without confirming the numbers", approver, url.Values{"csrf": {approverCSRF}}, http.StatusBadRequest},
		{"approver confirming other numbers", approver, url.Values{"csrf": {approverCSRF}, "confirm": {"1 teammates"}}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, action := range []string{"approve", "reject"} {
				resp, _ := tc.b.post("/ui/changes/"+id+"/"+action, tc.form)
				if resp.StatusCode != tc.want {
					t.Fatalf("%s: %d, want %d", action, resp.StatusCode, tc.want)
				}
			}
			if c, _ := e.app.Reconciler.Change(id); c.State != reconcile.ChangePending {
				t.Fatalf("change is %s after a refused decision", c.State)
			}
		})
	}
	// A cross-site request carrying the right token is refused too.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/ui/changes/"+id+"/approve",
		strings.NewReader(url.Values{"csrf": {approverCSRF}, "confirm": {confirm}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if resp, err := approver.hc.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin approve: %v %v, want 403", resp, err)
	}
	if len(auditOf(t, e, audit.TypeChangeApproved)) != 0 || len(ch.Changes) != 12 {
		t.Fatal("a refused decision was applied")
	}
	resp, _ := approver.post("/ui/changes/"+id+"/reject", url.Values{"csrf": {approverCSRF}, "confirm": {confirm}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reject: %d", resp.StatusCode)
	}
	rejected := auditOf(t, e, audit.TypeChangeRejected)
	if len(rejected) != 1 || rejected[0].Actor.Name != "admin" {
		t.Fatalf("rejection audit = %+v, want one by the admin token", rejected)
	}
}

// pageConfirm returns the confirmation value the change page asks for.
func pageConfirm(t *testing.T, e *env, id string) string {
	b := newBrowser(t, e)
	b.signIn(adminSecret)
	_, page := b.get("/ui/changes/" + id)
	m := regexp.MustCompile(`name="confirm" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no confirmation on the change page: %s", page)
	}
	return m[1]
}

func TestRevokedTokenEndsItsSessions(t *testing.T) {
	e := newEnv(t, false)
	b := newBrowser(t, e)
	b.signIn(e.token("auditor", "read"))
	if resp, _ := b.get("/ui/teammates"); resp.StatusCode != http.StatusOK {
		t.Fatalf("teammates: %d", resp.StatusCode)
	}
	if err := e.app.Store.Write(context.Background(), func(tx *store.WriteTxn) error { return tx.DeleteToken("auditor") }); err != nil {
		t.Fatal(err)
	}
	if resp, _ := b.get("/ui/teammates"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("teammates after the token was revoked: %d, want a redirect to sign in", resp.StatusCode)
	}
}

func TestPagesEscapeWhatTheIdPSent(t *testing.T) {
	e := newEnv(t, false)
	id := e.user(`<script>alert(1)</script>`)
	e.group(`<img src=x onerror=alert(2)>`, "", []string{id})
	e.idle()
	b := newBrowser(t, e)
	b.signIn(adminSecret)
	for _, path := range []string{"/ui/", "/ui/teammates?q=script", "/ui/teammates/" + id, "/ui/groups", "/ui/audit", "/ui/policy", "/ui/changes"} {
		resp, page := b.get(path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		if strings.Contains(page, "<script>alert") || strings.Contains(page, "<img src=x") {
			t.Fatalf("%s renders markup from the IdP unescaped", path)
		}
	}
	if _, page := b.get("/ui/teammates?q=script"); !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatal("the teammate search does not find the user by userName")
	}
}

func TestPolicyPageRendersRecentPlansAsSafeMarkdown(t *testing.T) {
	e := newEnv(t, false)
	files := map[string]string{}
	for _, name := range e.app.Policies.Status().Files {
		b, err := os.ReadFile(filepath.Join(e.app.Policies.Status().Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	files["groups.rego"] += "\n# <script>alert(1)</script> [x](javascript:alert(2))\n"
	e.do(http.MethodPost, "/api/v1/plan", adminSecret, map[string]any{"files": files, "commit": "<img src=x onerror=alert(3)>"}, nil, http.StatusOK)
	b := newBrowser(t, e)
	b.signIn(e.token("auditor", "read"))
	_, page := b.get("/ui/policy")
	if !strings.Contains(page, "<h4>Planned") || !strings.Contains(page, "<table>") {
		t.Fatalf("the policy page does not render the plan's Markdown:\n%s", page)
	}
	if strings.Contains(page, "<img src=x") || strings.Contains(page, "<script>alert") || strings.Contains(page, `href="javascript:`) {
		t.Fatal("the policy page renders markup from a plan request")
	}
	if !strings.Contains(page, "groups.rego") || !strings.Contains(page, "Intercom Support") {
		t.Fatal("the policy page does not show the active revision's files")
	}
}

func TestOverviewShowsWebhookEndpoints(t *testing.T) {
	e := newEnv(t, false)
	e.do(http.MethodPost, "/api/v1/webhooks", adminSecret,
		map[string]any{"url": "https://hooks.example.com/scimd", "secret": "0123456789abcdef0123456789abcdef"}, nil, http.StatusCreated)
	b := newBrowser(t, e)
	b.signIn(e.token("auditor", "read"))
	_, page := b.get("/ui/")
	if !strings.Contains(page, "https://hooks.example.com/scimd") || strings.Contains(page, "No webhook endpoints") {
		t.Fatal("the overview does not list the webhook endpoint")
	}
	if strings.Contains(page, "0123456789abcdef") {
		t.Fatal("the overview shows a webhook's secret")
	}
}

func TestTeammateSearchAndPaging(t *testing.T) {
	e := newEnv(t, false)
	e.seed() // 12 support, alice (admin), bob and carol (viewer), dave (no role, Marketing)
	b := newBrowser(t, e)
	b.signIn(e.token("auditor", "read"))
	count := regexp.MustCompile(`id="result-count">(?:Teammates \d+–\d+ of (\d+)|No teammate matches\.)`)
	for _, tc := range []struct {
		query string
		want  string
	}{
		{"", "16"},
		{"q=SUPPORT0", "10"},
		{"q=carol%40EXAMPLE.com", "1"},
		{"role=support", "12"},
		{"role=admin", "1"},
		{"role=%28none%29", "1"},
		{"access=no", "1"},
		{"group=Intercom+Viewers", "3"},
		{"group=Marketing&q=bob", "1"},
		{"group=Marketing&role=viewer", "1"},
		{"group=No+such+group", ""},
		{"q=nobody", ""},
	} {
		_, page := b.get("/ui/teammates?" + tc.query)
		m := count.FindStringSubmatch(page)
		if m == nil || m[1] != tc.want {
			t.Errorf("teammates?%s: %v, want %q matches", tc.query, m, tc.want)
		}
	}
	// Paging: 16 teammates, 5 per page would need Options.PageSize; with
	// the default 50 there is one page and no next link.
	if _, page := b.get("/ui/teammates?page=7"); !strings.Contains(page, "page 1 of 1") || strings.Contains(page, `rel="next"`) ||
		!strings.Contains(page, "Teammates 1–16 of 16") {
		t.Error("a page past the end is not clamped to the last page")
	}
}

func TestOverviewShowsARefusedPolicyAtFileAndLine(t *testing.T) {
	e := newEnv(t, false)
	dir := e.app.Policies.Status().Dir
	broken := "package scimd\n\ngroup_roles := {\n  \"Intercom Admins\": \"admin\",\n  oops\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "groups.rego"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.app.Policies.Reload(context.Background(), "test"); err == nil {
		t.Fatal("a broken policy was accepted")
	}
	b := newBrowser(t, e)
	b.signIn(e.token("auditor", "read"))
	_, page := b.get("/ui/")
	if !strings.Contains(page, "Refused") || !regexp.MustCompile(`<code>groups\.rego:\d+</code>`).MatchString(page) {
		t.Fatalf("the overview does not show the refusal at file:line:\n%s", page)
	}
	if _, page := b.get("/ui/policy"); !strings.Contains(page, "The directory has changed since this revision was activated") {
		t.Fatal("the policy page does not say the files on disk differ from the active revision")
	}
}
