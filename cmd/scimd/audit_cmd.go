package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimd/scimd/audit"
	"github.com/scimd/scimd/engine/review"
)

// Output formats of `scimd audit`.
const (
	formatTable = "table"
	formatJSONL = "jsonl"
)

// auditPageSize is how many events one request asks for.
const auditPageSize = 1000

// auditFilter selects audit events (GET /api/v1/audit).
type auditFilter struct {
	teammate, group, actor string
	types                  []string
	since, until           string
	after                  uint64
	// max stops after this many events (0: all).
	max int
}

func (f *auditFilter) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.teammate, "teammate", "", "teammate (user id or userName): its events and its group membership changes")
	fl.StringVar(&f.group, "group", "", "group (id or displayName): its events, including members added and removed")
	fl.StringSliceVar(&f.types, "type", nil, `event type or type prefix, repeatable ("teammate", "scim.group", "policy.activated")`)
	fl.StringVar(&f.actor, "actor", "", "actor name (token name, admin, reconciler, …)")
	fl.StringVar(&f.since, "since", "", "from this time: RFC 3339, a date (2006-01-02) or an age (90m, 24h, 7d)")
	fl.StringVar(&f.until, "until", "", "before this time (same forms as --since)")
	fl.Uint64Var(&f.after, "after", 0, "only events after this sequence number (a cursor)")
}

// query builds the API query for one page after seq.
func (f *auditFilter) query(now time.Time, after uint64, limit int) (url.Values, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("teammate", f.teammate)
	set("group", f.group)
	set("actor", f.actor)
	if len(f.types) > 0 {
		q.Set("type", strings.Join(f.types, ","))
	}
	for _, p := range []struct{ name, v string }{{"since", f.since}, {"until", f.until}} {
		if p.v == "" {
			continue
		}
		t, err := parseWhen(p.v, now)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", p.name, err)
		}
		q.Set(p.name, t.UTC().Format(time.RFC3339Nano))
	}
	if after > 0 {
		q.Set("after", strconv.FormatUint(after, 10))
	}
	q.Set("limit", strconv.Itoa(limit))
	return q, nil
}

// parseWhen reads an RFC 3339 time, a date, or an age before now ("24h",
// "7d").
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (RFC 3339), a date (2006-01-02) or an age (90m, 24h, 7d)", s)
}

// fetchAudit reads the events matching f after seq, page by page, and
// hands each page to emit. It returns the last sequence number seen.
func fetchAudit(ctx context.Context, c *adminClient, f *auditFilter, after uint64, emit func([]audit.Event) error) (uint64, int, error) {
	total := 0
	now := time.Now()
	for {
		limit := auditPageSize
		if f.max > 0 && f.max-total < limit {
			limit = f.max - total
		}
		if limit <= 0 {
			return after, total, nil
		}
		q, err := f.query(now, after, limit)
		if err != nil {
			return after, total, err
		}
		var page struct {
			Events []audit.Event `json:"events"`
			Next   *uint64       `json:"next"`
		}
		if err := c.do(ctx, http.MethodGet, "/api/v1/audit?"+q.Encode(), nil, &page); err != nil {
			return after, total, err
		}
		if len(page.Events) > 0 {
			if err := emit(page.Events); err != nil {
				return after, total, err
			}
			after = page.Events[len(page.Events)-1].Seq
			total += len(page.Events)
		}
		if page.Next == nil || len(page.Events) == 0 {
			return after, total, nil
		}
	}
}

