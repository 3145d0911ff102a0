package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// listFormats are the --format values of every listing command: a table
// for people, the API's own JSON for programs, CSV for spreadsheets.
var listFormats = []string{formatTable, formatJSON, formatCSV}

// addListFormat adds the --format flag every listing command has.
func addListFormat(cmd *cobra.Command, format *string) {
	cmd.Flags().StringVar(format, "format", formatTable, "output format: "+strings.Join(listFormats, ", "))
}

// table is a listing's rows, written as an aligned table or as CSV.
type table struct {
	header []string
	rows   [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// write renders t in format (table or csv).
func (t *table) write(w io.Writer, format string) error {
	if format == formatCSV {
		cw := csv.NewWriter(w)
		if err := cw.Write(t.header); err != nil {
			return err
		}
		if err := cw.WriteAll(t.rows); err != nil {
			return err
		}
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// getListing fetches path from the admin API: the raw JSON for --format
// json (printed indented), or decoded into out for the table.
func getListing(ctx context.Context, c *adminClient, w io.Writer, path, format string, out any) (done bool, err error) {
	if err := checkFormat(format, listFormats...); err != nil {
		return true, err
	}
	status, body, err := c.call(ctx, http.MethodGet, path, nil)
	if err != nil {
		return true, err
	}
	if status != http.StatusOK {
		return true, c.apiError(status, body)
	}
	if format == formatJSON {
		return true, writeIndented(w, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return true, fmt.Errorf("decode %s: %w", path, err)
	}
	return false, nil
}
