package policywatch_test

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/policy/policytest"
)

// startMinimal starts a manager on a directory holding the minimal set and
// waits for its first activation.
func startMinimal(t *testing.T) (*harness, string) {
	t.Helper()
	dir := t.TempDir()
	if err := policytest.WriteDir(dir, policytest.Minimal()); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, dir)
	h.start()
	rev := revisionOf(t, policytest.Minimal())
	h.waitActive(rev)
	h.expectActivations(rev)
	return h, rev
}

func TestEditInPlace(t *testing.T) {
	h, rev1 := startMinimal(t)
	v2 := policytest.WithMarker("v2")
	writeFile(t, filepath.Join(h.dir, "policy.rego"), v2["policy.rego"])
	rev2 := revisionOf(t, v2)
	h.waitActive(rev2)
	h.settle()
	h.expectActivations(rev1, rev2)
}

func TestWriteByRename(t *testing.T) {
	h, rev1 := startMinimal(t)
	v2 := policytest.WithMarker("v2")
	// An atomic save: write a temporary file, then rename it over the
	// original (the original's inode, and any watch on it, is gone).
	tmp := filepath.Join(h.dir, ".policy.rego.swp")
	writeFile(t, tmp, v2["policy.rego"])
	if err := os.Rename(tmp, filepath.Join(h.dir, "policy.rego")); err != nil {
		t.Fatal(err)
	}
	rev2 := revisionOf(t, v2)
	h.waitActive(rev2)
	h.settle()
	h.expectActivations(rev1, rev2)

	// Same with a visible temporary name in a subdirectory of the set.
	v3 := policytest.WithMarker("v3")
	tmp = filepath.Join(h.dir, "policy.rego.tmp")
	writeFile(t, tmp, v3["policy.rego"])
	if err := os.Rename(tmp, filepath.Join(h.dir, "policy.rego")); err != nil {
		t.Fatal(err)
	}
	rev3 := revisionOf(t, v3)
	h.waitActive(rev3)
	h.settle()
	h.expectActivations(rev1, rev2, rev3)
}

func TestDeleteAndRecreate(t *testing.T) {
	h, rev1 := startMinimal(t)
	p := filepath.Join(h.dir, "policy.rego")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	v2 := policytest.WithMarker("v2")
	writeFile(t, p, v2["policy.rego"])
	rev2 := revisionOf(t, v2)
	h.waitActive(rev2)
	h.settle()
	// If the removal was seen on its own, it was refused (a set of tests
	// only), which activates nothing.
	h.expectActivations(rev1, rev2)
}

