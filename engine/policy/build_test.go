package policy_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/policy/policytest"
)

func TestLoadFilesMinimal(t *testing.T) {
	s, err := policy.LoadFiles(context.Background(), policytest.Minimal())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Roles(), ","); got != "admin,viewer" {
		t.Errorf("Roles() = %s", got)
	}
	if len(s.Tests()) != 2 {
		t.Errorf("ran %d tests, want 2", len(s.Tests()))
	}
	if len(s.Revision()) != 16 || s.Commit() != "" {
		t.Errorf("Revision() = %q, Commit() = %q; want a 16-digit digest prefix and no commit", s.Revision(), s.Commit())
	}
	if got := strings.Join(s.Files(), ","); got != "policy.rego,policy_test.rego" {
		t.Errorf("Files() = %s", got)
	}
}

func TestRefusals(t *testing.T) {
	fix := policytest.Minimal
	replace := func(name, old, new string) map[string][]byte {
		return policytest.Replace(fix(), name, old, new)
	}
	tests := []struct {
		name  string
		files map[string][]byte
		stage policy.Stage
		loc   string // expected Location() of the first problem, "" = any
		msg   string // substring of the first problem
	}{
		{"syntax error", policytest.SyntaxError(), policy.StageParse, "", "rego_parse_error"},
		{"v0 syntax", replace("policy.rego", `group := {"role": mapping[input.group.displayName]}`, `group = {"role": mapping[input.group.displayName]} { true }`), policy.StageParse, "", "rego_parse_error"},
		{"bad json", func() map[string][]byte { f := fix(); f["data.json"] = []byte("{"); return f }(), policy.StageParse, "", "data.json"},
		{"failing test", policytest.FailingTest(), policy.StageTest, "policy_test.rego:5", "test_admins_get_admin failed"},
		{"test error", replace("policy_test.rego", `not scimd.teammate.access with input as {"user": {}, "groups": []}`, "f(1) == 1\n}\n\nf(_) := 1\n\nf(_) := 2\n\nx if {\n\ttrue"), policy.StageTest, "policy_test.rego:9", "raised an error"},
		{"no tests", func() map[string][]byte { f := fix(); delete(f, "policy_test.rego"); return f }(), policy.StageTest, "", "no tests"},
		{"only tests", func() map[string][]byte { f := fix(); delete(f, "policy.rego"); return f }(), policy.StageRead, "", "only *_test.rego"},
		{"empty", map[string][]byte{}, policy.StageRead, "", "no policy files"},
		{"strict: unused variable", replace("policy.rego", `marker := "v1"`, "marker := \"v1\" if {\n\tx := 1\n}"), policy.StageCompile, "policy.rego:8", "assigned var x unused"},
		{"unsafe variable", replace("policy.rego", `marker := "v1"`, `marker := y`), policy.StageCompile, "policy.rego:7", "var y is unsafe"},
		{"http.send", policytest.HTTPSend(), policy.StageBuiltin, "policy.rego:7", "http.send is not allowed"},
		{"time.now_ns", replace("policy.rego", `marker := "v1"`, `marker := time.now_ns()`), policy.StageBuiltin, "policy.rego:7", "time.now_ns is not allowed"},
		{"rand.intn", replace("policy.rego", `marker := "v1"`, `marker := rand.intn("x", 10)`), policy.StageBuiltin, "policy.rego:7", "rand.intn"},
		{"uuid.rfc4122", replace("policy.rego", `marker := "v1"`, `marker := uuid.rfc4122("x")`), policy.StageBuiltin, "policy.rego:7", "uuid.rfc4122"},
		{"net.lookup_ip_addr", replace("policy.rego", `marker := "v1"`, `marker := net.lookup_ip_addr("example.com")`), policy.StageBuiltin, "policy.rego:7", "net.lookup_ip_addr"},
		{"opa.runtime", replace("policy.rego", `marker := "v1"`, `marker := opa.runtime()`), policy.StageBuiltin, "policy.rego:7", "opa.runtime"},
		{"trace in a body", replace("policy.rego", `marker := "v1"`, "marker := \"v1\" if {\n\ttrace(\"hello\")\n}"), policy.StageBuiltin, "policy.rego:8", "trace"},
		{"http.send in a test", replace("policy_test.rego", `import data.scimd`, "import data.scimd\n\nx := http.send({})"), policy.StageBuiltin, "policy_test.rego:5", "http.send"},
		{"roles missing", replace("policy.rego", `roles := ["admin", "viewer"]`, ``), policy.StageContract, "", "data.scimd.roles is undefined"},
		{"roles empty", replace("policy.rego", `roles := ["admin", "viewer"]`, `roles := []`), policy.StageContract, "policy.rego:3", "must not be empty"},
		{"roles not strings", replace("policy.rego", `roles := ["admin", "viewer"]`, `roles := ["admin", 1]`), policy.StageContract, "policy.rego:3", "array of strings"},
		{"roles an object", replace("policy.rego", `roles := ["admin", "viewer"]`, `roles := {"admin": 1}`), policy.StageContract, "policy.rego:3", "array of strings"},
		{"roles duplicated", replace("policy.rego", `roles := ["admin", "viewer"]`, `roles := ["admin", "viewer", "admin"]`), policy.StageContract, "policy.rego:3", "twice"},
		{"group missing", replace("policy.rego", `group := {"role": mapping[input.group.displayName]}`, ``), policy.StageContract, "", "data.scimd.group is not defined"},
		{"teammate missing", replace("policy.rego", `teammate := {`, `other := {`), policy.StageContract, "", "data.scimd.teammate is not defined"},
		{"group a function", replace("policy.rego", `group := {"role": mapping[input.group.displayName]}`, `group(x) := {"role": mapping[x]}`), policy.StageContract, "policy.rego:9", "must be a rule, not a function"},
		{"unknown role in mapping", policytest.ContractBreak(), policy.StageContract, "policy.rego:5", `"superuser"`},
		{"unknown role from a rule", replace("policy.rego", `"role": "viewer", "reasons": ["member of Viewers"]`, `"role": "owner", "reasons": ["member of Viewers"]`), policy.StageContract, "", `"owner"`},
		{"decision shape", replace("policy.rego", `"reasons": ["no mapped group"]`, `"reasons": "no mapped group"`), policy.StageContract, "", "reasons must be an array of strings"},
		{"no decision for a user in no group", replace("policy.rego", ` else := {"excluded": false, "access": false, "role": null, "reasons": ["no mapped group"]}`, ``), policy.StageContract, "", "data.scimd.teammate is undefined"},
		{"conflicting rules", func() map[string][]byte {
			f := fix()
			f["more.rego"] = []byte("package scimd\n\nmapping := {}\n")
			return f
		}(), policy.StageTest, "policy_test.rego:5", "eval_conflict_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := policy.LoadFiles(context.Background(), tt.files)
			var re *policy.RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("LoadFiles = %v, %v; want a *RefusedError", s, err)
			}
			if re.Stage != tt.stage {
				t.Errorf("stage %s, want %s: %v", re.Stage, tt.stage, err)
			}
			if len(re.Problems) == 0 {
				t.Fatalf("no problems: %v", err)
			}
			p := re.Problems[0]
			if tt.loc != "" && p.Location() != tt.loc {
				t.Errorf("location %q, want %q: %v", p.Location(), tt.loc, err)
			}
			if !strings.Contains(p.Message, tt.msg) {
				t.Errorf("message %q does not contain %q", p.Message, tt.msg)
			}
			if re.Revision == "" && tt.stage != policy.StageRead {
				t.Errorf("refusal without revision: %v", err)
			}
			if !strings.Contains(err.Error(), p.String()) {
				t.Errorf("Error() %q does not contain the first problem %q", err.Error(), p)
			}
		})
	}
}

