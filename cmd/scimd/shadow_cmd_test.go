package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/api"
	"github.com/scimd/scimd/engine/app"
)

// TestShadowPolicy: a shadow set is evaluated beside the live one on its
// own full pass and on every change; divergences are listed with live,
// shadow, since and cause; nothing is applied; a refused shadow set is
// audited and changes nothing.
func TestShadowPolicy(t *testing.T) {
	s := startLive(t)
	ctx := context.Background()
	dan := s.createUser("dan@example.com")
	erin := s.createUser("erin@example.com")
	s.createGroup("Intercom Support", dan, erin)
	before := s.states()

	if r := s.runCLI(ctx, "shadow", "report"); r.code != 0 || !strings.Contains(r.stdout, "no shadow policy") {
		t.Fatalf("report without shadow: exit %d %s%s", r.code, r.stdout, r.stderr)
	}

	// A refused candidate: audited, nothing set.
	bad := copyDir(t, s.policies)
	writeEdit(t, bad, "groups.rego", func(src string) string {
		return strings.Replace(src, `"Intercom Support": "support"`, `"Intercom Support": "suport"`, 1)
	})
	if r := s.runCLI(ctx, "shadow", "set", bad); r.code == 0 || !strings.Contains(r.stderr, "refused") {
		t.Fatalf("a refused shadow set: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	var refused struct{ Events []audit.Event }
	s.api(http.MethodGet, "/api/v1/audit?type="+audit.TypeShadowRefused, nil, &refused)
	if len(refused.Events) != 1 {
		t.Fatalf("refused shadow events: %+v", refused.Events)
	}

	// A shadow policy that maps Intercom Support to viewer.
	cand := copyDir(t, s.policies)
	writeEdit(t, cand, "groups.rego", func(src string) string {
		return strings.Replace(src, `"Intercom Support": "support"`, `"Intercom Support": "viewer"`, 1)
	})
	for _, f := range []string{"groups_test.rego", "attributes_test.rego", "teammate_test.rego", "roles_test.rego"} {
		writeEdit(t, cand, f, func(string) string { return "package scimd_test\n" })
	}
	if r := s.runCLI(ctx, "shadow", "set", cand); r.code != 0 {
		t.Fatalf("shadow set: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	s.idle()
	var res api.ShadowResponse
	s.api(http.MethodGet, "/api/v1/policy/shadow", nil, &res)
	if res.Revision == "" || res.Source != "api" || res.Report.Teammates != 2 || len(res.Report.Divergent) != 2 {
		t.Fatalf("after the shadow pass: %+v", res)
	}
	d := res.Report.Divergent[0]
	if d.UserName != "dan@example.com" || d.Live != "role support" || d.Shadow != "role viewer" || d.Cause.Kind != "shadow" || d.Since.IsZero() {
		t.Errorf("divergence %+v", d)
	}

	// A change: erin leaves the group; both say no access, she drops out.
	// A new user in the group diverges, caused by the SCIM write.
	req, _ := http.NewRequest(http.MethodDelete, s.srv.URL+"/scim/v2/Users/"+erin, nil)
	req.Header.Set("Authorization", "Bearer "+s.scimToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete erin: %v %v", err, resp)
	}
	resp.Body.Close()
	fay := s.createUser("fay@example.com")
	s.request(http.MethodPatch, "/scim/v2/Groups/"+groupID(t, s, "Intercom Support"), s.scimToken, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": fay}}}},
	}, nil)
	s.idle()
	r := s.runCLI(ctx, "shadow", "report")
	for _, w := range []string{"shadow policy " + res.Revision, "decided differently", "USERNAME", "dan@example.com  role support  role viewer  ", "fay@example.com", "scim"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("report lacks %q:\n%s%s", w, r.stdout, r.stderr)
		}
	}
	if strings.Contains(r.stdout, "erin@") {
		t.Errorf("deleted erin still listed:\n%s", r.stdout)
	}
	// Nothing applied: the live roles.
	if got := s.states(); got["dan@example.com"] != before["dan@example.com"] || got["fay@example.com"] != "support/true" {
		t.Errorf("teammates %v (before %v)", got, before)
	}
	if m := metric(t, s, "scimd_shadow_divergent_teammates"); m != "2" {
		t.Errorf("scimd_shadow_divergent_teammates = %s, want 2", m)
	}

	// Clear: audited, the report is empty, the gauge 0.
	if r := s.runCLI(ctx, "shadow", "clear"); r.code != 0 {
		t.Fatalf("shadow clear: exit %d %s", r.code, r.stderr)
	}
	var cleared api.ShadowResponse
	s.api(http.MethodGet, "/api/v1/policy/shadow", nil, &cleared)
	if res = cleared; res.Revision != "" || len(res.Report.Divergent) != 0 || metric(t, s, "scimd_shadow_divergent_teammates") != "0" {
		t.Errorf("after clear: %+v", res)
	}
	var events struct{ Events []audit.Event }
	s.api(http.MethodGet, "/api/v1/audit?type="+audit.TypeShadowSet+"&type="+audit.TypeShadowCleared, nil, &events)
	if len(events.Events) < 1 {
		t.Errorf("no shadow set/cleared events")
	}
}

func groupID(t *testing.T, s *liveServer, name string) string {
	t.Helper()
	var out struct {
		Resources []struct{ ID string }
	}
	s.request(http.MethodGet, "/scim/v2/Groups?filter=displayName+eq+%22"+strings.ReplaceAll(name, " ", "+")+"%22", s.scimToken, nil, &out)
	if len(out.Resources) != 1 {
		t.Fatalf("group %q: %+v", name, out)
	}
	return out.Resources[0].ID
}

// metric reads one unlabelled metric's value from /metrics.
func metric(t *testing.T, s *liveServer, name string) string {
	t.Helper()
	resp, err := http.Get(s.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// TestShadowPoliciesDirectory: serve --shadow-policies DIR watches DIR; a
// broken edit of it is refused, audited, and leaves the shadow set.
func TestShadowPoliciesDirectory(t *testing.T) {
	data, live := t.TempDir(), copyDir(t, filepath.Join("..", "..", "policies"))
	shadowDir := copyDir(t, live)
	writeEdit(t, shadowDir, "exclusions.rego", func(src string) string {
		return strings.Replace(src, `"breakglass@example.com",`, `"breakglass@example.com", "gus@example.com",`, 1)
	})
	a, err := app.Open(context.Background(), app.Config{
		Data: data, Policies: live, ShadowPolicies: shadowDir, AdminToken: liveAdminToken, PolicyDebounce: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &liveServer{t: t, app: a, srv: httptest.NewServer(a.Handler), data: data, policies: live}
	t.Cleanup(s.stop)
	s.idle()
	var out struct{ Token string }
	s.api(http.MethodPost, "/api/v1/tokens", map[string]string{"name": "okta"}, &out)
	s.scimToken = out.Token
	s.createUser("gus@example.com")

	var res api.ShadowResponse
	s.api(http.MethodGet, "/api/v1/policy/shadow", nil, &res)
	if res.Dir != nil && res.Dir.LastError != "" {
		t.Fatalf("shadow dir refused: %s %+v", res.Dir.LastError, res.Dir.Problems)
	}
	if res.Source != "dir" || len(res.Report.Divergent) != 1 || res.Report.Divergent[0].Shadow != "excluded" || res.Report.Divergent[0].Live != "no access" {
		t.Fatalf("shadow from the directory: %+v", res)
	}
	rev := res.Revision
	if err := os.WriteFile(filepath.Join(shadowDir, "broken.rego"), []byte("package scimd\n\nnot rego ("), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var refused struct{ Events []audit.Event }
		s.api(http.MethodGet, "/api/v1/audit?type="+audit.TypeShadowRefused, nil, &refused)
		if len(refused.Events) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the broken shadow directory was not refused and audited")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var after api.ShadowResponse
	s.api(http.MethodGet, "/api/v1/policy/shadow", nil, &after)
	if after.Revision != rev || after.Dir == nil || after.Dir.LastError == "" {
		t.Errorf("after a refused edit: %+v", after)
	}
}
