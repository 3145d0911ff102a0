package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/spf13/cobra"

	"github.com/scimd/scimd/engine/review"
)

// formatCSV is the spreadsheet format of `scimd report`.
const formatCSV = "csv"

func newReportCmd() *cobra.Command {
	var serverAddr, token, format, out string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Access review report: groups → roles, members per role, exclusions, access outside mapped groups",
		Long: `Prints the periodic access review: each group with its role (or inactive)
and members, the teammates holding each role, the teammates excluded from
provisioning, and the teammates who have access without being in any mapped
group (an attribute rule, an exclusion, a manual change or a default role
gave it). Markdown for a review ticket, CSV (one row per teammate) for a
spreadsheet, or JSON.`,
		Example: `  scimd report > access-review.md
  scimd report --format csv --out access-review.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format, formatMarkdown, formatCSV, formatJSON); err != nil {
				return err
			}
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			status, body, err := c.call(cmd.Context(), http.MethodGet, "/api/v1/report", nil)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return fmt.Errorf("report: %w", c.apiError(status, body))
			}
			w := cmd.OutOrStdout()
			if out != "" {
				f, err := os.Create(out)
				if err != nil {
					return fmt.Errorf("report: %w", err)
				}
				defer f.Close()
				w = f
			}
			if err := writeReport(w, format, body); err != nil {
				return err
			}
			if f, ok := w.(*os.File); ok && out != "" {
				if err := f.Close(); err != nil {
					return fmt.Errorf("report: %w", err)
				}
			}
			return nil
		},
	}
	addClientFlags(cmd, &serverAddr, &token)
	cmd.Flags().StringVar(&format, "format", formatMarkdown, "output format: markdown, csv or json")
	cmd.Flags().StringVarP(&out, "out", "o", "", "write to this file instead of standard output")
	return cmd
}

func writeReport(w io.Writer, format string, body []byte) error {
	if format == formatJSON {
		return writeIndented(w, body)
	}
	var r review.Report
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("report: decode: %w", err)
	}
	if format == formatCSV {
		return review.WriteReportCSV(w, &r)
	}
	return review.WriteReportMarkdown(w, &r)
}
