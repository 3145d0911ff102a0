package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// clientView is an OAuth client as the admin API shows it.
type clientView struct {
	ClientID     string   `json:"clientId"`
	ClientSecret string   `json:"clientSecret"`
	SecretID     string   `json:"secretId"`
	Name         string   `json:"name"`
	Scopes       []string `json:"scopes"`
	Created      string   `json:"created"`
	Secrets      []struct {
		ID      string `json:"id"`
		Created string `json:"created"`
	} `json:"secrets"`
}

func newClientCmd() *cobra.Command {
	var serverAddr, token string
	cmd := &cobra.Command{Use: "client", Short: "Manage OAuth 2.0 clients (client credentials at POST /oauth/token)"}
	addClientFlags(cmd, &serverAddr, &token)

	var name string
	var scopes []string
	create := &cobra.Command{
		Use:   "create --name NAME [--scope SCOPE]...",
		Short: "Create a client and print its id and secret (the secret is shown once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			var out clientView
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/clients", map[string]any{"name": name, "scopes": scopes}, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "client_id:     %s\nclient_secret: %s\ntoken URL:     %s/oauth/token\n", out.ClientID, out.ClientSecret, c.server)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "client name, the audit actor of its requests (e.g. entra)")
	create.Flags().StringSliceVar(&scopes, "scope", []string{"scim"}, "scopes the client may request (scim, read, plan, approve, admin)")
	_ = create.MarkFlagRequired("name")

	var listFormat string
	list := &cobra.Command{
		Use:   "list",
		Short: "List clients with their scopes and secret ids",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			var out struct {
				Clients []clientView `json:"clients"`
			}
			if done, err := getListing(cmd.Context(), c, cmd.OutOrStdout(), "/api/v1/clients", listFormat, &out); done {
				return err
			}
			t := table{header: []string{"CLIENT ID", "NAME", "SCOPES", "CREATED", "SECRETS (id created)"}}
			for _, cl := range out.Clients {
				var secrets []string
				for _, s := range cl.Secrets {
					secrets = append(secrets, s.ID+" "+s.Created)
				}
				t.add(cl.ClientID, cl.Name, strings.Join(cl.Scopes, ","), cl.Created, strings.Join(secrets, ", "))
			}
			return t.write(cmd.OutOrStdout(), listFormat)
		},
	}
	addListFormat(list, &listFormat)
	rotate := &cobra.Command{
		Use:   "rotate CLIENT_ID",
		Short: "Add a second secret (printed once); remove the old one with revoke --secret once the IdP uses the new one",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			var out clientView
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/clients/"+url.PathEscape(args[0])+"/secrets", nil, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "client_secret: %s\nsecret id:     %s\n", out.ClientSecret, out.SecretID)
			return nil
		},
	}
	var secretID string
	revoke := &cobra.Command{
		Use:   "revoke CLIENT_ID [--secret SECRET_ID]",
		Short: "Revoke a client (its access tokens stop working at once), or only one of its secrets",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			path := "/api/v1/clients/" + url.PathEscape(args[0])
			if secretID != "" {
				path += "/secrets/" + url.PathEscape(secretID)
			}
			if err := c.do(cmd.Context(), http.MethodDelete, path, nil, nil); err != nil {
				return err
			}
			if secretID != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "removed secret %s of %s\n", secretID, args[0])
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
			}
			return nil
		},
	}
	revoke.Flags().StringVar(&secretID, "secret", "", "remove only this secret (a client keeps at least one)")
	cmd.AddCommand(create, list, rotate, revoke)
	return cmd
}
