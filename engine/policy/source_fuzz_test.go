//go:build unix

package policy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scimd/scimd/engine/policy"
)

// FuzzReadDir builds odd policy trees from the fuzzer's bytes (nested
// directories, links inside and outside, link loops, dangling links, FIFOs,
// devices, /proc files that claim size 0 and never end, huge sparse files)
// and reads them. ReadDir must return in bounded time and memory, never
// read anything from outside the tree, and either load regular files only
// or name the file it refused.
func FuzzReadDir(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3})
	f.Add([]byte{4, 0, 5, 1, 6, 2})
	f.Add([]byte{7, 3, 8, 0, 9, 1, 10, 2, 11, 3})
	f.Add([]byte{1, 0, 1, 1, 4, 2, 4, 3, 4, 4, 4, 5})
	f.Add([]byte{12, 0, 13, 1, 2, 2, 5, 0})
	f.Fuzz(func(t *testing.T, program []byte) {
		if len(program) > 64 {
			program = program[:64]
		}
		parent := t.TempDir()
		root, outside := filepath.Join(parent, "policies"), filepath.Join(parent, "outside")
		for _, d := range []string{root, outside} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		const secret = "OUTSIDE-SECRET"
		if err := os.WriteFile(filepath.Join(outside, "s.rego"), []byte(secret), 0o644); err != nil {
			t.Fatal(err)
		}
		dirs := []string{root}
		var made []string
		for i := 0; i+1 < len(program); i += 2 {
			op, arg := program[i], int(program[i+1])
			dir := dirs[arg%len(dirs)]
			name := filepath.Join(dir, fmt.Sprintf("n%d%s", i, []string{".rego", ".json", ".yaml", "", ".txt"}[arg%5]))
			if op%14 != 1 && op%14 != 8 {
				made = append(made, name)
			}
			var target string
			pick := func() string {
				if len(made) == 0 {
					return root
				}
				return made[arg%len(made)]
			}
			switch op % 14 {
			case 0: // a small regular file
				os.WriteFile(name, []byte(fmt.Sprintf("package scimd\n\nx%d := %d\n", i, arg)), 0o644)
			case 1: // a directory
				d := filepath.Join(dir, fmt.Sprintf("d%d", i))
				if os.Mkdir(d, 0o755) == nil {
					dirs = append(dirs, d)
				}
			case 2: // link to an entry inside (maybe a loop)
				target = pick()
			case 3: // link to the root or a parent: loops
				target = filepath.Dir(dir)
				if arg%2 == 0 {
					target = root
				}
			case 4: // link outside the tree
				target = filepath.Join(outside, "s.rego")
			case 5: // link to the outside directory
				target = outside
			case 6: // dangling link
				target = filepath.Join(root, "missing")
			case 7: // FIFO
				syscall.Mkfifo(name, 0o644)
			case 8: // a dot-directory holding a file and a ..data-style link to it
				d := filepath.Join(dir, fmt.Sprintf("..stamp%d", i))
				if os.Mkdir(d, 0o755) == nil {
					os.WriteFile(filepath.Join(d, "k.rego"), []byte("package scimd\n"), 0o644)
					os.Symlink(filepath.Join(d, "k.rego"), filepath.Join(dir, fmt.Sprintf("k%d.rego", i)))
				}
			case 9: // /proc/self/pagemap: size 0 to stat, endless to read
				target = "/proc/self/pagemap"
			case 10: // a device
				target = "/dev/zero"
			case 11: // a huge sparse file
				if fh, err := os.Create(name); err == nil {
					fh.Truncate(int64(arg+1) << 24)
					fh.Close()
				}
			case 12: // relative link climbing out
				target = strings.Repeat("../", arg%4+1) + "outside/s.rego"
			case 13: // a link chain
				target = filepath.Base(pick())
			}
			if target != "" {
				os.Symlink(target, name)
			}
		}

		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		done := make(chan struct{})
		var src *policy.Source
		var err error
		go func() {
			defer close(done)
			src, err = policy.ReadDirLimited(root, 1<<20, 4<<20, 2000, 16, 5*time.Second)
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("ReadDir did not return")
		}
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
			t.Fatalf("ReadDir allocated %d bytes", grew)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "refused ") && !strings.Contains(err.Error(), "read policy") {
				t.Fatalf("error does not say what was refused: %v", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error leaks outside content: %v", err)
			}
			return
		}
		var total int
		for name, b := range src.Files {
			if strings.Contains(string(b), secret) {
				t.Fatalf("%s: content from outside the tree was read", name)
			}
			if !policy.IsPolicyFile(name) {
				t.Fatalf("%s: not a policy file", name)
			}
			total += len(b)
		}
		if total > 4<<20 {
			t.Fatalf("read %d bytes, over the limit", total)
		}
	})
}
