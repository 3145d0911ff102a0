package review

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/store/sqlite"
)

// OfflineLog reads the audit log of a stopped scimd's data directory,
// read-only: it never creates, migrates or writes the database, so an
// auditor can verify a copy of the data directory without changing it.
type OfflineLog struct {
	db   *sql.DB
	path string
}

// OpenOffline opens the audit log in dataDir read-only. The server should
// be stopped: SQLite lets a reader in while it runs, but the newest events
// may then still be in its write-ahead log.
func OpenOffline(ctx context.Context, dataDir string) (*OfflineLog, error) {
	path := filepath.Join(dataDir, sqlite.FileName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	dsn := (&url.URL{Scheme: "file", Path: abs, RawQuery: "mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(10000)"}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open audit log %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open audit log %s: %w", path, err)
	}
	return &OfflineLog{db: db, path: path}, nil
}

// Path is the database file.
func (l *OfflineLog) Path() string { return l.path }

// Page implements PageFunc: up to limit events with Seq > after.
func (l *OfflineLog) Page(ctx context.Context, after uint64, limit int) ([]audit.Event, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT seq, data FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("read audit log %s: %w", l.path, err)
	}
	defer rows.Close()
	var out []audit.Event
	for rows.Next() {
		var seq int64
		var data []byte
		if err := rows.Scan(&seq, &data); err != nil {
			return nil, fmt.Errorf("read audit log %s: %w", l.path, err)
		}
		var e audit.Event
		if err := json.Unmarshal(data, &e); err != nil {
			// An undecodable row is a broken link too: Verify names it.
			return out, &CorruptEventError{Seq: uint64(seq), Err: err}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit log %s: %w", l.path, err)
	}
	return out, nil
}

// CorruptEventError is returned by a PageFunc, with the events before it,
// when a stored event cannot be decoded.
type CorruptEventError struct {
	Seq uint64
	Err error
}

func (e *CorruptEventError) Error() string {
	return fmt.Sprintf("audit event %d is not a valid event: %v", e.Seq, e.Err)
}

func (e *CorruptEventError) Unwrap() error { return e.Err }

// Close closes the database.
func (l *OfflineLog) Close() error { return l.db.Close() }