func newAuditCmd() *cobra.Command {
	var serverAddr, token, format string
	var f auditFilter
	var follow bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read, follow, verify and export the audit log",
		Long: `Prints audit events, oldest first, filtered by teammate, group, type, actor
and time. --follow keeps polling for new events until interrupted.

Subcommands verify the hash chain (audit verify) and export JSON lines for
a SIEM (audit export). docs/audit.md describes every event type.`,
		Example: `  scimd audit --teammate alice@example.com
  scimd audit --type policy --since 7d
  scimd audit --format jsonl --follow`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format, formatTable, formatJSON, formatCSV, formatJSONL); err != nil {
				return err
			}
			if follow && format == formatJSON {
				return fmt.Errorf("--follow writes events as they come: use --format jsonl (one JSON event a line), table or csv")
			}
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			return runAuditList(cmd.Context(), c, &f, format, follow, interval, cmd.OutOrStdout())
		},
	}
	addClientFlags(cmd, &serverAddr, &token)
	f.bind(cmd)
	cmd.Flags().IntVar(&f.max, "limit", 0, "print at most this many events (0: all)")
	cmd.Flags().StringVar(&format, "format", formatTable, "output format: table, json, csv or jsonl")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events as they are recorded")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "how often --follow polls")
	cmd.AddCommand(newAuditVerifyCmd(&serverAddr, &token), newAuditExportCmd(&serverAddr, &token), newAuditShowCmd(&serverAddr, &token))
	return cmd
}

func runAuditList(ctx context.Context, c *adminClient, f *auditFilter, format string, follow bool, interval time.Duration, w io.Writer) error {
	table := review.NewEventTable(w)
	cw := csv.NewWriter(w)
	all := []audit.Event{}
	emit := func(events []audit.Event) error {
		switch format {
		case formatJSONL:
			return review.WriteJSONLines(w, events)
		case formatJSON:
			all = append(all, events...)
			return nil
		case formatCSV:
			for _, e := range events {
				_ = cw.Write(review.EventRow(e))
			}
			cw.Flush()
			return cw.Error()
		}
		table.Write(events)
		return table.Flush()
	}
	if format == formatCSV {
		if err := cw.Write(review.EventColumns); err != nil {
			return err
		}
	}
	after, _, err := fetchAudit(ctx, c, f, f.after, emit)
	if err != nil {
		return err
	}
	if format == formatJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"events": all})
	}
	if !follow {
		cw.Flush()
		return cw.Error()
	}
	if interval <= 0 {
		interval = 2 * time.Second
	}
	f.max = 0
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if after, _, err = fetchAudit(ctx, c, f, after, emit); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

func newAuditVerifyCmd(serverAddr, token *string) *cobra.Command {
	var dataDir, expect, format string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit log's hash chain and report the first broken link",
		Long: `Walks the audit log from its first event, recomputing each event's hash
(SHA-256 of its canonical JSON, which includes the previous event's hash)
and checking the link to the previous event. Reports the number of events
verified and the head (SEQ:HASH), or the first event that does not verify.

By default the running server walks its log (GET /api/v1/audit/verify).
With --data DIR the database of a stopped server is read directly, read-only.

--expect SEQ:HASH checks that a head recorded earlier is still in the log
unchanged, which the chain alone cannot prove for its newest events.

Exit status: 0 intact, 1 broken or not verifiable.`,
		Example: `  scimd audit verify
  scimd audit verify --data /var/lib/scimd --expect 1200:3f5a…`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format, formatText, formatJSON); err != nil {
				return err
			}
			var exp *review.ChainHead
			if expect != "" {
				h, err := review.ParseChainHead(expect)
				if err != nil {
					return err
				}
				exp = &h
			}
			res, source, err := verifyChain(cmd.Context(), *serverAddr, *token, dataDir, exp)
			if err != nil {
				return err
			}
			if err := writeVerify(cmd.OutOrStdout(), format, source, res); err != nil {
				return err
			}
			if !res.OK {
				return &exitError{code: 1, err: fmt.Errorf("audit chain broken at event %d: %s", res.BrokenAt, res.Reason)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "", "verify the data directory of a stopped server instead of asking the running one")
	cmd.Flags().StringVar(&expect, "expect", "", "a head recorded earlier (SEQ:HASH) that must still be in the log")
	cmd.Flags().StringVar(&format, "format", formatText, "output format: text or json")
	return cmd
}

