package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/scimd/scimd/engine/policy"
)

// defaultPolicyDir is where `scimd policy test|check` look without DIR.
const defaultPolicyDir = "./policies"

// newPolicyCmd returns `scimd policy`: the policy gate run offline.
func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Test and check a policy directory as the server would; show or reload the server's active policy",
	}
	cmd.AddCommand(
		newPolicyGateCmd("test", "Compile a policy directory, run its *_test.rego tests and check the policy contract",
			`Runs the gate the server runs before activating a policy set: parse as
Rego v1, refuse non-deterministic built-ins (http.send, time.now_ns, …),
compile with strict checks, run the *_test.rego tests (the tests
"opa test" runs), and check the policy contract (data.scimd.roles,
data.scimd.group, data.scimd.teammate). Prints PASS/FAIL per test and a
summary; exits with status 1, naming file:line, if the set would be refused.`,
			policy.RunTests),
		newPolicyGateCmd("check", "Compile a policy directory and check the policy contract, without running tests",
			`Parses and compiles the policy directory with the server's strict checks and
capabilities, and checks the policy contract, without running the tests.
Exits with status 1, naming file:line, if the set would be refused.`,
			policy.Check),
	)
	cmd.AddCommand(newPolicyStatusCmds()...)
	return cmd
}

// newPolicyGateCmd wires one gate function to a `scimd policy` subcommand.
func newPolicyGateCmd(name, short, long string, gate func(ctx context.Context, dir string, w io.Writer) (bool, error)) *cobra.Command {
	var policies string
	cmd := &cobra.Command{
		Use:   name + " [--policies DIR | DIR]",
		Short: short,
		Long:  long + "\n\nDIR (--policies, as for serve, plan and whatif, or the argument) defaults to " + defaultPolicyDir + ".",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := policyDirArg(policies, args, defaultPolicyDir)
			if err != nil {
				return err
			}
			ok, err := gate(cmd.Context(), dir, cmd.OutOrStdout())
			if err != nil {
				return fmt.Errorf("policy %s %s: %w", name, dir, err)
			}
			if !ok {
				return &exitError{code: 1} // the report already says why
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&policies, "policies", "", "policy directory")
	return cmd
}

// policyDirArg is the policy directory of a command that takes it as
// --policies (the spelling of serve, plan and whatif) or as its argument.
func policyDirArg(flag string, args []string, def string) (string, error) {
	switch {
	case flag != "" && len(args) == 1 && args[0] != flag:
		return "", fmt.Errorf("two policy directories: --policies %s and %s", flag, args[0])
	case flag != "":
		return flag, nil
	case len(args) == 1:
		return args[0], nil
	case def != "":
		return def, nil
	}
	return "", fmt.Errorf("no policy directory: pass --policies DIR")
}