func TestDataFiles(t *testing.T) {
	f := policytest.Replace(policytest.Minimal(), "policy.rego",
		`mapping := {"Admins": "admin", "Viewers": "viewer"}`,
		`mapping := object.union(data.tables, data.more.tables)`)
	f["tables/admins.json"] = []byte(`{"Admins": "admin"}`)
	f["more/tables/viewers.yaml"] = []byte("Viewers: viewer\n")
	f[".hidden/ignored.rego"] = []byte("not rego at all")
	f["README.md"] = []byte("ignored")
	s, err := policy.LoadFiles(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, want := range map[string]string{"Admins": "admin", "Viewers": "viewer"} {
		role, active, err := s.Group(ctx, policy.Group{DisplayName: name})
		if err != nil || !active || role != want {
			t.Errorf("Group(%s) = %q, %v, %v; want %q", name, role, active, err, want)
		}
	}
	if got := len(s.Files()); got != 4 {
		t.Errorf("%d files, want 4 (hidden and non-policy files dropped): %v", got, s.Files())
	}
}

func TestNewSourceRejectsEscapingPaths(t *testing.T) {
	for _, p := range []string{"../x.rego", "/etc/x.rego"} {
		if _, err := policy.NewSource(map[string][]byte{p: nil}); err == nil {
			t.Errorf("NewSource(%q) accepted", p)
		}
	}
}

func TestDigest(t *testing.T) {
	a, _ := policy.NewSource(policytest.Minimal())
	b, _ := policy.NewSource(policytest.Minimal())
	if a.Digest() != b.Digest() {
		t.Error("same files, different digests")
	}
	c, _ := policy.NewSource(policytest.WithMarker("v2"))
	if a.Digest() == c.Digest() {
		t.Error("different content, same digest")
	}
	// Moving bytes between the name and the content changes the digest.
	d, _ := policy.NewSource(map[string][]byte{"a.rego": []byte("bc")})
	e, _ := policy.NewSource(map[string][]byte{"a.regob": []byte("c")})
	if d.Digest() == e.Digest() {
		t.Error("name/content boundary not part of the digest")
	}
	a.Commit = "0123456789abcdef0123456789abcdef01234567"
	if got, want := a.Revision(), a.Digest()[:16]+"@0123456789ab"; got != want {
		t.Errorf("Revision() = %s, want %s", got, want)
	}
}

func TestCapabilities(t *testing.T) {
	names := policy.DisallowedBuiltins()
	for _, want := range []string{"http.send", "time.now_ns", "rand.intn", "net.lookup_ip_addr", "uuid.rfc4122", "opa.runtime", "trace"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("%s is not disallowed", want)
		}
	}
	for _, b := range policy.Capabilities().Builtins {
		for _, n := range names {
			if b.Name == n {
				t.Errorf("Capabilities() still has %s", n)
			}
		}
	}
}

