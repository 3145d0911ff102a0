package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Limits that keep a runaway directory from exhausting memory.
const (
	maxFileSize  = 8 << 20  // bytes per file
	maxTotalSize = 64 << 20 // bytes per set
	maxDepth     = 32       // directory nesting
	maxEntries   = 10000    // directory entries per walk, policy files or not
	maxWalkTime  = 10 * time.Second
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

// ReadDir snapshots the policy files under dir. Only regular files whose
// real path (after every symbolic link) stays inside dir's real path are
// read, so a link to a secret elsewhere on the host, or to an endless file
// such as /proc/self/pagemap, is refused by name instead of read. Links that
// stay inside dir are followed, so Kubernetes ConfigMaps (each file a link
// through the ..data directory link) still load. Dot-files and
// dot-directories (..data, ..2026_…, .git) are skipped, as are dangling
// links. Every read is bounded in bytes, and the walk in entries and time.
// ReadDir also reads the git commit of the enclosing work tree, if any.
func ReadDir(dir string) (*Source, error) {
	return readDir(dir, defaultReadLimits)
}

// readLimits bound what reading one policy directory may cost.
type readLimits struct {
	fileSize  int64         // bytes per file
	totalSize int64         // bytes per set
	entries   int           // directory entries looked at, files or not
	depth     int           // directory nesting
	walkTime  time.Duration // wall time for the whole walk
}

var defaultReadLimits = readLimits{
	fileSize:  maxFileSize,
	totalSize: maxTotalSize,
	entries:   maxEntries,
	depth:     maxDepth,
	walkTime:  maxWalkTime,
}

func readDir(dir string, lim readLimits) (*Source, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("read policy directory: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("read policy directory: %s is not a directory", dir)
	}
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("read policy directory: %w", err)
	}
	if root, err = filepath.Abs(root); err != nil {
		return nil, fmt.Errorf("read policy directory: %w", err)
	}
	r := dirReader{
		dir: dir, root: root, lim: lim,
		deadline: time.Now().Add(lim.walkTime),
		files:    map[string][]byte{}, seen: map[string]bool{},
	}
	if err := r.walk(root, "", 0); err != nil {
		return nil, err
	}
	return &Source{Dir: dir, Files: r.files, Commit: GitCommit(dir)}, nil
}

type dirReader struct {
	dir      string // as given, for messages
	root     string // real, absolute path of dir
	lim      readLimits
	deadline time.Time
	entries  int
	files    map[string][]byte
	total    int64
	seen     map[string]bool // real paths of visited directories (link cycles)
}

// refuse returns the error that names a refused policy file.
func (r *dirReader) refuse(rel, format string, args ...any) error {
	return fmt.Errorf("read policy directory %s: refused %s: %s", r.dir, rel, fmt.Sprintf(format, args...))
}

// inside reports whether the real path p is the root or lies under it.
func (r *dirReader) inside(p string) bool {
	rel, err := filepath.Rel(r.root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

func (r *dirReader) walk(real, rel string, depth int) error {
	if depth > r.lim.depth {
		return r.refuse(rel, "nested deeper than %d directories", r.lim.depth)
	}
	if r.seen[real] {
		return nil
	}
	r.seen[real] = true
	d, err := os.Open(real)
	if err != nil {
		return fmt.Errorf("read policy directory: %w", err)
	}
	defer d.Close()
	for {
		// Read the directory in chunks so that a directory with millions
		// of entries costs at most the entry budget.
		entries, err := d.ReadDir(256)
		for _, e := range entries {
			if err := r.entry(real, rel, depth, e.Name()); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(entries) == 0) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read policy directory: %w", err)
		}
	}
}

func (r *dirReader) entry(dirReal, dirRel string, depth int, name string) error {
	r.entries++
	relName := path.Join(dirRel, name)
	if r.entries > r.lim.entries {
		return r.refuse(relName, "the policy directory holds more than %d entries", r.lim.entries)
	}
	if time.Now().After(r.deadline) {
		return r.refuse(relName, "reading the policy directory took longer than %s", r.lim.walkTime)
	}
	if strings.HasPrefix(name, ".") {
		return nil
	}
	full := filepath.Join(dirReal, name)
	linfo, err := os.Lstat(full)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed meanwhile
	}
	if err != nil {
		return fmt.Errorf("read policy directory: %w", err)
	}
	real := full
	if linfo.Mode()&fs.ModeSymlink != 0 {
		real, err = filepath.EvalSymlinks(full)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a dangling link
		}
		if err != nil {
			if !IsPolicyFile(name) {
				return nil
			}
			return r.refuse(relName, "%v", err)
		}
	}
	info, err := os.Stat(real)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read policy directory: %w", err)
	}
	if !info.IsDir() && !IsPolicyFile(name) {
		return nil // not part of the set, wherever it points
	}
	if !r.inside(real) {
		return r.refuse(relName, "it resolves to %s, outside the policy directory", real)
	}
	if info.IsDir() {
		return r.walk(real, relName, depth+1)
	}
	if !info.Mode().IsRegular() {
		return r.refuse(relName, "not a regular file (%s)", info.Mode().Type())
	}
	return r.read(real, relName)
}

// read reads one regular file, bounded: the file is opened without
// blocking (a file swapped for a FIFO after the check cannot stall the
// walk), checked again to be regular once open, and read through a
// LimitReader whatever size it claims.
func (r *dirReader) read(real, rel string) error {
	f, err := openNonBlocking(real)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed meanwhile; the watcher will reload again
	}
	if err != nil {
		return r.refuse(rel, "%v", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return r.refuse(rel, "%v", err)
	}
	if !info.Mode().IsRegular() {
		return r.refuse(rel, "not a regular file (%s)", info.Mode().Type())
	}
	if info.Size() > r.lim.fileSize {
		return r.refuse(rel, "%d bytes exceeds the %d byte limit", info.Size(), r.lim.fileSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, r.lim.fileSize+1))
	if err != nil {
		return r.refuse(rel, "%v", err)
	}
	if int64(len(b)) > r.lim.fileSize {
		return r.refuse(rel, "more than the %d byte limit", r.lim.fileSize)
	}
	r.total += int64(len(b))
	if r.total > r.lim.totalSize {
		return r.refuse(rel, "policy files exceed %d bytes in all", r.lim.totalSize)
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
