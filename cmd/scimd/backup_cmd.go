package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/scimd/scimd/engine/app"
	"github.com/scimd/scimd/engine/backup"
)

func newBackupCmd() *cobra.Command {
	var dataDir, out string
	cmd := &cobra.Command{
		Use:   "backup --data DIR --out FILE",
		Short: "Copy the data directory's store to one file while scimd runs, and verify the copy",
		Long: `Writes a consistent snapshot of everything scimd keeps in the data
directory (users, groups, teammates, pending changes, tokens, webhooks and
their cursors, the audit chain and the change feed) to FILE, which must
not exist, without stopping the server; then verifies the copy's audit
hash chain. The file is created with mode 0600: it holds token digests and
webhook secrets. The admin API serves the same as POST /api/v1/backup.
Restore it with scimd restore. With --database (PostgreSQL), use pg_dump.`,
		Example: `  scimd backup --data /var/lib/scimd --out /backup/scimd-$(date +%F).db`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			info, err := backup.Create(cmd.Context(), dataDir, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backup written to %s: %d bytes, audit chain verified (%d events, head %s)\n",
				info.Path, info.Bytes, info.Events, headText(info))
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "./scimd-data", "data directory of the store to back up")
	cmd.Flags().StringVar(&out, "out", "", "file to write (must not exist)")
	return cmd
}

func newRestoreCmd() *cobra.Command {
	var dataDir, from string
	var force bool
	cmd := &cobra.Command{
		Use:   "restore --from FILE --data DIR [--force]",
		Short: "Install a backup as a data directory's store (scimd stopped)",
		Long: `Verifies the backup's audit chain, then installs it as DIR's store
(copied beside it, synced, renamed into place) and records a store.restored
audit event. It refuses while a scimd holds DIR, and refuses a DIR that
already holds a store unless --force (back that one up first).

Everything written after the backup was taken is gone. The change feed
starts a new epoch: feed consumers that pass their epoch, or whose cursor
is past the restored head, get 409 with the new epoch and head and must
re-read the teammates; webhook deliveries carry the epoch in the
scimd-feed-epoch header. See docs/operations.md.`,
		Example: `  systemctl stop scimd
  scimd restore --from /backup/scimd-2026-12-01.db --data /var/lib/scimd --force
  systemctl start scimd`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return fmt.Errorf("--from is required")
			}
			info, err := backup.Restore(cmd.Context(), from, dataDir, backup.RestoreOptions{Force: force, Records: app.Records(), Actor: "scimd restore"})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %s into %s: audit chain verified (%d events, head %s); the feed starts a new epoch\n",
				from, dataDir, info.Events, headText(info))
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "./scimd-data", "data directory to restore into")
	cmd.Flags().StringVar(&from, "from", "", "backup file made by scimd backup")
	cmd.Flags().BoolVar(&force, "force", false, "replace the store the data directory holds")
	return cmd
}

func headText(info backup.Info) string {
	if info.Head == nil {
		return "none"
	}
	return info.Head.String()
}
