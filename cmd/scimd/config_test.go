package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestResolveServeConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "scimd.yaml")
	if err := os.WriteFile(file, []byte("listen: 127.0.0.1:7000\ndata: /from/file\nmax-results: 50\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c serveConfig)
	}{
		{"defaults", nil, nil, func(t *testing.T, c serveConfig) {
			if c.Listen != "127.0.0.1:8080" || c.Data != "./scimd-data" || c.Policies != "./policies" {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{"file", []string{"--config", file}, nil, func(t *testing.T, c serveConfig) {
			if c.Listen != "127.0.0.1:7000" || c.Data != "/from/file" || c.MaxResults != 50 {
				t.Errorf("file = %+v", c)
			}
		}},
		{"env over file", []string{"--config", file}, map[string]string{"SCIMD_DATA": "/from/env"}, func(t *testing.T, c serveConfig) {
			if c.Data != "/from/env" || c.Listen != "127.0.0.1:7000" {
				t.Errorf("env = %+v", c)
			}
		}},
		{"flag over env", []string{"--config", file, "--data", "/from/flag"}, map[string]string{"SCIMD_DATA": "/from/env"}, func(t *testing.T, c serveConfig) {
			if c.Data != "/from/flag" {
				t.Errorf("flag = %+v", c)
			}
		}},
		{"durations from env and flags", []string{"--webhook-timeout", "3s"}, map[string]string{"SCIMD_WEBHOOK_MIN_BACKOFF": "250ms"}, func(t *testing.T, c serveConfig) {
			if c.WebhookTimeout != 3*time.Second || c.WebhookMinBackoff != 250*time.Millisecond || c.WebhookMaxFailures != 10 {
				t.Errorf("webhook settings = %+v", c)
			}
		}},
		{"config from env", nil, map[string]string{"SCIMD_CONFIG": file}, func(t *testing.T, c serveConfig) {
			if c.Listen != "127.0.0.1:7000" {
				t.Errorf("SCIMD_CONFIG = %+v", c)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"SCIMD_DATA", "SCIMD_CONFIG", "SCIMD_LISTEN"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cmd := newServeCmd()
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			configPath, _ := cmd.Flags().GetString("config")
			c, err := resolveServeConfig(cmd, configPath)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestResolveServeConfigErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("listn: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"unknown key in file", []string{"--config", bad}, nil},
		{"missing file", []string{"--config", filepath.Join(t.TempDir(), "none.yaml")}, nil},
		{"bad env number", nil, map[string]string{"SCIMD_MAX_RESULTS": "many"}},
		{"bad duration in env", nil, map[string]string{"SCIMD_WEBHOOK_TIMEOUT": "soon"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cmd := newServeCmd()
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			configPath, _ := cmd.Flags().GetString("config")
			if _, err := resolveServeConfig(cmd, configPath); err == nil {
				t.Fatal("expected an error")
			}
		})
	}
}
