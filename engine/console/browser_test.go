package console_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/scimd/scimd/audit"
)

// chromium returns Debian's chromium, or skips the test (fails it in CI,
// where .ci/run installs it). Nothing is downloaded.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("SCIMD_CHROMIUM"), "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (apt-get install chromium); the console's browser tests need it in CI")
	}
	t.Skip("skipping the console's browser tests: chromium is not installed (apt-get install chromium, or set SCIMD_CHROMIUM)")
	return ""
}

// screenshots is where the tests write a PNG of each page. Set
// SCIMD_SCREENSHOTS to keep them somewhere of your choosing.
func screenshots(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SCIMD_SCREENSHOTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "scimd-console-screenshots-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("console screenshots: %s", dir)
	return dir
}

// newTab starts a headless chromium with a fresh profile and returns a tab.
func newTab(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // start the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func number(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	n, err := strconv.Atoi(text(t, ctx, sel))
	if err != nil {
		t.Fatalf("%s: %v", sel, err)
	}
	return n
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// accessible checks what a page needs for screen readers: a language,
// a label for every form control, a name for every chart and button.
func accessible(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	bad, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(() => {
		const bad = [];
		if (!document.documentElement.lang) bad.push("html lang");
		document.querySelectorAll("input:not([type=hidden]), select, textarea").forEach(e => {
			if (!e.labels || e.labels.length === 0) bad.push("unlabelled " + (e.name || e.id));
		});
		document.querySelectorAll("svg").forEach(s => {
			if (!s.getAttribute("aria-labelledby") && !s.getAttribute("aria-label")) bad.push("unnamed chart");
		});
		document.querySelectorAll("button, a").forEach(b => {
			if (!b.textContent.trim()) bad.push("unnamed " + b.tagName);
		});
		if (document.querySelectorAll("h1").length !== 1) bad.push("not one h1");
		if (document.querySelectorAll("script:not([src])").length) bad.push("inline script");
		return bad;
	})()`))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(bad) > 0 {
		t.Errorf("page %s: %v", name, bad)
	}
}

func shoot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	accessible(t, ctx, name)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func signIn(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	do(t, ctx,
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("n-teammates")),
	)
}

// TestBrowserReadTokenSeesWhatTheAPISays signs in with a read token, checks
// the overview's numbers against the admin API, searches a teammate and
// opens its history, finds no approve button on a held change, and takes a
// screenshot of every page.
func TestBrowserReadTokenSeesWhatTheAPISays(t *testing.T) {
	ctx := newTab(t)
	dir := screenshots(t)
	e := newEnv(t, false)
	group, users := e.seed()
	// bob leaves Intercom Viewers: a history with a cause.
	e.do(http.MethodPatch, "/scim/v2/Groups/"+groupID(t, e, "Intercom Viewers"), e.scim, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []map[string]any{{"op": "remove", "path": fmt.Sprintf(`members[value eq "%s"]`, users["bob"])}},
	}, nil, http.StatusNoContent)
	e.idle()
	change := e.holdChange(group)

	signIn(t, ctx, e.srv.URL, e.token("auditor", "read"))
	if who := text(t, ctx, "#who"); who != "auditor" {
		t.Fatalf("signed in as %q", who)
	}

	// The overview says what the API says.
	var tm struct {
		Teammates []struct {
			Role   *string
			Access bool
		}
		Seq uint64
	}
	e.do(http.MethodGet, "/api/v1/teammates", adminSecret, nil, &tm, http.StatusOK)
	var gs struct{ Groups []struct{ Active bool } }
	e.do(http.MethodGet, "/api/v1/groups", adminSecret, nil, &gs, http.StatusOK)
	var cs struct{ Changes []any }
	e.do(http.MethodGet, "/api/v1/changes", adminSecret, nil, &cs, http.StatusOK)
	access, active := 0, 0
	byRole := map[string]int{}
	for _, x := range tm.Teammates {
		if x.Access {
			access++
		}
		role := "(none)"
		if x.Role != nil {
			role = *x.Role
		}
		byRole[role]++
	}
	for _, g := range gs.Groups {
		if g.Active {
			active++
		}
	}
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.ID("n-teammates")))
	for _, c := range []struct {
		sel  string
		want int
	}{
		{"#n-teammates", len(tm.Teammates)}, {"#n-access", access},
		{"#n-groups-active", active}, {"#n-groups-inactive", len(gs.Groups) - active},
		{"#n-pending", len(cs.Changes)}, {"#feed-head", int(tm.Seq)},
	} {
		if got := number(t, ctx, c.sel); got != c.want {
			t.Errorf("overview %s = %d, the API says %d", c.sel, got, c.want)
		}
	}
	for role, n := range byRole {
		sel := fmt.Sprintf(`#roles tr[data-role="%s"]`, role)
		cells := strings.Fields(text(t, ctx, sel))
		if len(cells) != 3 {
			t.Fatalf("row %s = %q", sel, cells)
		}
		a, _ := strconv.Atoi(cells[1])
		b, _ := strconv.Atoi(cells[2])
		if a+b != n {
			t.Errorf("overview: %d teammates with role %s, the API says %d", a+b, role, n)
		}
	}
	if got := number(t, ctx, "#n-pending"); got != 1 {
		t.Fatalf("pending = %d, want 1", got)
	}
	shoot(t, ctx, dir, "overview")
	// The first Tab reaches the skip link.
	do(t, ctx, chromedp.KeyEvent("\t"))
	if focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.className`)); err != nil || focused != "skip" {
		t.Fatalf("first Tab focuses %q (%v), want the skip link", focused, err)
	}

	// Search a teammate by e-mail and open their history.
	do(t, ctx,
		chromedp.Navigate(e.srv.URL+"/ui/teammates"),
		chromedp.WaitVisible(chromedp.ID("q")),
		chromedp.SendKeys(chromedp.ID("q"), "bob@example"),
		chromedp.Submit(chromedp.ID("q")),
		// The results page renders the search into the field's value.
		chromedp.WaitVisible(chromedp.CSS(`#q[value="bob@example"]`)),
	)
	if got := text(t, ctx, "#result-count"); !strings.Contains(got, "of 1") {
		t.Fatalf("search for bob: %q", got)
	}
	shoot(t, ctx, dir, "teammates")
	do(t, ctx,
		chromedp.Click(chromedp.CSS(`#teammates a[href="/ui/teammates/`+users["bob"]+`"]`)),
		chromedp.WaitVisible(chromedp.ID("history")),
	)
	history := text(t, ctx, "#history")
	if !strings.Contains(history, "viewer → (none), no access") || !strings.Contains(history, "Intercom Viewers") {
		t.Fatalf("bob's history does not show the removal and its cause:\n%s", history)
	}
	if got := text(t, ctx, "#t-access"); got != "no" {
		t.Fatalf("bob's access = %q", got)
	}
	shoot(t, ctx, dir, "teammate")

	// Why does alice have admin? The explanation names the group.
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/ui/teammates/"+users["alice"]), chromedp.WaitVisible(chromedp.ID("explain")))
	if got := text(t, ctx, "#t-role"); got != "admin" {
		t.Fatalf("alice's role = %q", got)
	}
	if got := text(t, ctx, "#mattered"); !strings.Contains(got, "Intercom Admins") {
		t.Fatalf("alice's explanation does not name Intercom Admins:\n%s", got)
	}
	shoot(t, ctx, dir, "teammate-explained")

	// A read token sees the held change but no approve button.
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/ui/changes/"+change), chromedp.WaitVisible(chromedp.ID("diff")))
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#approve, #reject").length`)); err != nil || n != 0 {
		t.Fatalf("a read token sees %d decision buttons (%v)", n, err)
	}
	if got := text(t, ctx, "#c-counts"); !strings.Contains(got, "12 lose access") {
		t.Fatalf("change counts = %q", got)
	}
	shoot(t, ctx, dir, "change-read-only")

	for _, p := range []struct{ path, wait, name string }{
		{"/ui/changes", "h-pend", "changes"},
		{"/ui/groups", "h-mapped", "groups"},
		{"/ui/audit", "events", "audit"},
		{"/ui/audit/1", "main", "audit-event"},
		{"/ui/policy", "h-files", "policy"},
	} {
		do(t, ctx, chromedp.Navigate(e.srv.URL+p.path), chromedp.WaitVisible(chromedp.ID(p.wait)))
		shoot(t, ctx, dir, p.name)
	}
	if got := text(t, ctx, "main"); !strings.Contains(got, "groups.rego") {
		t.Fatal("the policy page does not show the active revision's files")
	}

	// A phone-sized screen gets the collapsed menu.
	do(t, ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(e.srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS(".menu-toggle")))
	shoot(t, ctx, dir, "overview-phone")
	copyForREADME(t, dir)
}

