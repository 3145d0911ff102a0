package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimd/scimd/engine/reconcile"
	"github.com/scimd/scimd/engine/review"
)

func newChangesCmd() *cobra.Command {
	var serverAddr, token string
	cmd := &cobra.Command{
		Use:   "changes",
		Short: "List, approve or reject changes held by the mass-change guard",
		Long: `A single trigger (a policy reload, one SCIM request) that would remove access
from or demote more teammates than the guard's threshold, grant the highest
role to more than a few, or newly exclude a teammate is held as a pending
change: nobody in it changes until an admin approves it (the changes are
applied) or rejects it (the teammates keep their state). Rejecting a held
policy activation sticks: its teammates keep their decisions until another
policy revision is activated, so revert or fix the policy in git.`,
	}
	addClientFlags(cmd, &serverAddr, &token)

	var state, format string
	list := &cobra.Command{
		Use:   "list",
		Short: "List held changes (pending by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			var out struct {
				Changes []reconcile.PendingChange `json:"changes"`
			}
			if done, err := getListing(cmd.Context(), c, cmd.OutOrStdout(), "/api/v1/changes?state="+url.QueryEscape(state), format, &out); done {
				return err
			}
			return changesTable(out.Changes).write(cmd.OutOrStdout(), format)
		},
	}
	list.Flags().StringVar(&state, "state", reconcile.ChangePending, "pending, approved, rejected or all")
	addListFormat(list, &format)

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show every teammate change a held change contains",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			var ch reconcile.PendingChange
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/changes/"+url.PathEscape(args[0]), nil, &ch); err != nil {
				return err
			}
			return writeChange(cmd.OutOrStdout(), &ch)
		},
	}
	decide := func(verb, past string) *cobra.Command {
		return &cobra.Command{
			Use:   verb + " ID",
			Short: map[string]string{"approve": "Approve a held change: its teammate changes are applied", "reject": "Reject a held change: its teammates keep their state"}[verb],
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := newAdminClient(serverAddr, token)
				if err != nil {
					return err
				}
				var ch reconcile.PendingChange
				if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/changes/"+url.PathEscape(args[0])+"/"+verb, nil, &ch); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), decisionText(past, &ch))
				if verb == "reject" {
					fmt.Fprintln(cmd.OutOrStdout(), reconcile.RejectionNote(&ch))
				}
				return nil
			},
		}
	}
	cmd.AddCommand(list, show, decide("approve", "approved"), decide("reject", "rejected"))
	return cmd
}

func triggerText(c reconcile.Cause) string {
	s := c.Kind
	if c.Actor != "" {
		s += " by " + c.Actor
	}
	if c.Revision != "" {
		s += " (policy " + c.Revision + ")"
	}
	if c.Summary != "" {
		s += ": " + c.Summary
	}
	return s
}

// decisionText reports an approval or rejection. An approval applies each
// teammate's decision as it is now, so it counts what was applied and
// what was left as it was, not the changes held.
func decisionText(past string, ch *reconcile.PendingChange) string {
	held := fmt.Sprintf("held %d teammate changes, %d demotions", len(ch.Changes), ch.Demotions)
	o := ch.Outcome
	switch {
	case past != "approved":
		return fmt.Sprintf("%s change %s (%s)", past, ch.ID, held)
	case o == nil:
		return fmt.Sprintf("approved change %s (%s); still being applied: see scimd changes show %s", ch.ID, held, ch.ID)
	}
	s := fmt.Sprintf("approved change %s: %d teammates changed", ch.ID, o.Applied)
	if o.Unchanged > 0 {
		s += fmt.Sprintf(", %d left as they were (their decision no longer changes anything)", o.Unchanged)
	}
	if o.Errors > 0 {
		s += fmt.Sprintf(", %d could not be decided (kept, audited as policy.error)", o.Errors)
	}
	return s + " (" + held + ")"
}

func changesTable(changes []reconcile.PendingChange) *table {
	t := &table{header: []string{"ID", "STATE", "CREATED", "TRIGGER", "CHANGES", "DEMOTIONS", "DECIDED BY"}}
	for _, c := range changes {
		t.add(c.ID, c.State, c.Created.UTC().Format(time.RFC3339), triggerText(c.Trigger), strconv.Itoa(len(c.Changes)),
			fmt.Sprintf("%d of %d", c.Demotions, c.Teammates), orDash(strPtr(c.DecidedBy)))
	}
	return t
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func writeChange(w io.Writer, c *reconcile.PendingChange) error {
	fmt.Fprintf(w, "change %s: %s, held %s\n  trigger:   %s\n  demotions: %d of %d teammates\n", c.ID, c.State,
		c.Created.UTC().Format(time.RFC3339), triggerText(c.Trigger), c.Demotions, c.Teammates)
	for _, why := range c.Reasons {
		fmt.Fprintf(w, "  held:      %s\n", why)
	}
	if c.DecidedBy != "" {
		fmt.Fprintf(w, "  decided:   by %s at %s\n", c.DecidedBy, c.Decided.UTC().Format(time.RFC3339))
	}
	if o := c.Outcome; o != nil {
		fmt.Fprintf(w, "  applied:   %d teammates changed, %d left as they were, %d not decided\n", o.Applied, o.Unchanged, o.Errors)
	}
	if len(c.Deferred) > 0 {
		fmt.Fprintf(w, "  deferred:  %d teammates wait behind it\n", len(c.Deferred))
	}
	fmt.Fprintf(w, "\nChanges (%d):\n", len(c.Changes))
	for _, d := range c.Changes {
		mark := "~"
		if d.Demotion {
			mark = "-"
		}
		if _, err := fmt.Fprintf(w, "  %s %s\n", mark, review.DiffText(d)); err != nil {
			return err
		}
	}
	return nil
}
