package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/scim/store"
	"github.com/scimd/scimd/scim/store/sqlite"
	"github.com/scimd/scimd/scim/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunTests(t, func(t *testing.T) storetest.Opener {
		dir := t.TempDir()
		return func() store.Backend {
			b, err := sqlite.Open(context.Background(), dir)
			if err != nil {
				t.Fatalf("open sqlite: %v", err)
			}
			return b
		}
	})
}

func TestDatabaseFilesAreOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	b, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Write(context.Background(), func(w *store.WriteTxn) error {
		return w.PutToken(&store.Token{Name: "t", Digest: "d", Role: store.TokenRoleSCIM})
	}); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, name := range []string{sqlite.FileName, sqlite.FileName + "-wal", sqlite.FileName + "-shm"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %o, want no group or other permissions", name, perm)
		}
	}
}

// TestMigrateAuditTimes opens a database written before audit times had a
// fixed width (RFC 3339 with trailing zeros trimmed) and checks that time
// queries see its events at sub-second boundaries.
func TestMigrateAuditTimes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for i, at := range []time.Time{t0.Add(500 * time.Millisecond), t0, t0.Add(time.Second)} {
		e := audit.Event{Seq: uint64(i + 1), Time: at, Type: audit.TypeUserCreated}
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO audit (seq, time, type, actor, target_id, hash, data) VALUES (?, ?, ?, '', '', ?, ?)`,
			i+1, at.Format(time.RFC3339Nano), e.Type, fmt.Sprint("h", i), data); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`PRAGMA user_version = 0`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	b, err = sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, c := range []struct {
		since, until time.Time
		want         string
	}{
		{t0, t0.Add(time.Second), "[1 2]"},
		{t0.Add(500 * time.Millisecond), t0.Add(time.Second), "[1]"},
		{t0.Add(time.Millisecond), time.Time{}, "[1 3]"},
	} {
		evs, err := b.AuditEvents(ctx, store.AuditQuery{Since: c.since, Until: c.until})
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, e := range evs {
			got = append(got, e.Seq)
		}
		if fmt.Sprint(got) != c.want {
			t.Errorf("events from %s to %s after migration = %v, want %s", c.since.Format(time.RFC3339Nano), c.until.Format(time.RFC3339Nano), got, c.want)
		}
	}
}

func userVersion(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func setUserVersion(t *testing.T, path string, v int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, v)); err != nil {
		t.Fatal(err)
	}
}

// TestSchemaVersions: a new database starts at SchemaVersion without a
// backup; an older one is copied aside and migrated, keeping its feed
// epoch across later opens; a newer one is refused and left as it was.
func TestSchemaVersions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, sqlite.FileName)
	b, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	epoch := b.FeedEpoch()
	if b.Migrated != nil || len(epoch) != 16 {
		t.Fatalf("new database: Migrated = %+v, epoch %q", b.Migrated, epoch)
	}
	b.Close()
	if v := userVersion(t, path); v != sqlite.SchemaVersion {
		t.Fatalf("new database at version %d, want %d", v, sqlite.SchemaVersion)
	}
	b, err = sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Migrated != nil || b.FeedEpoch() != epoch {
		t.Fatalf("reopen: Migrated = %+v, epoch %q, want %q", b.Migrated, b.FeedEpoch(), epoch)
	}
	b.Close()

	// Version 1 (no meta table): backed up, then migrated.
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DROP TABLE meta; PRAGMA user_version = 1`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	b, err = sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	m := b.Migrated
	if m == nil || m.From != 1 || m.To != sqlite.SchemaVersion || b.FeedEpoch() == "" || b.FeedEpoch() == epoch {
		t.Fatalf("migration from 1: %+v, epoch %q", m, b.FeedEpoch())
	}
	b.Close()
	if v := userVersion(t, m.Backup); v != 1 {
		t.Errorf("the backup %s is at version %d, want the version before migrating (1)", m.Backup, v)
	}
	if info, err := os.Stat(m.Backup); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("backup %s: %v %v", m.Backup, info, err)
	}

	// A newer version: refused with a message, file untouched.
	setUserVersion(t, path, sqlite.SchemaVersion+1)
	_, err = sqlite.Open(ctx, dir)
	if !errors.Is(err, sqlite.ErrNewerSchema) || !strings.Contains(err.Error(), fmt.Sprintf("schema version %d", sqlite.SchemaVersion+1)) {
		t.Fatalf("open of a newer database: %v", err)
	}
	if v := userVersion(t, path); v != sqlite.SchemaVersion+1 {
		t.Errorf("refused database changed to version %d", v)
	}
}

