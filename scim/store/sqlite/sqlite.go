// Package sqlite is the embedded, default store.Backend: a SQLite database in
// the data directory (pure Go, modernc.org/sqlite) in WAL mode with
// synchronous=FULL, so every commit is fsynced before it returns.
package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/store"
)

// FileName is the database file inside the data directory.
const FileName = "scimd.db"

// Backend is a store.Backend over one SQLite database file.
type Backend struct {
	writer *sql.DB
	reader *sql.DB
	path   string
	// Statements of Commit, prepared once on the writer's one connection.
	upsert, del, audit, feed *sql.Stmt
	epoch                    string
	// Migrated is set when Open migrated an older database.
	Migrated *Migration
}

// FeedEpoch names this database's feed: it changes when the database is
// replaced by a restored backup, so that a consumer's cursor from before
// can be told apart from one of the same number after.
func (b *Backend) FeedEpoch() string { return b.epoch }

var _ store.Backend = (*Backend)(nil)

const schemaSQL = `
CREATE TABLE IF NOT EXISTS objects (
	id   INTEGER PRIMARY KEY,
	tbl  TEXT NOT NULL,
	key  TEXT NOT NULL,
	data BLOB NOT NULL,
	UNIQUE (tbl, key)
);
CREATE TABLE IF NOT EXISTS audit (
	seq       INTEGER PRIMARY KEY,
	time      TEXT NOT NULL, -- timeLayout: fixed width, so text order is time order
	type      TEXT NOT NULL,
	actor     TEXT NOT NULL,
	target_id TEXT NOT NULL,
	hash      TEXT NOT NULL,
	data      BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_target ON audit (target_id, seq);
CREATE INDEX IF NOT EXISTS audit_type ON audit (type, seq);
CREATE TABLE IF NOT EXISTS feed (
	seq  INTEGER PRIMARY KEY,
	data BLOB NOT NULL
);
`

// timeLayout is how the audit table stores event times: UTC with all nine
// fractional digits, so that comparing the text compares the times.
// (RFC 3339 with trailing zeros trimmed does not: "10:00:00.5Z" sorts
// before "10:00:00Z".)
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// formatTime is t as the audit table stores it.
func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// SchemaVersion is the PRAGMA user_version this scimd writes:
//
//	0  written before versions were recorded (audit times with trailing
//	   zeros trimmed)
//	1  audit times in timeLayout
//	2  a meta table holding the feed epoch
//	3  objects in a rowid table with a (tbl, key) index (migrateObjectsRowid)
//
// Open migrates older databases forward, after copying them aside, and
// refuses newer ones.
const SchemaVersion = 3

// migrations[v] brings a database from version v to v+1 inside the
// migration's transaction. Each step tolerates finding its work done.
var migrations = []func(ctx context.Context, tx *sql.Tx) error{
	0: migrateAuditTimes,
	1: migrateFeedEpoch,
	2: migrateObjectsRowid,
}

// ErrNewerSchema is returned by Open for a database written by a newer
// scimd.
var ErrNewerSchema = errors.New("database written by a newer scimd")

// Migration describes what Open did to bring an older database up to date.
type Migration struct {
	From, To int
	// Backup is the copy of the database taken before migrating.
	Backup string
}

// schemaState reads the database's version and whether it holds any table
// yet (a new database is created at SchemaVersion, not migrated).
func schemaState(ctx context.Context, db *sql.DB) (version int, empty bool, err error) {
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return 0, false, fmt.Errorf("read schema version: %w", err)
	}
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table'`).Scan(&tables); err != nil {
		return 0, false, fmt.Errorf("read schema: %w", err)
	}
	return version, tables == 0, nil
}

