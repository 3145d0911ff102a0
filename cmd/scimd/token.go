package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// tokenView is a token as the admin API lists it.
type tokenView struct {
	Name                  string   `json:"name"`
	Token                 string   `json:"token"`
	Scopes                []string `json:"scopes"`
	Created               string   `json:"created"`
	Expires               *string  `json:"expires"`
	Expired               bool     `json:"expired"`
	LastUsed              *string  `json:"lastUsed"`
	PreviousSecretExpires *string  `json:"previousSecretExpires"`
	Profile               string   `json:"profile"`
}

func orDash(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

func newTokenCmd() *cobra.Command {
	var serverAddr, token string
	cmd := &cobra.Command{Use: "token", Short: "Manage named API tokens and their scopes (scim, read, plan, approve, admin)"}
	addClientFlags(cmd, &serverAddr, &token)

	var name, expires, profile string
	var scopes []string
	create := &cobra.Command{
		Use:   "create --name NAME [--scope SCOPE]... [--expires 720h] [--profile PROFILE]",
		Short: "Create a token and print its secret (shown once)",
		Long: `Create a named token and print its secret, which is shown once (only
its digest is stored). The name is the audit actor of everything done with
the token. Scopes:

  scim     the SCIM API (/scim/v2): for an identity provider
  read     teammates, groups, policy status, pending changes, audit,
           report, history, change feed
  plan     POST /api/v1/plan (scimd plan in a pull-request workflow)
  approve  approve or reject pending changes
  admin    every admin API route, tokens and webhooks included (not SCIM)

--expires sets a lifetime (Go duration: 720h, 90m); without it the token
does not expire.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			req := map[string]any{"name": name, "scopes": scopes}
			if expires != "" {
				req["expiresIn"] = expires
			}
			if profile != "" {
				req["profile"] = profile
			}
			var out tokenView
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/tokens", req, &out); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.Token)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "token name, recorded as the actor of every request made with it (e.g. okta)")
	create.Flags().StringSliceVar(&scopes, "scope", []string{"scim"}, "scope the token holds; repeat or separate with commas (scim, read, plan, approve, admin)")
	create.Flags().StringVar(&expires, "expires", "", "lifetime, e.g. 720h; empty: never expires")
	create.Flags().StringVar(&profile, "profile", "", "IdP compatibility profile of a SCIM token: rfc (strict), okta, entra, onelogin, ping, jumpcloud, google or auto (every tolerance rule, the default)")
	_ = create.MarkFlagRequired("name")

	var listFormat string
	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens with their scopes, expiry, creation and last use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			var out struct {
				Tokens []tokenView `json:"tokens"`
			}
			if done, err := getListing(cmd.Context(), c, cmd.OutOrStdout(), "/api/v1/tokens", listFormat, &out); done {
				return err
			}
			t := table{header: []string{"NAME", "SCOPES", "PROFILE", "CREATED", "EXPIRES", "LAST USED", "PREVIOUS SECRET UNTIL"}}
			for _, tk := range out.Tokens {
				exp := orDash(tk.Expires)
				if tk.Expired {
					exp += " (expired)"
				}
				t.add(tk.Name, strings.Join(tk.Scopes, ","), tk.Profile, tk.Created, exp, orDash(tk.LastUsed), orDash(tk.PreviousSecretExpires))
			}
			return t.write(cmd.OutOrStdout(), listFormat)
		},
	}
	addListFormat(list, &listFormat)
	var grace string
	rotate := &cobra.Command{
		Use:   "rotate NAME [--grace 24h]",
		Short: "Give a token a new secret (printed once); the old one works for a grace period",
		Long: `Give a token a new secret and print it once. The previous secret keeps
working for the grace period (default 24h, at most 720h; --grace 0s ends it
at once), so every place that holds it can be updated; requests made with
either secret are audited under the token's name. Rotating again within the
grace period ends the older secret at once.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			var body any
			if grace != "" {
				body = map[string]string{"grace": grace}
			}
			var out tokenView
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/tokens/"+url.PathEscape(args[0])+"/rotate", body, &out); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.Token)
			if out.PreviousSecretExpires != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "the previous secret of %s works until %s\n", args[0], *out.PreviousSecretExpires)
			}
			return nil
		},
	}
	rotate.Flags().StringVar(&grace, "grace", "", "how long the previous secret keeps working (default 24h)")
	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token (and its previous secret) at once",
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
	cmd.AddCommand(create, list, rotate, revoke)
	return cmd
}