// A gate cut short by its context decides nothing: the error is not a
// refusal, so nothing is audited as refused during shutdown.
func TestBuildCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	src, _ := policy.NewSource(policytest.Minimal())
	_, err := policy.Build(ctx, src, policy.BuildOptions{})
	var re *policy.RefusedError
	if err == nil || errors.As(err, &re) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Build with a canceled context = %v; want context.Canceled, not a refusal", err)
	}
}

// TestUnknownRoleLocatedWhereItIsWritten: a mapping to a role missing from
// roles, added to the shipped groups.rego, is reported at that line of
// groups.rego, not at another file's object that merely holds a role
// (issue 12: it was reported at attributes.rego:15).
func TestUnknownRoleLocatedWhereItIsWritten(t *testing.T) {
	files := map[string][]byte{}
	root := filepath.Join("..", "..", "policies")
	err := fs.WalkDir(os.DirFS(root), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join(root, name))
		files[name] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	const anchor = "\t\"Intercom Viewers\": \"viewer\",\n"
	src := string(files["groups.rego"])
	at := strings.Index(src, anchor)
	if at < 0 {
		t.Fatalf("groups.rego no longer has %q", anchor)
	}
	files["groups.rego"] = []byte(src[:at+len(anchor)] + "\t\"Intercom Owners\": \"owner\",\n" + src[at+len(anchor):])
	line := strings.Count(src[:at+len(anchor)], "\n") + 1

	_, err = policy.LoadFiles(context.Background(), files)
	var re *policy.RefusedError
	if !errors.As(err, &re) || re.Stage != policy.StageContract || len(re.Problems) == 0 {
		t.Fatalf("LoadFiles = %v; want a contract refusal", err)
	}
	p := re.Problems[0]
	if want := fmt.Sprintf("groups.rego:%d", line); p.Location() != want || !strings.Contains(p.Message, `"owner"`) {
		t.Errorf("first problem %q at %q, want %q naming \"owner\"", p.Message, p.Location(), want)
	}
}