// copyForREADME refreshes the README's screenshots when
// SCIMD_UPDATE_SCREENSHOTS is set.
func copyForREADME(t *testing.T, dir string) {
	if os.Getenv("SCIMD_UPDATE_SCREENSHOTS") == "" {
		return
	}
	dst := filepath.Join("..", "..", "docs", "img")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for src, name := range map[string]string{"overview": "overview", "teammate-explained": "teammate"} {
		b, err := os.ReadFile(filepath.Join(dir, src+".png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, "console-"+name+".png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func groupID(t *testing.T, e *env, name string) string {
	var out struct {
		Groups []struct{ ID, DisplayName string }
	}
	e.do(http.MethodGet, "/api/v1/groups", adminSecret, nil, &out, http.StatusOK)
	for _, g := range out.Groups {
		if g.DisplayName == name {
			return g.ID
		}
	}
	t.Fatalf("no group %s", name)
	return ""
}

// TestBrowserApproveTokenApprovesAHeldChange approves a held change from
// the browser and sees the teammates' roles change.
func TestBrowserApproveTokenApprovesAHeldChange(t *testing.T) {
	ctx := newTab(t)
	dir := screenshots(t)
	e := newEnv(t, false)
	group, users := e.seed()
	change := e.holdChange(group)
	approver := e.token("on-call", "read", "approve")

	signIn(t, ctx, e.srv.URL, approver)
	do(t, ctx,
		chromedp.Navigate(e.srv.URL+"/ui/teammates/"+users["support03"]),
		chromedp.WaitVisible(chromedp.ID("t-role")),
	)
	if got := text(t, ctx, "#t-role"); got != "support" {
		t.Fatalf("support03's role before approval = %q", got)
	}
	do(t, ctx,
		chromedp.Navigate(e.srv.URL+"/ui/changes/"+change),
		chromedp.WaitVisible(chromedp.ID("approve")),
	)
	shoot(t, ctx, dir, "change")
	// The button does nothing until the numbers are confirmed.
	do(t, ctx, chromedp.Click(chromedp.ID("approve")))
	if c, _ := e.app.Reconciler.Change(change); c.State != "pending" {
		t.Fatal("the change was approved without its confirmation")
	}
	do(t, ctx,
		chromedp.Click(chromedp.ID("confirm-approve")),
		chromedp.Click(chromedp.ID("approve")),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if got := text(t, ctx, "#c-state"); !strings.HasPrefix(got, "approved by on-call") {
		t.Fatalf("change state after approval = %q", got)
	}
	e.idle()
	do(t, ctx,
		chromedp.Navigate(e.srv.URL+"/ui/teammates/"+users["support03"]),
		chromedp.WaitVisible(chromedp.ID("history")),
	)
	if got := text(t, ctx, "#t-access"); got != "no" {
		t.Fatalf("support03's access after approval = %q", got)
	}
	if got := text(t, ctx, "#history"); !strings.Contains(got, "support → (none), no access") || !strings.Contains(got, "approv") {
		t.Fatalf("support03's history after approval:\n%s", got)
	}
	var tm struct {
		Teammates []struct {
			UserName string
			Access   bool
		}
	}
	e.do(http.MethodGet, "/api/v1/teammates", adminSecret, nil, &tm, http.StatusOK)
	for _, x := range tm.Teammates {
		if strings.HasPrefix(x.UserName, "support") && x.Access {
			t.Errorf("%s still has access after the approval", x.UserName)
		}
	}
	approved := auditOf(t, e, audit.TypeChangeApproved)
	if len(approved) != 1 || approved[0].Actor.Name != "on-call" {
		t.Fatalf("approval audit = %+v, want one by on-call", approved)
	}
	shoot(t, ctx, dir, "teammate-after-approval")

	// Sign out from the page.
	do(t, ctx, chromedp.Click(chromedp.CSS(`form.who button`)), chromedp.WaitVisible(chromedp.ID("token")))
}