// upgrade creates or migrates the schema. An existing database of an older
// version is first copied (VACUUM INTO, a consistent copy) next to itself,
// then migrated step by step in one transaction.
func upgrade(ctx context.Context, db *sql.DB, path string) (*Migration, error) {
	version, empty, err := schemaState(ctx, db)
	if err != nil {
		return nil, err
	}
	if version > SchemaVersion {
		return nil, fmt.Errorf("%w: %s has schema version %d and this scimd understands up to %d; run the newer scimd, or restore a backup taken before the upgrade", ErrNewerSchema, path, version, SchemaVersion)
	}
	if empty {
		version = SchemaVersion
	}
	if version == SchemaVersion {
		if _, err := db.ExecContext(ctx, schemaSQL); err != nil {
			return nil, fmt.Errorf("create schema: %w", err)
		}
		if err := inTx(ctx, db, func(tx *sql.Tx) error {
			if err := migrateFeedEpoch(ctx, tx); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, SchemaVersion))
			return err
		}); err != nil {
			return nil, fmt.Errorf("initialise schema: %w", err)
		}
		return nil, nil
	}
	m := &Migration{From: version, To: SchemaVersion,
		Backup: fmt.Sprintf("%s.schema-v%d-%s.backup", path, version, time.Now().UTC().Format("20060102T150405Z"))}
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, m.Backup); err != nil {
		return nil, fmt.Errorf("back up %s before migrating it to schema version %d: %w", path, SchemaVersion, err)
	}
	if err := os.Chmod(m.Backup, 0o600); err != nil {
		return nil, fmt.Errorf("restrict %s: %w", m.Backup, err)
	}
	if _, err := db.ExecContext(ctx, schemaSQL); err != nil {
		return nil, fmt.Errorf("create schema: %w", err)
	}
	err = inTx(ctx, db, func(tx *sql.Tx) error {
		for v := version; v < SchemaVersion; v++ {
			if err := migrations[v](ctx, tx); err != nil {
				return fmt.Errorf("schema version %d to %d: %w", v, v+1, err)
			}
		}
		_, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, SchemaVersion))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("migrate (the copy taken before is %s): %w", m.Backup, err)
	}
	return m, nil
}

func inTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// migrateAuditTimes (0 → 1) rewrites audit times in timeLayout.
func migrateAuditTimes(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT seq, time FROM audit WHERE length(time) != ?`, len(timeLayout))
	if err != nil {
		return fmt.Errorf("read audit times: %w", err)
	}
	type fix struct {
		seq  int64
		time string
	}
	var fixes []fix
	for rows.Next() {
		var f fix
		if err := rows.Scan(&f.seq, &f.time); err != nil {
			rows.Close()
			return fmt.Errorf("read audit times: %w", err)
		}
		t, err := time.Parse(time.RFC3339Nano, f.time)
		if err != nil {
			rows.Close()
			return fmt.Errorf("audit event %d: time %q: %w", f.seq, f.time, err)
		}
		f.time = formatTime(t)
		fixes = append(fixes, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read audit times: %w", err)
	}
	for _, f := range fixes {
		if _, err := tx.ExecContext(ctx, `UPDATE audit SET time = ? WHERE seq = ?`, f.time, f.seq); err != nil {
			return fmt.Errorf("rewrite time of audit event %d: %w", f.seq, err)
		}
	}
	return nil
}

// migrateFeedEpoch (1 → 2) adds the meta table and gives the feed its
// first epoch.
func migrateFeedEpoch(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID`); err != nil {
		return fmt.Errorf("create meta table: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO meta (key, value) VALUES ('feed_epoch', ?)`, NewEpoch()); err != nil {
		return fmt.Errorf("set feed epoch: %w", err)
	}
	return nil
}

