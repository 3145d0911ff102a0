package main

import (
	"fmt"
	"net/http"
	"net/url"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newTokenCmd() *cobra.Command {
	var serverAddr, token string
	cmd := &cobra.Command{Use: "token", Short: "Manage the SCIM bearer tokens identity providers use"}
	addClientFlags(cmd, &serverAddr, &token)

	var name string
	create := &cobra.Command{
		Use:   "create --name NAME",
		Short: "Create a SCIM token and print its secret (shown once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			var out struct{ Name, Token string }
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/tokens", map[string]string{"name": name}, &out); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.Token)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "token name, recorded as the actor of every write made with it (e.g. okta)")
	_ = create.MarkFlagRequired("name")

	list := &cobra.Command{
		Use:   "list",
		Short: "List SCIM tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			var out struct {
				Tokens []struct{ Name, Created string } `json:"tokens"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/tokens", nil, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCREATED")
			for _, t := range out.Tokens {
				fmt.Fprintf(tw, "%s\t%s\n", t.Name, t.Created)
			}
			return tw.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a SCIM token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
