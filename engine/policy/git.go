package policy

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// GitCommit returns the commit checked out in the git work tree that
// contains dir, or "" when there is none or it cannot be determined. It reads
// .git/HEAD, loose refs and packed-refs directly; git need not be installed.
func GitCommit(dir string) string {
	gitDir := findGitDir(dir)
	if gitDir == "" {
		return ""
	}
	head, err := readSmallFile(filepath.Join(gitDir, "HEAD"))
	if err != nil {
		return ""
	}
	h := strings.TrimSpace(string(head))
	ref, isRef := strings.CutPrefix(h, "ref: ")
	if !isRef {
		return validHash(h)
	}
	common := gitDir
	if b, err := readSmallFile(filepath.Join(gitDir, "commondir")); err == nil {
		c := strings.TrimSpace(string(b))
		if !filepath.IsAbs(c) {
			c = filepath.Join(gitDir, c)
		}
		common = c
	}
	for _, d := range []string{gitDir, common} {
		if b, err := readSmallFile(filepath.Join(d, filepath.FromSlash(ref))); err == nil {
			return validHash(strings.TrimSpace(string(b)))
		}
	}
	return packedRef(filepath.Join(common, "packed-refs"), ref)
}

// findGitDir walks up from dir to the first .git directory, or .git file
// ("gitdir: …", used by worktrees and submodules).
func findGitDir(dir string) string {
	d, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for {
		p := filepath.Join(d, ".git")
		if info, err := os.Stat(p); err == nil {
			if info.IsDir() {
				return p
			}
			b, err := readSmallFile(p)
			if err != nil {
				return ""
			}
			g, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir: ")
			if !ok {
				return ""
			}
			if !filepath.IsAbs(g) {
				g = filepath.Join(d, g)
			}
			return g
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
}

func packedRef(file, ref string) string {
	f, err := openRegular(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxPackedRefs))
	for sc.Scan() {
		hash, name, ok := strings.Cut(sc.Text(), " ")
		if ok && name == ref {
			return validHash(hash)
		}
	}
	return ""
}

// Bounds on what reading git metadata may cost: HEAD, refs and .git files
// are a line each; packed-refs is scanned, never held whole.
const (
	maxGitFile    = 4 << 10
	maxPackedRefs = 64 << 20
)

// openRegular opens name for reading if it is a regular file, without
// blocking on FIFOs or devices.
func openRegular(name string) (*os.File, error) {
	info, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	f, err := os.OpenFile(name, os.O_RDONLY|nonBlockFlag, 0)
	if err != nil {
		return nil, err
	}
	if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	return f, nil
}

// readSmallFile reads at most maxGitFile bytes of a regular file.
func readSmallFile(name string) ([]byte, error) {
	f, err := openRegular(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxGitFile))
}

// validHash returns h if it looks like a SHA-1 or SHA-256 object name.
func validHash(h string) string {
	if len(h) != 40 && len(h) != 64 {
		return ""
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return ""
		}
	}
	return h
}
