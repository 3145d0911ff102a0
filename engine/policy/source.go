package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Limits that keep a runaway directory from exhausting memory.
const (
	maxFileSize  = 8 << 20  // bytes per file
	maxTotalSize = 64 << 20 // bytes per set
	maxDepth     = 32       // directory nesting
)

// Source is an immutable, in-memory snapshot of a policy set's files. The
// digest and the compiled set are computed from exactly these bytes, so a
// file changing while it is read cannot make the revision lie.
type Source struct {
	// Dir is the directory the files came from ("" for in-memory sets). It is
	// used only in messages.
	Dir string
	// Files maps slash-separated paths, relative to Dir, to their content.
	// Only policy files (*.rego, *.json, *.yaml, *.yml) are kept.
	Files map[string][]byte
	// Commit is the git commit checked out in the directory's work tree, or
	// "" when there is none.
	Commit string
}

// IsPolicyFile reports whether a file name is part of a policy set: a Rego
// module or a data file, and not a dot-file.
func IsPolicyFile(name string) bool {
	base := path.Base(filepath.ToSlash(name))
	if strings.HasPrefix(base, ".") {
		return false
	}
	switch path.Ext(base) {
	case ".rego", ".json", ".yaml", ".yml":
		return true
	}
	return false
}

// IsTestFile reports whether a policy file holds tests.
func IsTestFile(name string) bool { return strings.HasSuffix(name, "_test.rego") }

// NewSource returns a Source for in-memory files (for example a candidate
// set for `scimd plan`). Non-policy files are dropped; paths are cleaned.
func NewSource(files map[string][]byte) (*Source, error) {
	src := &Source{Files: make(map[string][]byte, len(files))}
	for name, content := range files {
		clean := path.Clean(filepath.ToSlash(name))
		if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return nil, fmt.Errorf("policy file %q: path must be relative to the policy directory", name)
		}
		if hasHiddenElem(clean) || !IsPolicyFile(clean) {
			continue
		}
		src.Files[clean] = content
	}
	return src, nil
}

func hasHiddenElem(p string) bool {
	for elem := range strings.SplitSeq(p, "/") {
		if strings.HasPrefix(elem, ".") && elem != "." {
			return true
		}
	}
	return false
}

// ReadDir snapshots the policy files under dir. It follows symbolic links
// (Kubernetes mounts ConfigMaps as links through ..data), skips dot-files
// and dot-directories (..data, ..2026_…, .git) and dangling links, and reads
// the git commit of the enclosing work tree, if any.
func ReadDir(dir string) (*Source, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("read policy directory: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("read policy directory: %s is not a directory", dir)
	}
	r := dirReader{root: dir, files: map[string][]byte{}, seen: map[string]bool{}}
	if err := r.walk(dir, "", 0); err != nil {
		return nil, err
	}
	return &Source{Dir: dir, Files: r.files, Commit: GitCommit(dir)}, nil
}

type dirReader struct {
	root  string
	files map[string][]byte
	total int64
	seen  map[string]bool // real paths of visited directories (link cycles)
}

func (r *dirReader) walk(abs, rel string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("read policy directory: %s: nested deeper than %d directories", abs, maxDepth)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fmt.Errorf("read policy directory: %w", err)
	}
	if r.seen[real] {
		return nil
	}
	r.seen[real] = true
	entries, err := os.ReadDir(abs)
	if err != nil {
		return fmt.Errorf("read policy directory: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		full := filepath.Join(abs, name)
		relName := path.Join(rel, name)
		info, err := os.Stat(full) // follows links
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile, or a dangling link
		}
		if err != nil {
			return fmt.Errorf("read policy directory: %w", err)
		}
		if info.IsDir() {
			if err := r.walk(full, relName, depth+1); err != nil {
				return err
			}
			continue
		}
		if !info.Mode().IsRegular() || !IsPolicyFile(name) {
			continue
		}
		if err := r.read(full, relName, info.Size()); err != nil {
			return err
		}
	}
	return nil
}

func (r *dirReader) read(full, rel string, size int64) error {
	if size > maxFileSize {
		return fmt.Errorf("read policy file %s: %d bytes exceeds the %d byte limit", rel, size, maxFileSize)
	}
	b, err := os.ReadFile(full)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed meanwhile; the watcher will reload again
	}
	if err != nil {
		return fmt.Errorf("read policy file %s: %w", rel, err)
	}
	r.total += int64(len(b))
	if r.total > maxTotalSize {
		return fmt.Errorf("read policy directory: policy files exceed %d bytes", maxTotalSize)
	}
	r.files[rel] = b
	return nil
}

// Names returns the file names, sorted.
func (s *Source) Names() []string {
	names := make([]string, 0, len(s.Files))
	for n := range s.Files {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Digest is the hex SHA-256 of the files' names and contents. It does not
// depend on the directory, the git commit or file times: two sources with
// the same digest compile to the same policy.
func (s *Source) Digest() string {
	h := sha256.New()
	for _, n := range s.Names() {
		b := s.Files[n]
		fmt.Fprintf(h, "%d:%s\x00%d:", len(n), n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Revision names the policy set in audit events and decisions: the first 16
// hex digits of the digest, followed by "@" and the first 12 of the git
// commit when the directory is a git work tree.
func (s *Source) Revision() string {
	return revision(s.Digest(), s.Commit)
}

func revision(digest, commit string) string {
	rev := digest[:16]
	if commit != "" {
		rev += "@" + commit[:min(12, len(commit))]
	}
	return rev
}

// display returns name as it should appear in messages for an operator.
func (s *Source) display(name string) string {
	if s.Dir == "" || name == "" {
		return name
	}
	return filepath.Join(s.Dir, filepath.FromSlash(name))
}
