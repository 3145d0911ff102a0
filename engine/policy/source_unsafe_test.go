//go:build unix

package policy_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/policy/policytest"
)

// TestReadDirRefusesUnsafeFiles checks that only regular files whose real
// path stays inside the policy directory are read, that every read is
// bounded, and that the refusal names the file.
func TestReadDirRefusesUnsafeFiles(t *testing.T) {
	const secret = "package scimd\n\n# s3cr3t-token-value\n"
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir, outside string)
		refused string // file the refusal must name; "" when the set loads
		why     string // words the refusal must carry
		files   string // files read, when the set loads
	}{
		{
			name: "link to a file outside",
			setup: func(t *testing.T, dir, outside string) {
				symlink(t, filepath.Join(outside, "secret.rego"), filepath.Join(dir, "leak.rego"))
			},
			refused: "leak.rego", why: "outside the policy directory",
		},
		{
			name: "relative link escaping through ..",
			setup: func(t *testing.T, dir, outside string) {
				symlink(t, filepath.Join("..", filepath.Base(outside), "secret.rego"), filepath.Join(dir, "leak.rego"))
			},
			refused: "leak.rego", why: "outside the policy directory",
		},
		{
			name: "link to /proc/self/pagemap (size 0, endless to read)",
			setup: func(t *testing.T, dir, outside string) {
				if _, err := os.Stat("/proc/self/pagemap"); err != nil {
					t.Skip("no /proc/self/pagemap here")
				}
				symlink(t, "/proc/self/pagemap", filepath.Join(dir, "sub", "pagemap.rego"))
			},
			refused: "sub/pagemap.rego", why: "outside the policy directory",
		},
		{
			name: "link to a directory outside",
			setup: func(t *testing.T, dir, outside string) {
				symlink(t, outside, filepath.Join(dir, "shared"))
			},
			refused: "shared", why: "outside the policy directory",
		},
		{
			name: "FIFO with a policy name",
			setup: func(t *testing.T, dir, outside string) {
				if err := syscall.Mkfifo(filepath.Join(dir, "pipe.rego"), 0o644); err != nil {
					t.Skip("mkfifo:", err)
				}
			},
			refused: "pipe.rego", why: "not a regular file",
		},
		{
			name: "link to a device",
			setup: func(t *testing.T, dir, outside string) {
				symlink(t, "/dev/zero", filepath.Join(dir, "zero.rego"))
			},
			refused: "zero.rego", why: "outside the policy directory",
		},
		{
			name: "huge file",
			setup: func(t *testing.T, dir, outside string) {
				f, err := os.Create(filepath.Join(dir, "huge.json"))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := f.Truncate(1 << 30); err != nil { // sparse: no disk used
					t.Fatal(err)
				}
			},
			refused: "huge.json", why: "byte limit",
		},
		{
			name: "links that stay inside are followed, once",
			setup: func(t *testing.T, dir, outside string) {
				symlink(t, filepath.Join("..", "policy.rego"), filepath.Join(dir, "sub", "alias.rego"))
				symlink(t, "..", filepath.Join(dir, "sub", "loop"))
				symlink(t, filepath.Join(outside, "secret.rego"), filepath.Join(dir, "notes.txt")) // not a policy file
			},
			files: "policy.rego,policy_test.rego,sub/alias.rego",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir, outside := filepath.Join(parent, "policies"), filepath.Join(parent, "elsewhere")
			if err := policytest.WriteDir(dir, policytest.Minimal()); err != nil {
				t.Fatal(err)
			}
			if err := policytest.WriteDir(outside, map[string][]byte{"secret.rego": []byte(secret)}); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, dir, outside)
			done := make(chan struct{})
			var src *policy.Source
			var err error
			go func() {
				defer close(done)
				src, err = policy.ReadDir(dir)
			}()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("ReadDir did not return")
			}
			if tc.refused == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := strings.Join(src.Names(), ","); got != tc.files {
					t.Errorf("files %s, want %s", got, tc.files)
				}
				return
			}
			if err == nil {
				t.Fatalf("ReadDir read %v; want %s refused", src.Names(), tc.refused)
			}
			msg := err.Error()
			if !strings.Contains(msg, "refused "+tc.refused+":") || !strings.Contains(msg, tc.why) {
				t.Errorf("refusal %q does not name %s with %q", msg, tc.refused, tc.why)
			}
			if strings.Contains(msg, "s3cr3t") {
				t.Errorf("refusal leaks the file's content: %q", msg)
			}
		})
	}
}

// TestReadDirKubernetesProjectedRoot reads a ConfigMap mount whose root is
// itself reached through a link (as when the policy directory is a link to
// the volume), and a file updated atomically by swapping ..data.
func TestReadDirKubernetesProjectedRoot(t *testing.T) {
	parent := t.TempDir()
	vol := filepath.Join(parent, "volume")
	kubeLayout(t, vol, "..2026_01_01_00_00_00.000000001", policytest.Minimal())
	symlink(t, vol, filepath.Join(parent, "policies"))
	src, err := policy.ReadDir(filepath.Join(parent, "policies"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(src.Names(), ","); got != "policy.rego,policy_test.rego" {
		t.Errorf("files %s", got)
	}
}

func TestReadDirBoundedWalk(t *testing.T) {
	dir := t.TempDir()
	files := policytest.Minimal()
	for i := range 50 {
		files[filepath.Join("many", strings.Repeat("x", i+1)+".txt")] = nil
	}
	if err := policytest.WriteDir(dir, files); err != nil {
		t.Fatal(err)
	}
	_, err := policy.ReadDirLimited(dir, 1<<20, 1<<20, 20, 8, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "more than 20 entries") {
		t.Errorf("walk over the entry budget: %v", err)
	}
	_, err = policy.ReadDirLimited(dir, 1<<20, 1<<20, 1000, 8, -time.Second)
	if err == nil || !strings.Contains(err.Error(), "took longer than") {
		t.Errorf("walk over its time budget: %v", err)
	}
	_, err = policy.ReadDirLimited(dir, 1<<20, 100, 1000, 8, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "in all") {
		t.Errorf("set over the total size: %v", err)
	}
	if _, err := policy.ReadDirLimited(dir, 1<<20, 1<<20, 1000, 8, time.Minute); err != nil {
		t.Errorf("within every limit: %v", err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
