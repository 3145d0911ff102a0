package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// adminClient calls the admin API of a running scimd.
type adminClient struct {
	server string
	token  string
	http   *http.Client
}

func addClientFlags(cmd *cobra.Command, server, token *string) {
	def := os.Getenv("SCIMD_SERVER")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	cmd.PersistentFlags().StringVar(server, "server", def, "scimd address (SCIMD_SERVER)")
	cmd.PersistentFlags().StringVar(token, "token", "", "API token with the scope the command needs (default: SCIMD_TOKEN, else SCIMD_ADMIN_TOKEN)")
}

// clientToken is the credential of the CLI: --token, else SCIMD_TOKEN,
// else SCIMD_ADMIN_TOKEN (the bootstrap admin token).
func clientToken(flag string, lookupEnv func(string) (string, bool)) string {
	if flag != "" {
		return flag
	}
	for _, env := range []string{"SCIMD_TOKEN", "SCIMD_ADMIN_TOKEN"} {
		if v, ok := lookupEnv(env); ok && v != "" {
			return v
		}
	}
	return ""
}

func newAdminClient(server, token string) (*adminClient, error) {
	token = clientToken(token, os.LookupEnv)
	if token == "" {
		return nil, fmt.Errorf("no API token for %s: set SCIMD_TOKEN (or SCIMD_ADMIN_TOKEN) or pass --token", server)
	}
	return &adminClient{server: strings.TrimRight(server, "/"), token: token, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// transportError is a failed call to the server, naming it.
func (c *adminClient) transportError(method, path string, err error) error {
	return fmt.Errorf("%s %s%s: cannot reach scimd at %s: %w", method, c.server, path, c.server, err)
}

// statusError is a non-2xx answer to method path.
func (c *adminClient) statusError(method, path string, status int, msg string) error {
	return fmt.Errorf("%s %s: %w", method, path, c.apiErrorMessage(status, msg))
}

// apiErrorMessage names the server that answered status with msg; for
// 401 and 403 it says what to check.
func (c *adminClient) apiErrorMessage(status int, msg string) error {
	hint := ""
	switch status {
	case http.StatusUnauthorized:
		hint = " (the token is unknown to this server, revoked or expired: check --server and SCIMD_TOKEN)"
	case http.StatusForbidden:
		hint = " (the token lacks the scope this command needs)"
	}
	return fmt.Errorf("scimd at %s answered %d %s: %s%s", c.server, status, http.StatusText(status), msg, hint)
}

// do sends a request to the admin API and decodes a JSON response into out
// (when not nil). Non-2xx answers become errors carrying the server's
// detail.
func (c *adminClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Detail string `json:"detail"`
			Error  string `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		msg := e.Detail
		if msg == "" {
			msg = e.Error
		}
		if msg == "" {
			msg = strings.TrimSpace(string(raw))
		}
		return c.statusError(method, path, resp.StatusCode, msg)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
	}
	return nil
}
