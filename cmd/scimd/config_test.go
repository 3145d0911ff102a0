package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// resolveWith parses args on a fresh serve command and resolves its
// configuration with env as the environment.
func resolveWith(t *testing.T, args []string, env map[string]string) (serveConfig, error) {
	t.Helper()
	cmd, cfg := serveCommand()
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	err := resolveServeConfig(cmd.Flags(), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	return *cfg, err
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestResolveServeConfigPrecedence(t *testing.T) {
	file := writeFile(t, "scimd.yaml", "listen: 127.0.0.1:7000\ndata: /from/file\nmax-results: 50\n")
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c serveConfig)
	}{
		{"defaults", nil, nil, func(t *testing.T, c serveConfig) {
			if !reflect.DeepEqual(c, defaultServeConfig()) {
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
			if c.Data != "/from/flag" || c.MaxResults != 50 {
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
		{"empty env value is a value", nil, map[string]string{"SCIMD_EXTERNAL_URL": ""}, func(t *testing.T, c serveConfig) {
			if !reflect.DeepEqual(c, defaultServeConfig()) {
				t.Errorf("config = %+v", c)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := resolveWith(t, tc.args, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestResolveServeConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		file string // config file content; none if empty
		args []string
		env  map[string]string
		want string // in the error
	}{
		{name: "unknown key in file", file: "listen: x\nlistn: x\n", want: "line 2: unknown setting \"listn\""},
		{name: "key that is not a setting", file: "config: other.yaml\n", want: "unknown setting \"config\""},
		{name: "key given twice", file: "data: a\ndata: b\n", want: "line 2"},
		{name: "not a mapping", file: "- listen\n", want: "expected a mapping"},
		{name: "bad number in file", file: "max-results: many\n", want: "line 1: max-results"},
		{name: "no value in file", file: "max-results:\n", want: "no value"},
		{name: "nested value in file", file: "listen:\n  host: x\n", want: "single value"},
		{name: "list for a single value", file: "listen: [a, b]\n", want: "list"},
		{name: "missing file", args: []string{"--config", "does-not-exist.yaml"}, want: "read config file"},
		{name: "bad env number", env: map[string]string{"SCIMD_MAX_RESULTS": "many"}, want: "SCIMD_MAX_RESULTS"},
		{name: "bad duration in env", env: map[string]string{"SCIMD_WEBHOOK_TIMEOUT": "soon"}, want: "SCIMD_WEBHOOK_TIMEOUT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append(args, "--config", writeFile(t, "scimd.yaml", tc.file))
			}
			_, err := resolveWith(t, args, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// sampleValue is a valid value for flag f other than its default, as
// command-line text. A flag of a type this does not know fails the test:
// add the type here.
func sampleValue(t *testing.T, f *pflag.Flag) string {
	t.Helper()
	switch f.Value.Type() {
	case "string":
		return "sample-" + f.Name
	case "int", "int64", "int32", "uint", "uint64", "uint32":
		if f.DefValue == "4242" {
			return "4243"
		}
		return "4242"
	case "float64", "float32":
		if f.DefValue == "42.5" {
			return "43.5"
		}
		return "42.5"
	case "duration":
		if f.DefValue == "1m23s" {
			return "1m24s"
		}
		return "1m23s"
	case "bool":
		b, _ := strconv.ParseBool(f.DefValue)
		return strconv.FormatBool(!b)
	case "stringSlice", "stringArray":
		return "sample-a,sample-b"
	}
	t.Fatalf("--%s: no sample value for flag type %q; add one to sampleValue", f.Name, f.Value.Type())
	return ""
}

// TestEveryServeFlagFromEachSource sets each serve flag, one at a time, on
// the command line, in the environment and in the config file, and checks
// that each source yields the same configuration, different from the
// defaults. It iterates over the flag set, so a flag added later is
// covered without touching this test.
func TestEveryServeFlagFromEachSource(t *testing.T) {
	cmd, _ := serveCommand()
	n := 0
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if notSettings[f.Name] {
			return
		}
		n++
		t.Run(f.Name, func(t *testing.T) {
			v := sampleValue(t, f)
			fromFlag, err := resolveWith(t, []string{"--" + f.Name + "=" + v}, nil)
			if err != nil {
				t.Fatalf("flag: %v", err)
			}
			if reflect.DeepEqual(fromFlag, defaultServeConfig()) {
				t.Fatalf("--%s=%s left serveConfig at its defaults: bind the flag to a serveConfig field", f.Name, v)
			}
			fromEnv, err := resolveWith(t, nil, map[string]string{envName(f.Name): v})
			if err != nil {
				t.Fatalf("env: %v", err)
			}
			if !reflect.DeepEqual(fromEnv, fromFlag) {
				t.Errorf("%s=%s gives %+v, the flag gives %+v", envName(f.Name), v, fromEnv, fromFlag)
			}
			file := writeFile(t, "scimd.yaml", f.Name+": "+strconv.Quote(v)+"\n")
			fromFile, err := resolveWith(t, []string{"--config", file}, nil)
			if err != nil {
				t.Fatalf("file: %v", err)
			}
			if !reflect.DeepEqual(fromFile, fromFlag) {
				t.Errorf("config file %s: %q gives %+v, the flag gives %+v", f.Name, v, fromFile, fromFlag)
			}
			if !strings.Contains(f.Usage, envName(f.Name)) {
				t.Errorf("--%s usage %q does not name %s", f.Name, f.Usage, envName(f.Name))
			}
		})
	})
	if n == 0 {
		t.Fatal("no serve flags")
	}
}

// TestREADMEListsEveryServeFlag keeps the README's configuration table
// complete.
func TestREADMEListsEveryServeFlag(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "| `--") {
			table.WriteString(line + "\n")
		}
	}
	cmd, _ := serveCommand()
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if notSettings[f.Name] {
			return
		}
		for _, want := range []string{"`--" + f.Name + "`", "`" + envName(f.Name) + "`"} {
			if !strings.Contains(table.String(), want) {
				t.Errorf("README's configuration table does not list %s", want)
			}
		}
	})
}
