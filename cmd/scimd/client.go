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
	cmd.PersistentFlags().StringVar(token, "token", "", "admin token (default: SCIMD_ADMIN_TOKEN)")
}

func newAdminClient(server, token string) (*adminClient, error) {
	if token == "" {
		token = os.Getenv("SCIMD_ADMIN_TOKEN")
	}
	if token == "" {
		return nil, fmt.Errorf("no admin token: set SCIMD_ADMIN_TOKEN or pass --token")
	}
	return &adminClient{server: strings.TrimRight(server, "/"), token: token, http: &http.Client{Timeout: 60 * time.Second}}, nil
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
		return fmt.Errorf("%s %s: %w", method, path, err)
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
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
	}
	return nil
}
