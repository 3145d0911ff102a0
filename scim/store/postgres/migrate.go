package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema's versions, in order: migrations[i] brings the
// schema from version i to version i+1. A released migration never
// changes; a new schema is a new entry.
var migrations = []string{
	// 1: the journal the store keeps in memory.
	`CREATE TABLE objects (
		tbl  text  NOT NULL,
		key  text  NOT NULL,
		data bytea NOT NULL,
		PRIMARY KEY (tbl, key)
	);
	CREATE TABLE audit (
		seq       bigint      PRIMARY KEY,
		time_ns   bigint      NOT NULL, -- Unix nanoseconds: exact bounds
		time      timestamptz NOT NULL,
		type      text        NOT NULL,
		actor     text        NOT NULL,
		target_id text        NOT NULL,
		hash      text        NOT NULL,
		data      bytea       NOT NULL
	);
	CREATE INDEX audit_target ON audit (target_id, seq);
	CREATE INDEX audit_type ON audit (type, seq);
	CREATE INDEX audit_time ON audit (time_ns, seq);
	CREATE TABLE feed (
		seq  bigint PRIMARY KEY,
		data bytea  NOT NULL
	);`,
	// 2: several processes on one database: the leader's fencing epoch,
	// and a journal of commits that standbys replay.
	`CREATE TABLE leader (
		id     int         PRIMARY KEY CHECK (id = 1),
		epoch  bigint      NOT NULL,
		member text        NOT NULL,
		url    text        NOT NULL,
		since  timestamptz NOT NULL
	);
	INSERT INTO leader (id, epoch, member, url, since) VALUES (1, 0, '', '', now());
	CREATE TABLE journal (
		seq   bigint PRIMARY KEY,
		epoch bigint      NOT NULL,
		at    timestamptz NOT NULL DEFAULT clock_timestamp(),
		rows  bytea       NOT NULL
	);
	CREATE TABLE members (
		member    text        PRIMARY KEY,
		url       text        NOT NULL,
		role      text        NOT NULL,
		applied   bigint      NOT NULL,
		seen      timestamptz NOT NULL
	);`,
}

// SchemaVersion is the schema version this build creates and understands.
var SchemaVersion = len(migrations)

// ErrSchemaTooNew is returned when the database was migrated by a newer
// scimd than this one.
var ErrSchemaTooNew = errors.New("postgres: the database schema is newer than this scimd")

// migrationLock is the advisory lock key that serialises migrations of one
// database by several starting processes ("scimd" + 1).
const migrationLock = 0x7363696d6401

// migrate brings the database's schema to SchemaVersion, in one
// transaction, or refuses a schema newer than it knows.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return fmt.Errorf("postgres: lock for migration: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    int         PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("postgres: create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("postgres: read schema version: %w", err)
		}
		if current > SchemaVersion {
			return fmt.Errorf("%w: the database is at schema version %d, this scimd knows versions up to %d; run a scimd at least as new as the one that migrated it",
				ErrSchemaTooNew, current, SchemaVersion)
		}
		for v := current + 1; v <= SchemaVersion; v++ {
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return fmt.Errorf("postgres: migrate schema to version %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v); err != nil {
				return fmt.Errorf("postgres: record schema version %d: %w", v, err)
			}
		}
		return nil
	})
}
