package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimd/scimd/engine/reconcile"
	"github.com/scimd/scimd/engine/review"
)

// teammateDoc is a teammate as the admin API shows it.
type teammateDoc struct {
	ID          string                  `json:"id"`
	UserName    string                  `json:"userName"`
	Role        *string                 `json:"role"`
	Access      bool                    `json:"access"`
	Excluded    bool                    `json:"excluded"`
	Reasons     []string                `json:"reasons"`
	Revision    string                  `json:"revision"`
	DecisionID  string                  `json:"decisionId"`
	ChangedAt   time.Time               `json:"changedAt"`
	Groups      []string                `json:"groups"`
	Manual      *reconcile.ManualChange `json:"manual"`
	UserDeleted bool                    `json:"userDeleted"`
	// PendingChange is the held change the teammate waits behind.
	PendingChange string `json:"pendingChange"`
	// DecisionError is set while its latest evaluation failed.
	DecisionError string                  `json:"decisionError"`
	Decision      *reconcile.DecisionView `json:"decision"`
}

func (t teammateDoc) role() string {
	if t.Role == nil || *t.Role == "" {
		return "none"
	}
	return *t.Role
}

// historyDoc is GET /api/v1/teammates/{id}/history.
type historyDoc struct {
	ID       string                `json:"id"`
	Teammate *teammateDoc          `json:"teammate"`
	History  []review.HistoryEntry `json:"history"`
}

