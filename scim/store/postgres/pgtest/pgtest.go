// Package pgtest runs a throwaway PostgreSQL cluster for tests: initdb in a
// temporary directory, a server on a free loopback port (and a Unix socket
// in that directory), removed when the test ends. No mock: the real server.
//
// When PostgreSQL is not installed, or its server cannot start, a test is
// skipped with a message saying so on a developer's machine, and fails when
// CI=true or PGTEST_REQUIRED=1 (CI installs the Debian postgresql package).
//
// initdb and postgres refuse to run as root: as root the cluster runs as the
// "postgres" system user (which the Debian package creates) in a directory
// that user owns.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a running PostgreSQL server owned by one test.
type Cluster struct {
	// Dir holds the data directory, the socket and the server log.
	Dir string
	// Port is the server's TCP port on 127.0.0.1.
	Port int
	// User is the superuser name (trust authentication).
	User string

	bin    string
	runAs  string // system user running the server, "" for the current one
	dbSeq  atomic.Int64
	logPth string
}

// Required reports whether a test needing PostgreSQL must fail rather than
// skip when it cannot start one: in CI (CI=true) or with PGTEST_REQUIRED=1.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("PGTEST_REQUIRED") == "1"
}

// unavailable skips or fails tb, as Required says.
func unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		tb.Fatalf("PostgreSQL is required here (CI=true or PGTEST_REQUIRED=1) but %s", msg)
	}
	tb.Skipf("SKIPPED: needs PostgreSQL, but %s (install the postgresql package to run it)", msg)
}

// BinDir finds the directory holding initdb and pg_ctl: $PGTEST_BINDIR,
// the newest /usr/lib/postgresql/*/bin (Debian), or the PATH.
func BinDir() (string, error) {
	if d := os.Getenv("PGTEST_BINDIR"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("PGTEST_BINDIR=%s: %w", d, err)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("initdb was not found in /usr/lib/postgresql/*/bin or on the PATH")
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start initialises and starts a cluster, stopped and removed when tb ends.
// It skips or fails tb (see Required) when PostgreSQL cannot be started.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	bin, err := BinDir()
	if err != nil {
		unavailable(tb, "%v", err)
	}
	c := &Cluster{bin: bin, User: "scimd"}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			unavailable(tb, "running as root and there is no postgres user to run the server as: %v", err)
		}
		c.runAs = "postgres"
	}
	dir, err := os.MkdirTemp("", "scimd-pg-")
	if err != nil {
		tb.Fatalf("pgtest: temporary directory: %v", err)
	}
	c.Dir = dir
	c.logPth = filepath.Join(dir, "server.log")
	tb.Cleanup(func() { c.stop(tb) })
	if c.runAs != "" {
		if err := chownTo(dir, c.runAs); err != nil {
			tb.Fatalf("pgtest: %v", err)
		}
	}
	if out, err := c.run("initdb", "-D", c.dataDir(), "-A", "trust", "-U", c.User, "-E", "UTF8",
		"--locale=C", "--no-sync"); err != nil {
		unavailable(tb, "initdb failed: %v\n%s", err, out)
	}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("pgtest: free port: %v", err)
		}
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200", port, dir)
		out, err := c.run("pg_ctl", "-D", c.dataDir(), "-l", c.logPth, "-w", "-t", "60", "-o", opts, "start")
		if err == nil {
			c.Port = port
			return c
		}
		logText, _ := os.ReadFile(c.logPth)
		lastErr = fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, logText)
	}
	unavailable(tb, "the server did not start: %v", lastErr)
	return nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.Dir, "data") }

// run runs one PostgreSQL program, as c.runAs when set.
func (c *Cluster) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if c.runAs != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.runAs, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

func (c *Cluster) stop(tb testing.TB) {
	if c.Port != 0 {
		if out, err := c.run("pg_ctl", "-D", c.dataDir(), "-m", "immediate", "-w", "stop"); err != nil {
			tb.Logf("pgtest: pg_ctl stop: %v\n%s", err, out)
		}
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		tb.Logf("pgtest: remove %s: %v", c.Dir, err)
	}
}

// URL returns the connection URL of database db.
func (c *Cluster) URL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User(c.User), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)),
		Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// CreateDatabase creates a new, empty database and returns its URL.
func (c *Cluster) CreateDatabase(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("scimd_test_%d", c.dbSeq.Add(1))
	if err := c.Exec(context.Background(), "postgres", "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return c.URL(name)
}

// Exec runs sql in database db on a connection of its own.
func (c *Cluster) Exec(ctx context.Context, db, sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL(db))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", db, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// Log returns the server log so far (for a failing test's output).
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(c.logPth)
	return string(b)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// chownTo gives dir to the named system user.
func chownTo(dir, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("look up user %s: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("user %s ids: %w", name, err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("give %s to %s: %w", dir, name, err)
	}
	return nil
}
