package policy

import (
	"bufio"
	"bytes"
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
	head, err := os.ReadFile(filepath.Join(gitDir, "HEAD"))
	if err != nil {
		return ""
	}
	h := strings.TrimSpace(string(head))
	ref, isRef := strings.CutPrefix(h, "ref: ")
	if !isRef {
		return validHash(h)
	}
	common := gitDir
	if b, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		c := strings.TrimSpace(string(b))
		if !filepath.IsAbs(c) {
			c = filepath.Join(gitDir, c)
		}
		common = c
	}
	for _, d := range []string{gitDir, common} {
		if b, err := os.ReadFile(filepath.Join(d, filepath.FromSlash(ref))); err == nil {
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
			b, err := os.ReadFile(p)
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
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		hash, name, ok := strings.Cut(sc.Text(), " ")
		if ok && name == ref {
			return validHash(hash)
		}
	}
	return ""
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
