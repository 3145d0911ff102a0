package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimd/scimd/engine/api"
)

func newShadowCmd() *cobra.Command {
	var serverAddr, token string
	cmd := &cobra.Command{
		Use:   "shadow",
		Short: "Watch a candidate policy on real traffic: evaluated beside the live one, never applied",
		Long: `A shadow policy set is gated like the live one (compile, tests, contract) and
evaluated beside it on every change and full pass; nothing it decides is
applied. Set it with serve --shadow-policies DIR (SCIMD_SHADOW_POLICIES, or
shadow-policies in the config file) or with "scimd shadow set DIR"; "scimd
shadow report" lists each teammate it decides differently. Promote it by
merging it into the live policies.`,
	}
	addClientFlags(cmd, &serverAddr, &token)

	var format string
	report := &cobra.Command{
		Use:   "report",
		Short: "List the teammates the shadow policy decides differently from the live one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format, formatText, formatJSON); err != nil {
				return err
			}
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			status, body, err := c.call(cmd.Context(), http.MethodGet, "/api/v1/policy/shadow", nil)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return fmt.Errorf("shadow report: %w", c.apiError(status, body))
			}
			if format == formatJSON {
				return writeIndented(cmd.OutOrStdout(), body)
			}
			var res api.ShadowResponse
			if err := json.Unmarshal(body, &res); err != nil {
				return fmt.Errorf("shadow report: decode: %w", err)
			}
			return writeShadowReport(cmd.OutOrStdout(), &res)
		},
	}
	report.Flags().StringVar(&format, "format", formatText, "output format: text or json")

	var shadowDir string
	set := &cobra.Command{
		Use:   "set [--policies DIR | DIR]",
		Short: "Make the policy set in DIR the shadow policy (gated as a reload would)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := policyDirArg(shadowDir, args, "")
			if err != nil {
				return err
			}
			cand, err := readCandidate(dir)
			if err != nil {
				return err
			}
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			status, body, err := c.call(cmd.Context(), http.MethodPut, "/api/v1/policy/shadow", api.ShadowRequest{Files: cand.Files})
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return fmt.Errorf("shadow set %s: %w", dir, c.apiError(status, body))
			}
			var st struct{ Revision string }
			_ = json.Unmarshal(body, &st)
			fmt.Fprintf(cmd.OutOrStdout(), "shadow policy %s set: evaluated beside the live policy, never applied (scimd shadow report)\n", st.Revision)
			return nil
		},
	}
	set.Flags().StringVar(&shadowDir, "policies", "", "the shadow policy directory")
	clear := &cobra.Command{
		Use:   "clear",
		Short: "Stop evaluating the shadow policy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			status, body, err := c.call(cmd.Context(), http.MethodDelete, "/api/v1/policy/shadow", nil)
			if err != nil {
				return err
			}
			if status != http.StatusNoContent {
				return fmt.Errorf("shadow clear: %w", c.apiError(status, body))
			}
			fmt.Fprintln(cmd.OutOrStdout(), "shadow policy cleared")
			return nil
		},
	}
	cmd.AddCommand(report, set, clear)
	return cmd
}

func writeShadowReport(w io.Writer, res *api.ShadowResponse) error {
	rep := res.Report
	if res.Revision == "" {
		fmt.Fprintln(w, "no shadow policy (set one with serve --shadow-policies DIR or scimd shadow set DIR)")
		if res.Dir != nil && res.Dir.LastError != "" {
			fmt.Fprintf(w, "the shadow directory %s was refused: %s\n", res.Dir.Dir, res.Dir.LastError)
		}
		return nil
	}
	fmt.Fprintf(w, "shadow policy %s (from %s, since %s) against live %s\n", res.Revision, res.Source,
		res.SetAt.UTC().Format(time.RFC3339), dashIfEmpty(rep.LiveRevision))
	if rep.EvaluatedAt.IsZero() {
		fmt.Fprintln(w, "the first full comparison is still running")
	} else {
		fmt.Fprintf(w, "%d teammates compared at %s; %d decided differently\n", rep.Teammates,
			rep.EvaluatedAt.UTC().Format(time.RFC3339), len(rep.Divergent))
	}
	if res.Dir != nil && res.Dir.LastError != "" {
		fmt.Fprintf(w, "the shadow directory's last change was refused: %s\n", res.Dir.LastError)
	}
	if len(rep.Divergent) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tLIVE\tSHADOW\tSINCE\tCAUSE")
	for _, d := range rep.Divergent {
		cause := d.Cause.Kind
		if d.Cause.Actor != "" {
			cause += " (" + d.Cause.Actor + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.UserName, d.Live, d.Shadow, d.Since.UTC().Format(time.RFC3339), cause)
	}
	return tw.Flush()
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
