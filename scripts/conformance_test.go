// Package scripts holds tests for the repository's shell scripts.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestConformanceSkipsWithoutSuites runs scripts/conformance.sh from a copy
// of the repository layout that has no ../shared/conformance: outside CI it
// must skip with one line naming CONFORMANCE_SUITES; in CI, or when the
// suites are asked for, a missing suite is a failure.
func TestConformanceSkipsWithoutSuites(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	script, err := os.ReadFile("conformance.sh")
	if err != nil {
		t.Fatal(err)
	}
	clone := filepath.Join(t.TempDir(), "clone")
	if err := os.MkdirAll(filepath.Join(clone, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(clone, "scripts", "conformance.sh")
	if err := os.WriteFile(path, script, 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "nowhere")
	tests := []struct {
		name     string
		env      []string
		wantOK   bool
		wantLine string
	}{
		{"fresh clone", nil, true, "SKIPPED"},
		{"ci", []string{"CI=true"}, false, "suites not found"},
		{"required", []string{"CONFORMANCE_REQUIRED=1"}, false, "suites not found"},
		{"explicit path", []string{"CONFORMANCE_SUITES=" + missing}, false, "suites not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("bash", path)
			cmd.Env = append(cleanEnv(), tt.env...)
			out, err := cmd.CombinedOutput()
			if (err == nil) != tt.wantOK {
				t.Fatalf("exit error %v, want ok=%v; output:\n%s", err, tt.wantOK, out)
			}
			text := strings.TrimSpace(string(out))
			if !strings.Contains(text, tt.wantLine) {
				t.Fatalf("output %q does not contain %q", text, tt.wantLine)
			}
			if strings.Count(text, "\n") != 0 {
				t.Fatalf("want one line, got:\n%s", text)
			}
			if tt.wantOK && !strings.Contains(text, "CONFORMANCE_SUITES=") {
				t.Fatalf("skip line %q does not say how to run the suites", text)
			}
		})
	}
}

// cleanEnv is the test's environment without the variables that decide
// whether the suites are required.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "CI", "CONFORMANCE_REQUIRED", "CONFORMANCE_SUITES":
			continue
		}
		env = append(env, kv)
	}
	return env
}
