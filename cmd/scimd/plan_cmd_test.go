package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scimd/scimd/engine/app"
	"github.com/scimd/scimd/engine/review"
)

const liveAdminToken = "cli-test-admin-token"

// liveServer is a real scimd (store on disk, policy watcher, reconciler)
// behind an httptest server, for running commands in process against it.
type liveServer struct {
	t         *testing.T
	app       *app.App
	srv       *httptest.Server
	data      string
	policies  string
	scimToken string
}

// copyDir copies the regular files of src into a new temporary directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range entries {
		if de.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func startLive(t *testing.T) *liveServer {
	t.Helper()
	s := &liveServer{t: t, data: t.TempDir(), policies: copyDir(t, filepath.Join("..", "..", "policies"))}
	s.start()
	var out struct{ Token string }
	s.api(http.MethodPost, "/api/v1/tokens", map[string]string{"name": "okta"}, &out)
	s.scimToken = out.Token
	return s
}

func (s *liveServer) start() {
	s.t.Helper()
	a, err := app.Open(context.Background(), app.Config{
		Data: s.data, Policies: s.policies, AdminToken: liveAdminToken, PolicyDebounce: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		s.t.Fatalf("open app: %v", err)
	}
	s.app, s.srv = a, httptest.NewServer(a.Handler)
	s.t.Cleanup(s.stop)
	s.idle()
}

func (s *liveServer) stop() {
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
	if s.app != nil {
		_ = s.app.Close()
		s.app = nil
	}
}

func (s *liveServer) idle() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.app.Reconciler.WaitIdle(ctx); err != nil {
		s.t.Fatalf("reconciler did not settle: %v", err)
	}
}

// request sends a JSON request and decodes a 2xx answer into out.
func (s *liveServer) request(method, path, token string, body, out any) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.srv.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		s.t.Fatalf("%s %s = %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func (s *liveServer) api(method, path string, body, out any) {
	s.t.Helper()
	s.request(method, path, liveAdminToken, body, out)
}

func (s *liveServer) createUser(userName string) string {
	s.t.Helper()
	var out struct{ ID string }
	s.request(http.MethodPost, "/scim/v2/Users", s.scimToken, map[string]any{"userName": userName, "active": true}, &out)
	s.idle()
	return out.ID
}

func (s *liveServer) createGroup(name string, members ...string) string {
	s.t.Helper()
	list := []any{}
	for _, m := range members {
		list = append(list, map[string]any{"value": m})
	}
	var out struct{ ID string }
	s.request(http.MethodPost, "/scim/v2/Groups", s.scimToken, map[string]any{"displayName": name, "members": list}, &out)
	s.idle()
	return out.ID
}

func (s *liveServer) revision() string {
	s.t.Helper()
	var st struct{ Revision string }
	s.api(http.MethodGet, "/api/v1/policy", nil, &st)
	return st.Revision
}

// editLivePolicy rewrites a live policy file and reloads it.
func (s *liveServer) editLivePolicy(file string, edit func(string) string) {
	s.t.Helper()
	writeEdit(s.t, s.policies, file, edit)
	s.api(http.MethodPost, "/api/v1/policy/reload", nil, nil)
	s.idle()
}

func writeEdit(t *testing.T, dir, file string, edit func(string) string) {
	t.Helper()
	path := filepath.Join(dir, file)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	next := edit(string(b))
	if next == string(b) {
		t.Fatalf("edit of %s changed nothing", file)
	}
	if err := os.WriteFile(path, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
}

// approvePending approves every pending change and waits for it.
func (s *liveServer) approvePending() {
	s.t.Helper()
	var out struct {
		Changes []struct{ ID string } `json:"changes"`
	}
	s.api(http.MethodGet, "/api/v1/changes?state=pending", nil, &out)
	for _, c := range out.Changes {
		s.api(http.MethodPost, "/api/v1/changes/"+c.ID+"/approve", nil, nil)
	}
	s.idle()
}

// states maps each teammate's userName to "role/access".
func (s *liveServer) states() map[string]string {
	s.t.Helper()
	var out struct {
		Teammates []teammateDoc `json:"teammates"`
	}
	s.api(http.MethodGet, "/api/v1/teammates", nil, &out)
	m := map[string]string{}
	for _, tm := range out.Teammates {
		m[tm.UserName] = fmt.Sprintf("%s/%v", tm.role(), tm.Access)
	}
	return m
}

func mapGroupLine(name, role string) func(string) string {
	return func(src string) string {
		return strings.Replace(src, "group_roles := {\n", fmt.Sprintf("group_roles := {\n\t%q: %q,\n", name, role), 1)
	}
}

// cliResult is what one in-process command run printed and returned.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs the scimd root command in process, as main does, with the
// server and admin token of s.
func (s *liveServer) runCLI(ctx context.Context, args ...string) cliResult {
	s.t.Helper()
	if s.srv != nil {
		args = append(args, "--server", s.srv.URL, "--token", liveAdminToken)
	}
	return runCLI(ctx, args...)
}

func runCLI(ctx context.Context, args ...string) cliResult {
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	res := cliResult{}
	var ee *exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.code
		if ee.err != nil {
			fmt.Fprintln(&errOut, "scimd:", ee.err)
		}
	default:
		res.code = 1
		fmt.Fprintln(&errOut, "scimd:", err)
	}
	res.stdout, res.stderr = out.String(), errOut.String()
	return res
}

