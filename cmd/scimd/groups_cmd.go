package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimd/scimd/engine/policywatch"
	"github.com/scimd/scimd/engine/reconcile"
)

// newGroupsCmd returns `scimd groups`: the groups the IdP pushed and what
// the active policy makes of them.
func newGroupsCmd() *cobra.Command {
	var serverAddr, token string
	cmd := &cobra.Command{Use: "groups", Short: "Groups pushed by the identity provider and the roles the policy maps them to"}
	addClientFlags(cmd, &serverAddr, &token)
	var format string
	list := &cobra.Command{
		Use:   "list",
		Short: "List groups: mapped (role) or inactive, member counts, warnings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			var out struct {
				Groups []reconcile.GroupView `json:"groups"`
			}
			if done, err := getListing(cmd.Context(), c, cmd.OutOrStdout(), "/api/v1/groups", format, &out); done {
				return err
			}
			sort.SliceStable(out.Groups, func(i, j int) bool { return out.Groups[i].DisplayName < out.Groups[j].DisplayName })
			t := table{header: []string{"GROUP", "ROLE", "MEMBERS", "EXTERNAL ID", "ID", "WARNINGS"}}
			for _, g := range out.Groups {
				role := "inactive"
				if g.Active {
					role = g.Role
					if role == "" {
						role = "none"
					}
				}
				if g.Error != "" {
					role = "error: " + g.Error
				}
				t.add(g.DisplayName, role, strconv.Itoa(len(g.Members)), orDash(strPtr(g.ExternalID)), g.ID, orDash(strPtr(strings.Join(g.Warnings, "; "))))
			}
			return t.write(cmd.OutOrStdout(), format)
		},
	}
	addListFormat(list, &format)
	cmd.AddCommand(list)
	return cmd
}

// newPolicyStatusCmds returns `scimd policy status` and `scimd policy
// reload`, which ask the server about its active policy.
func newPolicyStatusCmds() []*cobra.Command {
	var serverAddr, token, format string
	status := &cobra.Command{
		Use:   "status",
		Short: "The server's active policy revision, its files and tests, or why it refused the last reload",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return policyStatus(cmd, serverAddr, token, format, http.MethodGet, "/api/v1/policy")
		},
	}
	addClientFlags(status, &serverAddr, &token)
	status.Flags().StringVar(&format, "format", formatText, "output format: text or json")
	var rServer, rToken, rFormat string
	reload := &cobra.Command{
		Use:   "reload",
		Short: "Make the server read its policy directory now (it also does so when files change)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return policyStatus(cmd, rServer, rToken, rFormat, http.MethodPost, "/api/v1/policy/reload")
		},
	}
	addClientFlags(reload, &rServer, &rToken)
	reload.Flags().StringVar(&rFormat, "format", formatText, "output format: text or json")
	return []*cobra.Command{status, reload}
}

func policyStatus(cmd *cobra.Command, serverAddr, token, format, method, path string) error {
	if err := checkFormat(format, formatText, formatJSON); err != nil {
		return err
	}
	c, err := newAdminClient(serverAddr, token)
	if err != nil {
		return err
	}
	code, body, err := c.call(cmd.Context(), method, path, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return c.apiError(code, body)
	}
	if format == formatJSON {
		return writeIndented(cmd.OutOrStdout(), body)
	}
	var st policywatch.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("decode policy status: %w", err)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "policy: %s\n", st.State)
	if st.Revision != "" {
		fmt.Fprintf(w, "  revision: %s (loaded %s, %s)\n", st.Revision, st.LoadedAt.UTC().Format(time.RFC3339), st.Trigger)
	}
	if st.Commit != "" {
		fmt.Fprintf(w, "  commit:   %s\n", st.Commit)
	}
	fmt.Fprintf(w, "  files:    %d, tests: %d\n", len(st.Files), st.Tests)
	if st.LastError != "" {
		fmt.Fprintf(w, "  last reload refused: %s\n", st.LastError)
	}
	for _, p := range st.Problems {
		fmt.Fprintf(w, "    %s\n", p.String())
	}
	return nil
}
