package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scimd/scimd/engine/datadir"
	"github.com/scimd/scimd/scim/store"
	"github.com/scimd/scimd/scim/store/postgres"
	"github.com/scimd/scimd/scim/store/sqlite"
)

func newMigrateCmd() *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "migrate --from DIR|postgres://… --to postgres://…|DIR",
		Short: "Copy the whole state, audit chain and change feed between a data directory and PostgreSQL, and verify the copy",
		Long: `Copies every object, the audit chain and the change feed from one store
to another, empty one: from a data directory (SQLite) to a PostgreSQL
database, or back. Then reads the target back and verifies it: the same
objects, an audit chain that verifies and ends at the source's head, the
same feed without a gap. Stop every scimd using either store first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return fmt.Errorf("both --from and --to are required")
			}
			ctx := cmd.Context()
			src, closeSrc, err := openForMigrate(ctx, from)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			defer closeSrc()
			dst, closeDst, err := openForMigrate(ctx, to)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			defer closeDst()
			rep, err := store.Copy(ctx, src, dst)
			if err != nil {
				return fmt.Errorf("migrate from %s to %s: %w", describeStore(from), describeStore(to), err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "copied %d objects, %d audit events (chain verified up to %d, %s) and %d feed entries from %s to %s\n",
				rep.Objects, rep.Events, rep.AuditHead, rep.AuditHash, rep.FeedEntries, describeStore(from), describeStore(to))
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "source: a data directory or a postgres:// URL")
	cmd.Flags().StringVar(&to, "to", "", "target (empty): a postgres:// URL or a data directory")
	return cmd
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

func describeStore(s string) string {
	if isPostgresURL(s) {
		return postgres.Describe(s)
	}
	return s
}

// openForMigrate opens a data directory (locked against a running scimd)
// or a PostgreSQL database.
func openForMigrate(ctx context.Context, where string) (store.Backend, func(), error) {
	if isPostgresURL(where) {
		b, err := postgres.Open(ctx, where)
		if err != nil {
			return nil, nil, err
		}
		return b, func() { b.Close() }, nil
	}
	lock, err := datadir.Acquire(where)
	if err != nil {
		return nil, nil, err
	}
	b, err := sqlite.Open(ctx, where)
	if err != nil {
		lock.Release()
		return nil, nil, err
	}
	return b, func() { b.Close(); lock.Release() }, nil
}
