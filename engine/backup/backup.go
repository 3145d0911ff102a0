// Package backup copies the embedded SQLite store of a data directory
// while scimd runs, and installs such a copy in a data directory again.
//
// A backup is one SQLite file made with VACUUM INTO on a read-only
// connection: a consistent snapshot of everything scimd keeps (users,
// groups, teammates, pending changes, tokens, webhooks and their cursors,
// the audit chain and the feed) as of one committed transaction, taken
// without stopping or slowing the server's writer. Every backup and every
// restore verifies the copy's audit hash chain before it is called good.
package backup

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/datadir"
	"github.com/scimd/scimd/engine/delivery"
	"github.com/scimd/scimd/engine/review"
	"github.com/scimd/scimd/scim/store"
	"github.com/scimd/scimd/scim/store/sqlite"
)

// Info describes a verified backup.
type Info struct {
	// Path is the backup file.
	Path string `json:"path"`
	// Bytes is its size.
	Bytes int64 `json:"bytes"`
	// Events is how many audit events it holds (all verified); Head is the
	// last of them.
	Events uint64            `json:"events"`
	Head   *review.ChainHead `json:"head,omitempty"`
}

// Create writes a consistent copy of dataDir's store to out, which must
// not exist, and verifies the copy's audit chain. scimd may be running on
// dataDir: the copy is one snapshot of its committed state. The file is
// created with mode 0600 (it holds token digests and webhook secrets).
func Create(ctx context.Context, dataDir, out string) (Info, error) {
	src := filepath.Join(dataDir, sqlite.FileName)
	if _, err := os.Stat(src); err != nil {
		return Info{}, fmt.Errorf("backup %s: no scimd store there: %w", dataDir, err)
	}
	if _, err := os.Lstat(out); err == nil {
		return Info{}, fmt.Errorf("backup: %s exists; choose a new file name", out)
	}
	tmp := out + ".partial"
	_ = os.Remove(tmp)
	db, err := openReadOnly(src)
	if err != nil {
		return Info{}, err
	}
	_, err = db.ExecContext(ctx, "VACUUM INTO ?", tmp)
	db.Close()
	if err != nil {
		os.Remove(tmp)
		return Info{}, fmt.Errorf("backup %s: copy the store: %w", src, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		os.Remove(tmp)
		return Info{}, fmt.Errorf("backup: %w", err)
	}
	info, err := Verify(ctx, tmp)
	if err != nil {
		os.Remove(tmp)
		return Info{}, err
	}
	if err := syncFile(tmp); err != nil {
		os.Remove(tmp)
		return Info{}, err
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return Info{}, fmt.Errorf("backup: %w", err)
	}
	if err := syncDir(filepath.Dir(out)); err != nil {
		return Info{}, err
	}
	info.Path = out
	return info, nil
}

// Verify checks that path is a scimd store whose audit chain verifies.
func Verify(ctx context.Context, path string) (Info, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Info{}, fmt.Errorf("verify backup: %w", err)
	}
	db, err := openReadOnly(path)
	if err != nil {
		return Info{}, err
	}
	defer db.Close()
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('objects', 'audit', 'feed')`).Scan(&tables); err != nil || tables < 3 {
		return Info{}, fmt.Errorf("verify backup %s: not a scimd store (%v)", path, errOr(err, "no audit table"))
	}
	page := func(ctx context.Context, after uint64, limit int) ([]audit.Event, error) {
		return readAudit(ctx, db, after, limit)
	}
	res, err := review.Verify(ctx, page, nil)
	if err != nil {
		return Info{}, fmt.Errorf("verify backup %s: %w", path, err)
	}
	if !res.OK {
		return Info{}, fmt.Errorf("verify backup %s: the audit chain is broken at event %d: %s", path, res.BrokenAt, res.Reason)
	}
	return Info{Path: path, Bytes: st.Size(), Events: res.Events, Head: res.Head}, nil
}

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Force replaces the store of a data directory that has one.
	Force bool
	// Records are the record decoders every store of scimd needs
	// (app.Records()); the store.restored event is written through them.
	Records map[string]store.RecordDecoder
	// Actor names who restored, for the audit event.
	Actor string
}

// ErrNotEmpty reports a data directory that already holds a store.
var ErrNotEmpty = errors.New("the data directory already holds a scimd store")

// Restore installs the backup from as dataDir's store: it refuses while a
// scimd holds dataDir, and refuses a directory with a store unless
// opts.Force; it verifies the backup's audit chain before anything is
// replaced, installs it atomically (copy beside, fsync, rename), and
// records a store.restored audit event, which also starts a new feed
// epoch.
func Restore(ctx context.Context, from, dataDir string, opts RestoreOptions) (Info, error) {
	info, err := Verify(ctx, from)
	if err != nil {
		return Info{}, err
	}
	lock, err := datadir.Acquire(dataDir)
	if err != nil {
		return Info{}, fmt.Errorf("restore into %s: %w", dataDir, err)
	}
	defer lock.Release()
	dst := filepath.Join(dataDir, sqlite.FileName)
	if _, err := os.Stat(dst); err == nil && !opts.Force {
		return Info{}, fmt.Errorf("restore into %s: %w; pass --force to replace it (make a backup of it first)", dataDir, ErrNotEmpty)
	}
	tmp := dst + ".restore"
	if err := copyFile(from, tmp); err != nil {
		return Info{}, fmt.Errorf("restore into %s: %w", dataDir, err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(dst + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			os.Remove(tmp)
			return Info{}, fmt.Errorf("restore into %s: %w", dataDir, err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return Info{}, fmt.Errorf("restore into %s: %w", dataDir, err)
	}
	if err := syncDir(dataDir); err != nil {
		return Info{}, err
	}
	if err := recordRestore(ctx, dataDir, from, info, opts); err != nil {
		return Info{}, err
	}
	return info, nil
}

// recordRestore opens the restored store (migrating it forward if it was
// written by an older release) and appends the store.restored event.
func recordRestore(ctx context.Context, dataDir, from string, info Info, opts RestoreOptions) error {
	backend, err := sqlite.Open(ctx, dataDir)
	if err != nil {
		return fmt.Errorf("open the restored store: %w", err)
	}
	st, err := store.Open(ctx, store.Options{Backend: backend, Records: opts.Records})
	if err != nil {
		backend.Close()
		return fmt.Errorf("open the restored store: %w", err)
	}
	defer st.Close()
	epoch, err := delivery.NewFeedEpoch()
	if err != nil {
		return err
	}
	actor := opts.Actor
	if actor == "" {
		actor = "restore"
	}
	details := map[string]any{"from": filepath.Base(from), "events": info.Events, "feedHead": st.Read().FeedSeq, "feedEpoch": epoch}
	if info.Head != nil {
		details["backupHead"] = info.Head.String()
	}
	return st.Write(ctx, func(tx *store.WriteTxn) error {
		if err := tx.PutRecord(delivery.TableFeedMeta, delivery.FeedEpochKey, &delivery.FeedEpoch{Epoch: epoch, Since: tx.Now()}); err != nil {
			return err
		}
		tx.Audit(audit.Event{Type: audit.TypeStoreRestored, Actor: audit.Actor{Kind: "system", Name: actor},
			Target:  audit.Target{Type: "Store", ID: sqlite.FileName},
			Reasons: []string{fmt.Sprintf("store restored from backup %s (%d audit events verified); the feed starts epoch %s: consumers past its head must re-sync", filepath.Base(from), info.Events, epoch)},
			Details: details})
		return nil
	})
}

func openReadOnly(path string) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	dsn := (&url.URL{Scheme: "file", Path: abs, RawQuery: "mode=ro&_pragma=busy_timeout(10000)"}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

func readAudit(ctx context.Context, db *sql.DB, after uint64, limit int) ([]audit.Event, error) {
	rows, err := db.QueryContext(ctx, `SELECT seq, data FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	defer rows.Close()
	var out []audit.Event
	for rows.Next() {
		var seq int64
		var data []byte
		if err := rows.Scan(&seq, &data); err != nil {
			return nil, fmt.Errorf("read audit: %w", err)
		}
		var e audit.Event
		if err := json.Unmarshal(data, &e); err != nil {
			return out, &review.CorruptEventError{Seq: uint64(seq), Err: err}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := out.ReadFrom(in); err != nil {
		out.Close()
		os.Remove(to)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(to)
		return err
	}
	return out.Close()
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !strings.Contains(err.Error(), "invalid argument") {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func errOr(err error, s string) any {
	if err != nil {
		return err
	}
	return s
}
