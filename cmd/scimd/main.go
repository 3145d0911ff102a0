package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/scimd/scimd/engine/buildinfo"
)

// exitError carries a specific exit status out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "scimd",
		Short:         "SCIM 2.0 service provider that maps IdP groups to application roles with Rego policies",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newTokenCmd(), newClientCmd(), newPolicyCmd())
	root.AddCommand(newPlanCmd(), newAuditCmd(), newTeammateCmd(), newReportCmd(), newChangesCmd())
	root.AddCommand(newWebhookCmd(), newVersionCmd(), newHealthcheckCmd())
	root.AddCommand(newExplainCmd(), newWhatIfCmd(), newShadowCmd())
	root.AddCommand(newMigrateCmd(), newBackupCmd(), newRestoreCmd(), newGroupsCmd())
	root.Version = buildinfo.Read().String()
	root.SetVersionTemplate("{{.Version}}\n")
	return root
}

func main() {
	err := newRootCmd().Execute()
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "scimd:", ee.err)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "scimd:", err)
	os.Exit(1)
}
