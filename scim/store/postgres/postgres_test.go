package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/scimd/scimd/scim/store"
	"github.com/scimd/scimd/scim/store/postgres"
	"github.com/scimd/scimd/scim/store/postgres/pgtest"
	"github.com/scimd/scimd/scim/store/storetest"
)

func TestConformance(t *testing.T) {
	c := pgtest.Start(t)
	storetest.RunTests(t, func(t *testing.T) storetest.Opener {
		url := c.CreateDatabase(t)
		return func() store.Backend {
			b, err := postgres.Open(context.Background(), url)
			if err != nil {
				t.Fatalf("open postgres: %v", err)
			}
			return b
		}
	})
}

func TestMigrations(t *testing.T) {
	c := pgtest.Start(t)
	ctx := context.Background()
	t.Run("concurrent first opens migrate once", func(t *testing.T) {
		url := c.CreateDatabase(t)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				b, err := postgres.Open(ctx, url)
				if err == nil {
					b.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("open %d: %v", i, err)
			}
		}
		b, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer b.Close()
		var versions []int32
		rows, err := b.Pool().Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var v int32
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			versions = append(versions, v)
		}
		if len(versions) != postgres.SchemaVersion || versions[len(versions)-1] != int32(postgres.SchemaVersion) {
			t.Fatalf("schema_migrations = %v, want 1..%d once each", versions, postgres.SchemaVersion)
		}
	})
	t.Run("a newer schema is refused", func(t *testing.T) {
		url := c.CreateDatabase(t)
		b, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Pool().Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, postgres.SchemaVersion+1); err != nil {
			t.Fatal(err)
		}
		b.Close()
		_, err = postgres.Open(ctx, url)
		if !errors.Is(err, postgres.ErrSchemaTooNew) {
			t.Fatalf("open newer schema = %v, want ErrSchemaTooNew", err)
		}
		if !strings.Contains(err.Error(), "schema version") {
			t.Fatalf("message does not say which versions: %v", err)
		}
	})
	t.Run("unreachable database names no password", func(t *testing.T) {
		_, err := postgres.Open(ctx, "postgres://scimd:s3cret@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
		if err == nil {
			t.Fatal("open of a closed port succeeded")
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("error repeats the password: %v", err)
		}
	})
}

func TestFencedCommitFails(t *testing.T) {
	c := pgtest.Start(t)
	ctx := context.Background()
	url := c.CreateDatabase(t)
	b, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Pool().Exec(ctx, `UPDATE leader SET epoch = 7`); err != nil {
		t.Fatal(err)
	}
	b.Fence(7)
	row := store.Row{Table: store.TableTokens, Key: "a", Data: []byte(`{"name":"a"}`)}
	if err := b.Commit(ctx, []*store.Batch{{Rows: []store.Row{row}}}); err != nil {
		t.Fatalf("commit at the current epoch: %v", err)
	}
	if _, err := b.Pool().Exec(ctx, `UPDATE leader SET epoch = 8`); err != nil {
		t.Fatal(err)
	}
	row.Key = "b"
	if err := b.Commit(ctx, []*store.Batch{{Rows: []store.Row{row}}}); !errors.Is(err, postgres.ErrFenced) {
		t.Fatalf("commit after another leader took over = %v, want ErrFenced", err)
	}
	var n int
	if err := b.Pool().QueryRow(ctx, `SELECT count(*) FROM objects WHERE key = 'b'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("fenced row stored: %d, %v", n, err)
	}
}