// migrateObjectsRowid (2 → 3) moves the objects into a rowid table. In the
// WITHOUT ROWID table of versions up to 2 each row lived in the primary
// key's B-tree, and SQLite reads a cell's whole payload to compare keys
// when the cell spills to overflow pages: every insert or lookup whose
// search passed a large row (a pending change holding 100,000 teammates
// is megabytes) read that row from disk, so a write's cost grew with the
// largest record near its key. The (tbl, key) index of a rowid table holds
// only the keys.
func migrateObjectsRowid(ctx context.Context, tx *sql.Tx) error {
	var ddl string
	if err := tx.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'objects'`).Scan(&ddl); err != nil {
		return fmt.Errorf("read objects schema: %w", err)
	}
	if !strings.Contains(strings.ToUpper(ddl), "WITHOUT ROWID") {
		return nil
	}
	for _, stmt := range []string{
		`CREATE TABLE objects_v3 (id INTEGER PRIMARY KEY, tbl TEXT NOT NULL, key TEXT NOT NULL, data BLOB NOT NULL, UNIQUE (tbl, key))`,
		`INSERT INTO objects_v3 (tbl, key, data) SELECT tbl, key, data FROM objects`,
		`DROP TABLE objects`,
		`ALTER TABLE objects_v3 RENAME TO objects`,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("move objects to a rowid table: %w", err)
		}
	}
	return nil
}

// NewEpoch returns a fresh random feed epoch.
func NewEpoch() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// Open opens (creating if needed) the database in dir.
func Open(ctx context.Context, dir string) (*Backend, error) {
	return open(ctx, dir, "FULL")
}

// fileURI is the SQLite URI of the database file path with the given query:
// the path is escaped, so that a "#", "?" or "%" in it names the file
// rather than starting the URI's fragment or query.
func fileURI(path, query string) string {
	// A relative path would become the URI's authority ("file://data/…").
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: query}
	return u.String()
}

// open is Open with the given synchronous mode. Only FULL is durable; the
// benchmarks use OFF as the no-fsync floor.
func open(ctx context.Context, dir, synchronous string) (*Backend, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	if err := restrictFiles(path); err != nil {
		return nil, err
	}
	pragmas := "_pragma=journal_mode(WAL)&_pragma=synchronous(" + synchronous + ")&_pragma=busy_timeout(10000)&_pragma=foreign_keys(OFF)"
	writer, err := sql.Open("sqlite", fileURI(path, pragmas+"&_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetConnMaxIdleTime(0)
	migrated, err := upgrade(ctx, writer, path)
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	reader, err := sql.Open("sqlite", fileURI(path, pragmas+"&_pragma=query_only(1)"))
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: open reader %s: %w", path, err)
	}
	reader.SetMaxOpenConns(4)
	b := &Backend{writer: writer, reader: reader, path: path, Migrated: migrated}
	if err := writer.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'feed_epoch'`).Scan(&b.epoch); err != nil {
		b.Close()
		return nil, fmt.Errorf("sqlite: read feed epoch of %s: %w", path, err)
	}
	for _, st := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&b.upsert, `INSERT INTO objects (tbl, key, data) VALUES (?, ?, ?)
		ON CONFLICT (tbl, key) DO UPDATE SET data = excluded.data`},
		{&b.del, `DELETE FROM objects WHERE tbl = ? AND key = ?`},
		{&b.audit, `INSERT INTO audit (seq, time, type, actor, target_id, hash, data) VALUES (?, ?, ?, ?, ?, ?, ?)`},
		{&b.feed, `INSERT INTO feed (seq, data) VALUES (?, ?)`},
	} {
		if *st.stmt, err = writer.PrepareContext(ctx, st.sql); err != nil {
			b.Close()
			return nil, fmt.Errorf("sqlite: prepare %q: %w", st.sql, err)
		}
	}
	return b, nil
}

// restrictFiles creates the database file with mode 0600 when it does not
// exist (SQLite gives its -wal and -shm files the database file's mode) and
// takes group and other permissions away from existing ones: the files
// hold token digests and every teammate's attributes.
func restrictFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, info.Mode().Perm()&0o700); err != nil {
				return fmt.Errorf("sqlite: restrict %s to its owner: %w", p, err)
			}
		}
	}
	return nil
}

// encoded returns data[i], the JSON the store encoded for v, or encodes v
// when the batch carries no encoding.
func encoded(data [][]byte, i int, v any) ([]byte, error) {
	if i < len(data) && data[i] != nil {
		return data[i], nil
	}
	return json.Marshal(v)
}

// Path is the database file.
func (b *Backend) Path() string { return b.path }

