package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimd/scimd/engine/api"
	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/engine/reconcile"
)

func newExplainCmd() *cobra.Command {
	var serverAddr, token, format string
	var settleFor time.Duration
	cmd := &cobra.Command{
		Use:   "explain ID|USERNAME",
		Short: "Explain why the live policy gives a teammate its role and access",
		Long: `Evaluates the live policy for the teammate with OPA's trace and shows the
decision, the policy rules that produced it (file:line and value), the groups
and attributes without which the decision would differ, and the step that
chose the role. Nothing is written.`,
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
			status, body, err := c.call(cmd.Context(), http.MethodGet, "/api/v1/teammates/"+url.PathEscape(args[0])+"/explain", nil)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return fmt.Errorf("explain %s: %w", args[0], c.apiError(status, body))
			}
			if format == formatJSON {
				return writeIndented(cmd.OutOrStdout(), body)
			}
			var ex api.ExplainResponse
			if err := json.Unmarshal(body, &ex); err != nil {
				return fmt.Errorf("explain %s: decode: %w", args[0], err)
			}
			return writeExplanation(cmd.OutOrStdout(), &ex)
		},
	}
	addClientFlags(cmd, &serverAddr, &token)
	cmd.Flags().StringVar(&format, "format", formatText, "output format: text or json")
	cmd.Flags().DurationVar(&settleFor, "settle", 5*time.Second,
		"first wait up to this long until every acknowledged change is reconciled (0: do not wait)")
	return cmd
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func writeExplanation(w io.Writer, ex *api.ExplainResponse) error {
	d := ex.Decision
	fmt.Fprintf(w, "%s (%s): %s\n", ex.UserName, ex.UserID, d.Summary())
	fmt.Fprintf(w, "policy revision %s\n", ex.Revision)
	for _, r := range d.Reasons {
		fmt.Fprintf(w, "  because %s\n", r)
	}
	p := ex.Precedence
	fmt.Fprintf(w, "\nchosen by %s at %s:%d", p.Rule, p.File, p.Row)
	if p.Branch > 0 {
		fmt.Fprintf(w, " (else branch %d)", p.Branch)
	}
	if p.Rank >= 0 {
		fmt.Fprintf(w, "; %s is %d of %d in the precedence %s", d.Role, p.Rank+1, len(p.Roles), strings.Join(p.Roles, " > "))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "\nwhat mattered (the decision without it):")
	if len(ex.Mattered) == 0 {
		fmt.Fprintln(w, "  nothing alone: no single group or attribute changes the decision")
	}
	for _, f := range ex.Mattered {
		fmt.Fprintf(w, "  %s %s = %s → %s\n", f.Kind, f.Name, compactJSON(f.Value), f.Without)
	}
	fmt.Fprintln(w, "\nrules that produced a value:")
	for _, r := range ex.Rules {
		args := ""
		if len(r.Args) > 0 {
			parts := make([]string, len(r.Args))
			for i, a := range r.Args {
				parts[i] = compactJSON(a)
			}
			args = "(" + strings.Join(parts, ", ") + ")"
		}
		fmt.Fprintf(w, "  %s:%d  %s%s = %s\n", r.File, r.Row, strings.TrimPrefix(r.Rule, "data."), args, compactJSON(r.Value))
	}
	if ex.Truncated {
		fmt.Fprintln(w, "  … (more rules left out)")
	}
	return nil
}

func newWhatIfCmd() *cobra.Command {
	var serverAddr, token, format, user, policies string
	var add, remove, set []string
	cmd := &cobra.Command{
		Use:   "whatif --user ID|USERNAME [--add-group G]... [--remove-group G]... [--set PATH=VALUE]... [--policies DIR]",
		Short: "Show a teammate's decision now and after a hypothetical change; nothing is applied",
		Long: `Decides the teammate with the live policy now, and again with the change
applied to its input: groups added or removed (by id, displayName or
externalId; an unknown name is a new group), user attributes set (PATH is
dot-separated, a schema URN such as
urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.department is one
key; VALUE is JSON or text), optionally under a candidate policy directory
(gated as a reload would). Nothing is applied; one policy.whatif audit event
records the query.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format, formatText, formatJSON); err != nil {
				return err
			}
			if user == "" {
				return fmt.Errorf("--user is required")
			}
			req := api.WhatIfRequest{User: user, Hypothesis: reconcile.Hypothesis{AddGroups: add, RemoveGroups: remove}}
			for _, kv := range set {
				path, value, ok := strings.Cut(kv, "=")
				if !ok || path == "" {
					return fmt.Errorf("--set %q: want PATH=VALUE", kv)
				}
				if req.Set == nil {
					req.Set = map[string]any{}
				}
				req.Set[path] = reconcile.ParseAttributeValue(value)
			}
			if policies != "" {
				cand, err := readCandidate(policies)
				if err != nil {
					return err
				}
				req.Policies = cand.Files
			}
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			status, body, err := c.call(cmd.Context(), http.MethodPost, "/api/v1/whatif", req)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return fmt.Errorf("what-if: %w", c.apiError(status, body))
			}
			if format == formatJSON {
				return writeIndented(cmd.OutOrStdout(), body)
			}
			var res reconcile.WhatIf
			if err := json.Unmarshal(body, &res); err != nil {
				return fmt.Errorf("what-if: decode: %w", err)
			}
			return writeWhatIf(cmd.OutOrStdout(), &res)
		},
	}
	addClientFlags(cmd, &serverAddr, &token)
	cmd.Flags().StringVar(&user, "user", "", "the teammate: id or userName")
	cmd.Flags().StringArrayVar(&add, "add-group", nil, "add the teammate to this group (repeatable)")
	cmd.Flags().StringArrayVar(&remove, "remove-group", nil, "remove the teammate from this group (repeatable)")
	cmd.Flags().StringArrayVar(&set, "set", nil, "set a user attribute, PATH=VALUE (repeatable)")
	cmd.Flags().StringVar(&policies, "policies", "", "decide the change with the candidate policy set in this directory")
	cmd.Flags().StringVar(&format, "format", formatText, "output format: text or json")
	return cmd
}

func writeWhatIf(w io.Writer, res *reconcile.WhatIf) error {
	line := func(label string, d policy.Decision, rev string) {
		fmt.Fprintf(w, "%-7s %s (policy %s)\n", label, d.Summary(), rev)
		for _, r := range d.Reasons {
			fmt.Fprintf(w, "          because %s\n", r)
		}
	}
	fmt.Fprintf(w, "%s (%s), groups after: %s\n", res.UserName, res.UserID, strings.Join(res.Groups, ", "))
	line("now:", res.Before, res.Revision)
	rev := res.Revision
	if res.CandidateRevision != "" {
		rev = res.CandidateRevision
	}
	line("after:", res.After, rev)
	if res.Changed {
		fmt.Fprintln(w, "the decision would change; nothing was applied")
	} else {
		fmt.Fprintln(w, "the decision would not change; nothing was applied")
	}
	return nil
}