func TestPlanCommandExitCodes(t *testing.T) {
	s := startLive(t)
	var admins, engineers []string
	for i := range 12 {
		admins = append(admins, s.createUser(fmt.Sprintf("admin%02d@example.com", i)))
	}
	engineers = append(engineers, s.createUser("eng0@example.com"), s.createUser("eng1@example.com"))
	s.createUser("someone@example.com")
	s.createGroup("Platform Admins", admins...)
	s.createGroup("Engineering", engineers...)
	s.editLivePolicy("groups.rego", mapGroupLine("Platform Admins", "admin"))
	s.approvePending() // granting admin to 12 is held by the escalation guard
	if got := s.states()["admin03@example.com"]; got != "admin/true" {
		t.Fatalf("setup: admin03 is %s", got)
	}

	tests := []struct {
		name   string
		edit   map[string]func(string) string
		format string
		code   int
		check  func(t *testing.T, r cliResult)
	}{
		{
			name:   "mapping a new group lists exactly its members",
			edit:   map[string]func(string) string{"groups.rego": mapGroupLine("Engineering", "support")},
			format: "json",
			code:   review.ExitChanges,
			check: func(t *testing.T, r cliResult) {
				var res review.PlanResult
				if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
					t.Fatalf("json output: %v\n%s", err, r.stdout)
				}
				var got []string
				for _, c := range res.Changes {
					if c.To.Role != "support" || c.From.Access {
						t.Errorf("change %+v", c)
					}
					got = append(got, c.UserName)
				}
				if slices.Sort(got); !slices.Equal(got, []string{"eng0@example.com", "eng1@example.com"}) {
					t.Fatalf("plan changes %v, want exactly the Engineering members", got)
				}
			},
		},
		{
			name:   "text output",
			edit:   map[string]func(string) string{"groups.rego": mapGroupLine("Engineering", "support")},
			format: "text",
			code:   review.ExitChanges,
			check: func(t *testing.T, r cliResult) {
				for _, want := range []string{"+ Engineering  inactive → support", "+ eng0@example.com  no access → support", "Plan: +2 ~0 \u22120", "Nothing was applied."} {
					if !strings.Contains(r.stdout, want) {
						t.Errorf("text plan lacks %q:\n%s", want, r.stdout)
					}
				}
			},
		},
		{
			name: "unmapping the admin group exits 3",
			edit: map[string]func(string) string{"groups.rego": func(s string) string {
				return strings.Replace(s, "\t\"Platform Admins\": \"admin\",\n", "", 1)
			}},
			format: "markdown",
			code:   review.ExitHeld,
			check: func(t *testing.T, r cliResult) {
				for _, want := range []string{review.PlanMarker, "`+0 ~0 \u221212`", "**hold**", "#### Lose access (12)"} {
					if !strings.Contains(r.stdout, want) {
						t.Errorf("markdown plan lacks %q:\n%s", want, r.stdout)
					}
				}
			},
		},
		{
			name: "a failing test exits 1 naming it",
			edit: map[string]func(string) string{"groups_test.rego": func(s string) string {
				return s + "\ntest_engineering_is_mapped if {\n\tscimd.group == {\"role\": \"support\"} with input as {\"group\": {\"displayName\": \"Engineering\"}}\n}\n"
			}},
			format: "text",
			code:   review.ExitError,
			check: func(t *testing.T, r cliResult) {
				if !strings.Contains(r.stderr, "test data.scimd_test.test_engineering_is_mapped failed") || !strings.Contains(r.stderr, "groups_test.rego:") {
					t.Fatalf("stderr does not name the failing test and its file:line:\n%s", r.stderr)
				}
				if !strings.Contains(r.stdout, "REFUSED at the test stage") {
					t.Fatalf("stdout:\n%s", r.stdout)
				}
			},
		},
		{
			name:   "the live policy exits 0",
			format: "text",
			code:   review.ExitNoChange,
			check: func(t *testing.T, r cliResult) {
				if !strings.Contains(r.stdout, "No changes") {
					t.Fatalf("stdout:\n%s", r.stdout)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rev, states := s.revision(), s.states()
			dir := copyDir(t, s.policies)
			for file, edit := range tt.edit {
				writeEdit(t, dir, file, edit)
			}
			r := s.runCLI(context.Background(), "plan", "--policies", dir, "--format", tt.format)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.code, r.stdout, r.stderr)
			}
			tt.check(t, r)
			s.idle()
			if got := s.revision(); got != rev {
				t.Fatalf("plan changed the live revision %s → %s", rev, got)
			}
			if got := s.states(); fmt.Sprint(got) != fmt.Sprint(states) {
				t.Fatalf("plan changed teammates:\n%v\n→\n%v", states, got)
			}
		})
	}

	t.Run("usage errors exit 1", func(t *testing.T) {
		for _, args := range [][]string{
			{"plan", "--policies", t.TempDir()},
			{"plan", "--policies", s.policies, "--format", "yaml"},
		} {
			if r := s.runCLI(context.Background(), args...); r.code != 1 || r.stderr == "" {
				t.Errorf("%v: exit %d stderr %q", args, r.code, r.stderr)
			}
		}
	})
}
