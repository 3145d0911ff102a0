package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scimd/scimd/engine/delivery"
)

func newWebhookCmd() *cobra.Command {
	var serverAddr, token string
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Manage the webhook endpoints that receive every teammate change",
		Long: `Each teammate change is POSTed, in feed order, to every webhook endpoint
that wants its type, signed as Standard Webhooks (webhook-id,
webhook-timestamp, webhook-signature; see docs/webhooks.md). An endpoint
that keeps failing is paused; "scimd webhook resume ID" continues from the
change that failed.`,
	}
	addClientFlags(cmd, &serverAddr, &token)

	var (
		hookURL, secret string
		events          []string
		after           int64
	)
	add := &cobra.Command{
		Use:   "add --url URL [--secret SECRET] [--events TYPE,…]",
		Short: "Register an endpoint; without --secret a secret is generated and printed once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			generated := secret == ""
			if generated {
				if secret, err = delivery.NewSecret(); err != nil {
					return err
				}
			}
			reg := map[string]any{"url": hookURL, "secret": secret, "events": events}
			if after >= 0 {
				reg["after"] = after
			}
			var v delivery.View
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/webhooks", reg, &v); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "webhook %s → %s, delivering changes after seq %d\n", v.ID, v.URL, v.Cursor)
			if generated {
				fmt.Fprintf(w, "secret (shown once; configure the receiver with it): %s\n", secret)
			}
			return nil
		},
	}
	add.Flags().StringVar(&hookURL, "url", "", "http:// or https:// URL that receives the POSTs")
	add.Flags().StringVar(&secret, "secret", "", "signing secret, whsec_<base64> or at least 16 bytes (default: generate one)")
	add.Flags().StringSliceVar(&events, "events", nil, "feed types or prefixes to deliver, e.g. teammate.access,teammate.deleted (default: all)")
	add.Flags().Int64Var(&after, "after", -1, "deliver changes after this feed sequence (0: the whole feed; default: only new changes)")
	_ = add.MarkFlagRequired("url")

	var jsonOut bool
	var listFormat string
	list := &cobra.Command{
		Use:   "list",
		Short: "List endpoints with their state, cursor and last error",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			var out struct {
				Webhooks []delivery.View `json:"webhooks"`
			}
			if jsonOut {
				listFormat = formatJSON
			}
			if done, err := getListing(cmd.Context(), c, cmd.OutOrStdout(), "/api/v1/webhooks", listFormat, &out); done {
				return err
			}
			return webhookTable(out.Webhooks).write(cmd.OutOrStdout(), listFormat)
		},
	}
	addListFormat(list, &listFormat)
	list.Flags().BoolVar(&jsonOut, "json", false, "the same as --format json")

	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Delete an endpoint (undelivered changes stay in the feed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, "/api/v1/webhooks/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
			return nil
		},
	}
	resume := &cobra.Command{
		Use:   "resume ID",
		Short: "Resume a paused endpoint from the change that failed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAdminClient(serverAddr, token)
			if err != nil {
				return err
			}
			var v delivery.View
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/webhooks/"+url.PathEscape(args[0])+"/resume", nil, &v); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "resumed %s: delivering after seq %d (%d behind)\n", v.ID, v.Cursor, v.Behind)
			return nil
		},
	}
	cmd.AddCommand(add, list, remove, resume)
	return cmd
}

// webhookTable lists endpoints as table rows.
func webhookTable(hooks []delivery.View) *table {
	t := &table{header: []string{"ID", "STATE", "URL", "EVENTS", "CURSOR", "BEHIND", "FAILURES", "LAST ERROR"}}
	for _, h := range hooks {
		events := "all"
		if len(h.Events) > 0 {
			events = strings.Join(h.Events, ",")
		}
		lastErr := "-"
		if h.Failing && h.LastError != "" {
			lastErr = h.LastError
		}
		t.add(h.ID, h.State, h.URL, events, strconv.FormatUint(h.Cursor, 10), strconv.FormatUint(h.Behind, 10), strconv.Itoa(h.Failures), lastErr)
	}
	return t
}