// kubeSwap updates a ConfigMap volume the way the kubelet does: write the
// new files into a new timestamped directory, point ..data at it through a
// renamed temporary link, delete the old directory. The top-level files are
// links through ..data and never change themselves.
func kubeSwap(t *testing.T, dir, oldStamp, newStamp string, files map[string][]byte) {
	t.Helper()
	if err := policytest.WriteDir(filepath.Join(dir, newStamp), files); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(newStamp, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	if oldStamp != "" {
		if err := os.RemoveAll(filepath.Join(dir, oldStamp)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKubernetesConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	v1 := policytest.Minimal()
	kubeSwap(t, dir, "", "..2026_01_01_00_00_00.000000001", v1)
	h := newHarness(t, dir)
	h.start()
	rev1 := revisionOf(t, v1)
	h.waitActive(rev1)

	v2 := policytest.WithMarker("v2")
	kubeSwap(t, dir, "..2026_01_01_00_00_00.000000001", "..2026_01_02_00_00_00.000000002", v2)
	rev2 := revisionOf(t, v2)
	h.waitActive(rev2)
	h.settle()
	h.expectActivations(rev1, rev2)

	// A new key in the ConfigMap: a new file and a new top-level link.
	v3 := maps.Clone(v2)
	v3["extra.rego"] = []byte("package scimd\n\nextra := 3\n")
	kubeSwap(t, dir, "..2026_01_02_00_00_00.000000002", "..2026_01_03_00_00_00.000000003", v3)
	rev3 := revisionOf(t, v3)
	h.waitActive(rev3)
	h.settle()
	h.expectActivations(rev1, rev2, rev3)
}

func TestNewSubdirectoryIsWatched(t *testing.T) {
	h, rev1 := startMinimal(t)
	v2 := maps.Clone(policytest.Minimal())
	v2["teams/extra.rego"] = []byte("package scimd\n\nextra := 1\n")
	writeFile(t, filepath.Join(h.dir, "teams", "extra.rego"), v2["teams/extra.rego"])
	rev2 := revisionOf(t, v2)
	h.waitActive(rev2)
	h.settle()

	// An edit inside the new directory is seen too.
	v3 := maps.Clone(v2)
	v3["teams/extra.rego"] = []byte("package scimd\n\nextra := 2\n")
	writeFile(t, filepath.Join(h.dir, "teams", "extra.rego"), v3["teams/extra.rego"])
	rev3 := revisionOf(t, v3)
	h.waitActive(rev3)
	h.settle()
	h.expectActivations(rev1, rev2, rev3)

	// Removing the directory is a change too.
	if err := os.RemoveAll(filepath.Join(h.dir, "teams")); err != nil {
		t.Fatal(err)
	}
	h.waitActive(rev1)
	h.settle()
	h.expectActivations(rev1, rev2, rev3, rev1)
}

func TestUnchangedContentIsNotReactivated(t *testing.T) {
	h, rev1 := startMinimal(t)
	p := filepath.Join(h.dir, "policy.rego")
	// Rewrite the same bytes, touch, and add files that are not policy.
	writeFile(t, p, policytest.Minimal()["policy.rego"])
	now := h.m.Status().LoadedAt
	if err := os.Chtimes(p, now, now); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(h.dir, "README.md"), []byte("notes"))
	writeFile(t, filepath.Join(h.dir, ".editor.swp"), []byte("swap"))
	h.waitFor("a reload", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.reloads) > 1
	})
	h.settle()
	if err := h.m.Reload(t.Context(), "api"); err != nil {
		t.Fatal(err)
	}
	h.expectActivations(rev1)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.reloads[1:] {
		if !strings.HasSuffix(r, "/unchanged") {
			t.Errorf("reload %s; want only unchanged after the first", r)
		}
	}
}

func TestGitCheckoutAndPull(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "policies")
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", root, "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if err := policytest.WriteDir(dir, policytest.Minimal()); err != nil {
		t.Fatal(err)
	}
	git("init", "-q", "-b", "main")
	git("add", ".")
	git("commit", "-q", "-m", "v1")
	c1 := git("rev-parse", "HEAD")
	git("checkout", "-q", "-b", "next")
	v2 := policytest.WithMarker("v2")
	v2["more/extra.rego"] = []byte("package scimd\n\nextra := 1\n")
	if err := policytest.WriteDir(dir, v2); err != nil {
		t.Fatal(err)
	}
	git("add", ".")
	git("commit", "-q", "-m", "v2")
	c2 := git("rev-parse", "HEAD")
	git("checkout", "-q", "main")

	h := newHarness(t, dir)
	h.start()
	src1, _ := policy.NewSource(policytest.Minimal())
	src1.Commit = c1
	h.waitActive(src1.Revision())
	if !strings.Contains(src1.Revision(), "@"+c1[:12]) {
		t.Fatalf("revision %s does not name the commit", src1.Revision())
	}

	git("checkout", "-q", "next") // as a `git pull` would fast-forward
	src2, _ := policy.NewSource(v2)
	src2.Commit = c2
	h.waitActive(src2.Revision())
	h.settle()

	git("checkout", "-q", "main")
	h.waitActive(src1.Revision())
	h.settle()
	h.expectActivations(src1.Revision(), src2.Revision(), src1.Revision())
}