// Load implements store.Backend.
func (b *Backend) Load(ctx context.Context, fn func(store.Row) error) (store.LoadState, error) {
	st := store.LoadState{LastHash: audit.GenesisHash}
	rows, err := b.reader.QueryContext(ctx, `SELECT tbl, key, data FROM objects`)
	if err != nil {
		return st, fmt.Errorf("sqlite: read objects: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r store.Row
		if err := rows.Scan(&r.Table, &r.Key, &r.Data); err != nil {
			return st, fmt.Errorf("sqlite: scan object: %w", err)
		}
		if err := fn(r); err != nil {
			return st, err
		}
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("sqlite: read objects: %w", err)
	}
	var seq sql.NullInt64
	var hash sql.NullString
	err = b.reader.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	switch {
	case err == sql.ErrNoRows:
	case err != nil:
		return st, fmt.Errorf("sqlite: read audit head: %w", err)
	default:
		st.LastSeq, st.LastHash = uint64(seq.Int64), hash.String
	}
	var feedSeq sql.NullInt64
	if err := b.reader.QueryRowContext(ctx, `SELECT MAX(seq) FROM feed`).Scan(&feedSeq); err != nil {
		return st, fmt.Errorf("sqlite: read feed head: %w", err)
	}
	st.LastFeedSeq = uint64(feedSeq.Int64)
	return st, nil
}

// Commit implements store.Backend: one SQLite transaction, one fsync.
func (b *Backend) Commit(ctx context.Context, batches []*store.Batch) error {
	tx, err := b.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	// The statements were prepared on the writer's only connection, which
	// the transaction holds: StmtContext reuses them.
	upsert := tx.StmtContext(ctx, b.upsert)
	del := tx.StmtContext(ctx, b.del)
	ins := tx.StmtContext(ctx, b.audit)
	feed := tx.StmtContext(ctx, b.feed)
	for _, batch := range batches {
		for _, r := range batch.Rows {
			if r.Data == nil {
				_, err = del.ExecContext(ctx, r.Table, r.Key)
			} else {
				_, err = upsert.ExecContext(ctx, r.Table, r.Key, r.Data)
			}
			if err != nil {
				return fmt.Errorf("sqlite: write %s/%s: %w", r.Table, r.Key, err)
			}
		}
		for i, e := range batch.Events {
			data, err := encoded(batch.EventData, i, e)
			if err != nil {
				return fmt.Errorf("sqlite: encode audit event %d: %w", e.Seq, err)
			}
			if _, err := ins.ExecContext(ctx, int64(e.Seq), formatTime(e.Time), e.Type, e.Actor.Name, e.Target.ID, e.Hash, data); err != nil {
				return fmt.Errorf("sqlite: append audit event %d: %w", e.Seq, err)
			}
		}
		for i, f := range batch.Feed {
			data, err := encoded(batch.FeedData, i, f)
			if err != nil {
				return fmt.Errorf("sqlite: encode feed entry %d: %w", f.Seq, err)
			}
			if _, err := feed.ExecContext(ctx, int64(f.Seq), data); err != nil {
				return fmt.Errorf("sqlite: append feed entry %d: %w", f.Seq, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// AuditEvents implements store.Backend.
func (b *Backend) AuditEvents(ctx context.Context, q store.AuditQuery) ([]audit.Event, error) {
	var where []string
	var args []any
	where = append(where, "seq > ?")
	args = append(args, int64(q.AfterSeq))
	if len(q.Types) > 0 {
		var ors []string
		for _, t := range q.Types {
			// The range (t itself up to t+"/", "/" following ".")
			// lets the audit_type index serve the filter; the exact
			// test keeps only t and t.*.
			ors = append(ors, "(type >= ? AND type < ? AND (type = ? OR type LIKE ? ESCAPE '\\'))")
			args = append(args, t, t+"/", t, escapeLike(t)+".%")
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	if q.TargetID != "" {
		where = append(where, "target_id = ?")
		args = append(args, q.TargetID)
	}
	if q.Actor != "" {
		where = append(where, "actor = ?")
		args = append(args, q.Actor)
	}
	if !q.Since.IsZero() {
		where = append(where, "time >= ?")
		args = append(args, formatTime(q.Since))
	}
	if !q.Until.IsZero() {
		where = append(where, "time < ?")
		args = append(args, formatTime(q.Until))
	}
	query := "SELECT data FROM audit WHERE " + strings.Join(where, " AND ") + " ORDER BY seq"
	if q.Limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	rows, err := b.reader.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: query audit: %w", err)
	}
	defer rows.Close()
	events := []audit.Event{}
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("sqlite: scan audit event: %w", err)
		}
		var e audit.Event
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, fmt.Errorf("sqlite: decode audit event: %w", err)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: query audit: %w", err)
	}
	return events, nil
}

// FeedEntries implements store.Backend.
func (b *Backend) FeedEntries(ctx context.Context, after uint64, limit int) ([]store.FeedEntry, error) {
	query := `SELECT data FROM feed WHERE seq > ? ORDER BY seq`
	if limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", limit)
	}
	rows, err := b.reader.QueryContext(ctx, query, int64(after))
	if err != nil {
		return nil, fmt.Errorf("sqlite: query feed: %w", err)
	}
	defer rows.Close()
	out := []store.FeedEntry{}
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("sqlite: scan feed entry: %w", err)
		}
		var f store.FeedEntry
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("sqlite: decode feed entry: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: query feed: %w", err)
	}
	return out, nil
}

func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// Close implements store.Backend.
func (b *Backend) Close() error {
	for _, st := range []*sql.Stmt{b.upsert, b.del, b.audit, b.feed} {
		if st != nil {
			st.Close()
		}
	}
	errR := b.reader.Close()
	errW := b.writer.Close()
	if errW != nil {
		return fmt.Errorf("sqlite: close: %w", errW)
	}
	if errR != nil {
		return fmt.Errorf("sqlite: close reader: %w", errR)
	}
	return nil
}
