package pgtest_test

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/scimd/scimd/scim/store/postgres/pgtest"
)

func TestClusterStartsAndIsRemoved(t *testing.T) {
	var dir string
	t.Run("cluster", func(t *testing.T) {
		c := pgtest.Start(t)
		dir = c.Dir
		url := c.CreateDatabase(t)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer conn.Close(ctx)
		var one int
		if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("SELECT 1 = %d, %v", one, err)
		}
		var fsync string
		if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "on" {
			t.Fatalf("fsync = %q, %v; durability tests need it on", fsync, err)
		}
	})
	if dir == "" {
		return // skipped
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("cluster directory %s left behind (stat: %v)", dir, err)
	}
}
