package policy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/policy/policytest"
)

func TestReadDir(t *testing.T) {
	dir := t.TempDir()
	files := policytest.Minimal()
	files["sub/data.json"] = []byte(`{"a": 1}`)
	files["sub/deeper/more.yml"] = []byte("b: 2\n")
	files["notes.txt"] = []byte("ignored")
	files[".hidden.rego"] = []byte("ignored")
	files[".git/x.rego"] = []byte("ignored")
	files["sub/.swap.rego"] = []byte("ignored")
	if err := policytest.WriteDir(dir, files); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "missing.rego"), filepath.Join(dir, "dangling.rego")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(dir, "sub", "loop")); err != nil {
		t.Fatal(err)
	}
	src, err := policy.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(src.Names(), ",")
	// The loop link is followed once: its target (dir) was already read.
	want := "policy.rego,policy_test.rego,sub/data.json,sub/deeper/more.yml"
	if got != want {
		t.Errorf("files %s, want %s", got, want)
	}
	if _, err := policy.ReadDir(filepath.Join(dir, "nope")); err == nil {
		t.Error("ReadDir of a missing directory succeeded")
	}
}

// kubeLayout writes files the way the kubelet mounts a ConfigMap: the data
// in a timestamped dot-directory, ..data linking to it, and each file a
// link through ..data.
func kubeLayout(t *testing.T, dir, stamp string, files map[string][]byte) {
	t.Helper()
	if err := policytest.WriteDir(filepath.Join(dir, stamp), files); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(stamp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadDirKubernetesConfigMap(t *testing.T) {
	dir := t.TempDir()
	kubeLayout(t, dir, "..2026_01_01_00_00_00.000000001", policytest.Minimal())
	src, err := policy.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(src.Names(), ","); got != "policy.rego,policy_test.rego" {
		t.Errorf("files %s: each module must be read once, through its link", got)
	}
	want, _ := policy.NewSource(policytest.Minimal())
	if src.Digest() != want.Digest() {
		t.Error("digest differs from the same files in memory")
	}
}

func TestGitCommit(t *testing.T) {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	const sha2 = "89abcdef0123456789abcdef0123456789abcdef"
	write := func(t *testing.T, p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("loose ref", func(t *testing.T) {
		root := t.TempDir()
		write(t, filepath.Join(root, ".git/HEAD"), "ref: refs/heads/main\n")
		write(t, filepath.Join(root, ".git/refs/heads/main"), sha+"\n")
		os.MkdirAll(filepath.Join(root, "policies"), 0o755)
		if got := policy.GitCommit(filepath.Join(root, "policies")); got != sha {
			t.Errorf("got %q", got)
		}
	})
	t.Run("packed ref", func(t *testing.T) {
		root := t.TempDir()
		write(t, filepath.Join(root, ".git/HEAD"), "ref: refs/heads/main\n")
		write(t, filepath.Join(root, ".git/packed-refs"), "# pack-refs with: peeled fully-peeled sorted\n"+sha2+" refs/heads/other\n"+sha+" refs/heads/main\n")
		if got := policy.GitCommit(root); got != sha {
			t.Errorf("got %q", got)
		}
	})
	t.Run("detached", func(t *testing.T) {
		root := t.TempDir()
		write(t, filepath.Join(root, ".git/HEAD"), sha2+"\n")
		if got := policy.GitCommit(root); got != sha2 {
			t.Errorf("got %q", got)
		}
	})
	t.Run("worktree", func(t *testing.T) {
		root := t.TempDir()
		main := filepath.Join(root, "main/.git")
		write(t, filepath.Join(main, "refs/heads/feature"), sha2+"\n")
		write(t, filepath.Join(main, "worktrees/wt/HEAD"), "ref: refs/heads/feature\n")
		write(t, filepath.Join(main, "worktrees/wt/commondir"), "../..\n")
		write(t, filepath.Join(root, "wt/.git"), "gitdir: "+filepath.Join(main, "worktrees/wt")+"\n")
		if got := policy.GitCommit(filepath.Join(root, "wt")); got != sha2 {
			t.Errorf("got %q", got)
		}
	})
	t.Run("none", func(t *testing.T) {
		if got := policy.GitCommit(t.TempDir()); got != "" {
			t.Errorf("got %q outside a work tree", got)
		}
	})
	t.Run("real git", func(t *testing.T) {
		if _, err := exec.LookPath("git"); err != nil {
			t.Skip("git not installed")
		}
		root := t.TempDir()
		if err := policytest.WriteDir(filepath.Join(root, "policies"), policytest.Minimal()); err != nil {
			t.Fatal(err)
		}
		git := func(args ...string) string {
			cmd := exec.Command("git", append([]string{"-C", root, "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"}, args...)...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("git %v: %v\n%s", args, err, out)
			}
			return strings.TrimSpace(string(out))
		}
		git("init", "-q", "-b", "main")
		git("add", ".")
		git("commit", "-q", "-m", "one")
		git("pack-refs", "--all")
		if got, want := policy.GitCommit(filepath.Join(root, "policies")), git("rev-parse", "HEAD"); got != want {
			t.Errorf("after pack-refs: got %q, want %q", got, want)
		}
		git("commit", "-q", "--allow-empty", "-m", "two")
		src, err := policy.ReadDir(filepath.Join(root, "policies"))
		if err != nil {
			t.Fatal(err)
		}
		if want := git("rev-parse", "HEAD"); src.Commit != want {
			t.Errorf("Source.Commit = %q, want %q", src.Commit, want)
		}
	})
}