func newTeammateCmd() *cobra.Command {
	var serverAddr, token string
	cmd := &cobra.Command{
		Use:     "teammate",
		Aliases: []string{"teammates"},
		Short:   "Show teammates: their role, access, why, and the history of their changes",
	}
	addClientFlags(cmd, &serverAddr, &token)
	var settleFor time.Duration
	cmd.PersistentFlags().DurationVar(&settleFor, "settle", 5*time.Second,
		"first wait up to this long until every acknowledged change is reconciled (0: do not wait)")

	var format string
	show := &cobra.Command{
		Use:   "show ID|USERNAME",
		Short: "Show a teammate's role and access, why, and its history of changes with their causes",
		Long: `Shows a teammate's current role and access, the reasons and policy revision
of the decision that set them, and, from the audit log, every change of its
role, access or exclusion, oldest first, with what caused it (the identity
provider's request, a policy activation, a manual change, an approval).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, formatText, formatJSON); err != nil {
				return err
			}
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			settle(cmd.Context(), c, settleFor, cmd.ErrOrStderr())
			status, body, err := c.call(cmd.Context(), http.MethodGet, "/api/v1/teammates/"+url.PathEscape(args[0])+"/history", nil)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return fmt.Errorf("teammate %s: %w", args[0], c.apiError(status, body))
			}
			if format == formatJSON {
				return writeIndented(cmd.OutOrStdout(), body)
			}
			var doc historyDoc
			if err := json.Unmarshal(body, &doc); err != nil {
				return fmt.Errorf("teammate %s: decode: %w", args[0], err)
			}
			return writeTeammate(cmd.OutOrStdout(), &doc)
		},
	}
	show.Flags().StringVar(&format, "format", formatText, "output format: text or json")

	var role, group, access, listFormat string
	list := &cobra.Command{
		Use:   "list",
		Short: "List teammates with their role and access",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(listFormat, listFormats...); err != nil {
				return err
			}
			switch strings.ToLower(access) {
			case "", "true", "false":
				access = strings.ToLower(access)
			case "yes":
				access = "true"
			case "no":
				access = "false"
			default:
				return fmt.Errorf("--access %q: use yes, no, true or false", access)
			}
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"role": role, "group": group, "access": access} {
				if v != "" {
					q.Set(k, v)
				}
			}
			path := "/api/v1/teammates"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			settle(cmd.Context(), c, settleFor, cmd.ErrOrStderr())
			status, body, err := c.call(cmd.Context(), http.MethodGet, path, nil)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return c.apiError(status, body)
			}
			if listFormat == formatJSON {
				return writeIndented(cmd.OutOrStdout(), body)
			}
			var out struct {
				Teammates []teammateDoc `json:"teammates"`
			}
			if err := json.Unmarshal(body, &out); err != nil {
				return fmt.Errorf("decode teammates: %w", err)
			}
			sort.SliceStable(out.Teammates, func(i, j int) bool { return out.Teammates[i].UserName < out.Teammates[j].UserName })
			tab := table{header: []string{"USERNAME", "ROLE", "ACCESS", "EXCLUDED", "GROUPS", "ID"}}
			for _, t := range out.Teammates {
				tab.add(t.UserName, t.role(), yesNo(t.Access), yesNo(t.Excluded), strings.Join(t.Groups, ", "), t.ID)
			}
			return tab.write(cmd.OutOrStdout(), listFormat)
		},
	}
	list.Flags().StringVar(&role, "role", "", "only teammates with this role")
	list.Flags().StringVar(&group, "group", "", "only members of this group (id or displayName)")
	list.Flags().StringVar(&access, "access", "", "only teammates with (yes, true) or without (no, false) access")
	addListFormat(list, &listFormat)

	var historyFormat string
	history := &cobra.Command{
		Use:   "history ID|USERNAME",
		Short: "A teammate's role and access changes, oldest first, with their causes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(historyFormat, formatText, formatJSON); err != nil {
				return err
			}
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			settle(cmd.Context(), c, settleFor, cmd.ErrOrStderr())
			status, body, err := c.call(cmd.Context(), http.MethodGet, "/api/v1/teammates/"+url.PathEscape(args[0])+"/history", nil)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return fmt.Errorf("teammate %s: %w", args[0], c.apiError(status, body))
			}
			if historyFormat == formatJSON {
				return writeIndented(cmd.OutOrStdout(), body)
			}
			var doc struct {
				History []review.HistoryEntry `json:"history"`
			}
			if err := json.Unmarshal(body, &doc); err != nil {
				return fmt.Errorf("decode history: %w", err)
			}
			return review.WriteHistoryText(cmd.OutOrStdout(), doc.History)
		},
	}
	history.Flags().StringVar(&historyFormat, "format", formatText, "output format: text or json")

	cmd.AddCommand(show, list, history)
	return cmd
}

// settle waits until the server has reconciled every change it
// acknowledged, so that what follows reads its own writes. Roles change
// asynchronously, within milliseconds, after a SCIM write. A server that
// does not settle in time is reported on w, not treated as an error.
func settle(ctx context.Context, c *adminClient, d time.Duration, w io.Writer) {
	if d <= 0 {
		return
	}
	var out struct {
		Settled bool `json:"settled"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/settled?timeout="+url.QueryEscape(d.String()), nil, &out)
	switch {
	case err != nil:
		fmt.Fprintf(w, "scimd: could not wait for pending changes: %v\n", err)
	case !out.Settled:
		fmt.Fprintf(w, "scimd: changes still being applied after %s; showing the state as it is now\n", d)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// writeTeammate prints a teammate and its history for a terminal.
func writeTeammate(w io.Writer, doc *historyDoc) error {
	bw := bufio.NewWriter(w)
	if t := doc.Teammate; t != nil {
		fmt.Fprintf(bw, "%s (id %s)\n", t.UserName, t.ID)
		fmt.Fprintf(bw, "  role:      %s\n", t.role())
		fmt.Fprintf(bw, "  access:    %s\n", yesNo(t.Access))
		fmt.Fprintf(bw, "  excluded:  %s\n", yesNo(t.Excluded))
		if t.UserDeleted {
			fmt.Fprintln(bw, "  user:      deleted in the identity provider (kept: excluded)")
		}
		if t.PendingChange != "" {
			fmt.Fprintf(bw, "  pending:   waits behind held change %s (scimd changes show %s)\n", t.PendingChange, t.PendingChange)
		}
		if t.DecisionError != "" {
			fmt.Fprintf(bw, "  error:     %s\n", t.DecisionError)
		}
		groups := "none"
		if len(t.Groups) > 0 {
			groups = strings.Join(t.Groups, ", ")
		}
		fmt.Fprintf(bw, "  groups:    %s\n", groups)
		fmt.Fprintf(bw, "  why:       %s\n", strings.Join(t.Reasons, "; "))
		decided := "policy " + firstNonEmpty(t.Revision, "(none)")
		if t.DecisionID != "" {
			decided += ", decision " + t.DecisionID
		}
		if !t.ChangedAt.IsZero() {
			decided += ", last changed " + t.ChangedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(bw, "  decided:   %s\n", decided)
		if d := t.Decision; d != nil && d.Revision != t.Revision {
			fmt.Fprintf(bw, "  latest:    policy %s kept it (decision %s at %s): %s\n", d.Revision, d.DecisionID,
				d.At.UTC().Format(time.RFC3339), strings.Join(d.Reasons, "; "))
		}
		if m := t.Manual; m != nil {
			fmt.Fprintf(bw, "  manual:    role set to %q by %s at %s\n", m.Role, m.Actor, m.At.UTC().Format(time.RFC3339))
		}
	} else {
		fmt.Fprintf(bw, "%s: no longer a teammate (deleted)\n", doc.ID)
	}
	fmt.Fprintln(bw, "\nHistory (oldest first):")
	if err := bw.Flush(); err != nil {
		return err
	}
	return review.WriteHistoryText(w, doc.History)
}