// verifyChain verifies through the API, or offline when dataDir is set.
func verifyChain(ctx context.Context, serverAddr, token, dataDir string, expect *review.ChainHead) (review.VerifyResult, string, error) {
	if dataDir != "" {
		log, err := review.OpenOffline(ctx, dataDir)
		if err != nil {
			return review.VerifyResult{}, "", err
		}
		defer log.Close()
		res, err := review.Verify(ctx, log.Page, expect)
		return res, log.Path(), err
	}
	c, err := newAdminClient(serverAddr, token)
	if err != nil {
		return review.VerifyResult{}, "", err
	}
	path := "/api/v1/audit/verify"
	if expect != nil {
		path += "?expect=" + url.QueryEscape(expect.String())
	}
	var res review.VerifyResult
	if err := c.do(ctx, http.MethodGet, path, nil, &res); err != nil {
		return res, "", err
	}
	return res, c.server, nil
}

func writeVerify(w io.Writer, format, source string, res review.VerifyResult) error {
	if format == formatJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	head := "no events"
	if res.Head != nil {
		head = fmt.Sprintf("head %s (%s)", res.Head, res.Head.Time.UTC().Format(time.RFC3339))
	}
	if res.OK {
		_, err := fmt.Fprintf(w, "audit chain OK: %d events verified in %s; %s\n", res.Events, source, head)
		return err
	}
	fmt.Fprintf(w, "audit chain BROKEN at event %d: %s\n", res.BrokenAt, res.Reason)
	if e := res.Broken; e != nil {
		fmt.Fprintf(w, "  event %d: %s %s by %s:%s on %s %s: %s\n", e.Seq, e.Time.UTC().Format(time.RFC3339), e.Type,
			e.Actor.Kind, e.Actor.Name, e.Target.Type, firstNonEmpty(e.Target.Name, e.Target.ID), review.Describe(*e))
	}
	_, err := fmt.Fprintf(w, "  %d events before it verified in %s; last good %s\n", res.Events, source, head)
	return err
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func newAuditExportCmd(serverAddr, token *string) *cobra.Command {
	var f auditFilter
	var out string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export audit events as JSON lines for a SIEM",
		Long: `Writes the matching audit events, oldest first, one JSON object per line,
exactly as stored (with seq, prevHash and hash, so the export verifies
on its own). With --out the file is written completely or not at all.
Resume an export with --after set to the last exported seq.`,
		Example: `  scimd audit export --since 2026-01-01 --out audit-2026.jsonl
  scimd audit export --after 1200 >> audit.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAdminClient(*serverAddr, *token)
			if err != nil {
				return err
			}
			return runAuditExport(cmd.Context(), c, &f, out, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f.bind(cmd)
	cmd.Flags().StringVarP(&out, "out", "o", "", "write to this file instead of standard output")
	return cmd
}

func runAuditExport(ctx context.Context, c *adminClient, f *auditFilter, out string, stdout, stderr io.Writer) (err error) {
	w := stdout
	var tmp *os.File
	if out != "" {
		tmp, err = os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer func() {
			if err != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		w = tmp
	}
	var first uint64
	last, n, err := fetchAudit(ctx, c, f, f.after, func(events []audit.Event) error {
		if first == 0 {
			first = events[0].Seq
		}
		return review.WriteJSONLines(w, events)
	})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if tmp != nil {
		if err = tmp.Sync(); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if err = tmp.Close(); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if err = os.Rename(tmp.Name(), out); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		where := out
		if n == 0 {
			fmt.Fprintf(stderr, "exported no events to %s\n", where)
		} else {
			fmt.Fprintf(stderr, "exported %d events (seq %d to %d) to %s\n", n, first, last, where)
		}
	}
	return nil
}

func newAuditShowCmd(serverAddr, token *string) *cobra.Command {
	return &cobra.Command{
		Use:   "show SEQ",
		Short: "Print one audit event as stored",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("SEQ must be an audit sequence number: %q", args[0])
			}
			c, err := newAdminClient(*serverAddr, *token)
			if err != nil {
				return err
			}
			status, body, err := c.call(cmd.Context(), http.MethodGet, "/api/v1/audit/"+strconv.FormatUint(seq, 10), nil)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return c.apiError(status, body)
			}
			return writeIndented(cmd.OutOrStdout(), body)
		},
	}
}