// FuzzStoreModel runs operation sequences the fuzzer makes against the
// SQLite-backed store and a plain-map model (storetest.RunModel).
func FuzzStoreModel(f *testing.F) {
	f.Add(storetest.RandomOps(1, 40))
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 3*200 {
			ops = ops[:3*200]
		}
		dir := t.TempDir()
		storetest.RunModel(t, func() store.Backend {
			b, err := sqlite.Open(context.Background(), dir)
			if err != nil {
				t.Fatalf("open sqlite: %v", err)
			}
			return b
		}, ops)
	})
}

// TestOpenDirectoryWithURICharacters opens data directories whose names
// hold characters that mean something in a URI: each is its own database.
func TestOpenDirectoryWithURICharacters(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	for i, name := range []string{"data#1", "data#2", "data?x=1", "data%231", "data"} {
		dir := filepath.Join(root, name)
		b, err := sqlite.Open(ctx, dir)
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		s, err := store.Open(ctx, store.Options{Backend: b})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(s.Read().Tokens()); got != 0 {
			t.Errorf("new directory %q opened a database holding %d tokens", name, got)
		}
		if err := s.Write(ctx, func(w *store.WriteTxn) error {
			return w.PutToken(&store.Token{Name: name, Digest: fmt.Sprint("d", i), Role: store.TokenRoleSCIM})
		}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := os.Stat(filepath.Join(dir, sqlite.FileName)); err != nil {
			t.Errorf("directory %q: %v", name, err)
		}
	}
}

// A relative data directory (the default ./scimd-data) opens the database
// inside it.
func TestOpenRelativeDataDir(t *testing.T) {
	t.Chdir(t.TempDir())
	b, err := sqlite.Open(context.Background(), "scimd-data")
	if err != nil {
		t.Fatalf("open a relative data directory: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("scimd-data", sqlite.FileName)); err != nil {
		t.Fatalf("database not inside the relative data directory: %v", err)
	}
}

// TestMigrateObjectsToRowidTable opens a version 2 database, whose objects
// live in a WITHOUT ROWID table (where SQLite reads a large row's whole
// payload whenever a key search passes it), and checks that every row
// survives the move to a rowid table keyed by a (tbl, key) index.
func TestMigrateObjectsToRowidTable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, sqlite.FileName)
	write := func(b store.Backend, fn func(w *store.WriteTxn) error) {
		t.Helper()
		st, err := store.Open(ctx, store.Options{Backend: b})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.Write(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	b, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 1<<20) // spills to overflow pages
	write(b, func(w *store.WriteTxn) error {
		for i := range 50 {
			if err := w.PutToken(&store.Token{Name: fmt.Sprintf("t%02d", i), Digest: fmt.Sprint("d", i), Role: store.TokenRoleSCIM}); err != nil {
				return err
			}
		}
		return w.PutToken(&store.Token{Name: "big", Digest: big, Role: store.TokenRoleSCIM})
	})
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`CREATE TABLE objects_v2 (tbl TEXT NOT NULL, key TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (tbl, key)) WITHOUT ROWID`,
		`INSERT INTO objects_v2 SELECT tbl, key, data FROM objects`,
		`DROP TABLE objects`,
		`ALTER TABLE objects_v2 RENAME TO objects`,
		`PRAGMA user_version = 2`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()

	b, err = sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := b.Migrated; m == nil || m.From != 2 || m.To != sqlite.SchemaVersion {
		t.Fatalf("Migrated = %+v, want from 2", m)
	}
	st, err := store.Open(ctx, store.Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	snap := st.Read()
	n := 0
	for _, tok := range snap.Tokens() {
		n++
		if tok.Name == "big" && tok.Digest != big {
			t.Error("the large row changed in the migration")
		}
	}
	if n != 51 {
		t.Errorf("%d tokens after the migration, want 51", n)
	}
	if err := st.Write(ctx, func(w *store.WriteTxn) error {
		return w.PutToken(&store.Token{Name: "t00", Digest: "new", Role: store.TokenRoleSCIM})
	}); err != nil {
		t.Fatalf("write after the migration: %v", err)
	}
	st.Close()

	db, err = sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ddl string
	if err := db.QueryRow(`SELECT sql FROM sqlite_master WHERE name = 'objects'`).Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToUpper(ddl), "WITHOUT ROWID") {
		t.Errorf("objects is still a WITHOUT ROWID table: %s", ddl)
	}
	var data string
	if err := db.QueryRow(`SELECT data FROM objects WHERE tbl = 'tokens' AND key = 't00'`).Scan(&data); err != nil || !strings.Contains(data, `"new"`) {
		t.Errorf("token t00 after the write: %q %v", data, err)
	}
}
