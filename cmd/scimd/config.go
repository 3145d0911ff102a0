package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// serveConfig is the daemon's configuration. Each field comes, in order of
// precedence, from its flag, its SCIMD_* environment variable, the config
// file, or its default.
type serveConfig struct {
	Listen       string  `yaml:"listen"`
	Data         string  `yaml:"data"`
	Policies     string  `yaml:"policies"`
	ExternalURL  string  `yaml:"external-url"`
	MaxBodyBytes int64   `yaml:"max-body-bytes"`
	MaxResults   int     `yaml:"max-results"`
	RateLimit    float64 `yaml:"rate-limit"`
	RateBurst    int     `yaml:"rate-burst"`
	LogLevel     string  `yaml:"log-level"`
	GuardCount   int     `yaml:"guard-count"`
	GuardPercent float64 `yaml:"guard-percent"`
	// Webhook delivery.
	WebhookMaxFailures int           `yaml:"webhook-max-failures"`
	WebhookMinBackoff  time.Duration `yaml:"webhook-min-backoff"`
	WebhookMaxBackoff  time.Duration `yaml:"webhook-max-backoff"`
	WebhookTimeout     time.Duration `yaml:"webhook-timeout"`
}

func defaultServeConfig() serveConfig {
	return serveConfig{
		Listen:       "127.0.0.1:8080",
		Data:         "./scimd-data",
		Policies:     "./policies",
		MaxBodyBytes: 1 << 20,
		MaxResults:   1000,
		// Entra's published minimum for gallery apps is 25 requests/s; the
		// default leaves ample headroom above it.
		RateLimit: 200,
		RateBurst: 400,
		LogLevel:  "info",
		// The mass-change guard: hold a trigger that would demote more
		// than 10 teammates and more than 10% of them.
		GuardCount:   10,
		GuardPercent: 10,
		// Webhook delivery: pause an endpoint after 10 consecutive
		// failures; back off from 5 s to 1 h; 10 s per attempt.
		WebhookMaxFailures: 10,
		WebhookMinBackoff:  5 * time.Second,
		WebhookMaxBackoff:  time.Hour,
		WebhookTimeout:     10 * time.Second,
	}
}

func bindServeFlags(fs *pflag.FlagSet, c *serveConfig) {
	fs.StringVar(&c.Listen, "listen", c.Listen, "address to listen on (SCIMD_LISTEN)")
	fs.StringVar(&c.Data, "data", c.Data, "data directory (SCIMD_DATA)")
	fs.StringVar(&c.Policies, "policies", c.Policies, "policy directory (SCIMD_POLICIES)")
	fs.StringVar(&c.ExternalURL, "external-url", c.ExternalURL, "public origin for meta.location, e.g. https://scimd.example.com (SCIMD_EXTERNAL_URL)")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "largest accepted request body (SCIMD_MAX_BODY_BYTES)")
	fs.IntVar(&c.MaxResults, "max-results", c.MaxResults, "most resources in one list response (SCIMD_MAX_RESULTS)")
	fs.Float64Var(&c.RateLimit, "rate-limit", c.RateLimit, "sustained SCIM requests per second per token, 0 for none (SCIMD_RATE_LIMIT)")
	fs.IntVar(&c.RateBurst, "rate-burst", c.RateBurst, "burst of SCIM requests per token above the rate (SCIMD_RATE_BURST)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (SCIMD_LOG_LEVEL)")
	fs.IntVar(&c.GuardCount, "guard-count", c.GuardCount, "hold a change that demotes more than this many teammates... (SCIMD_GUARD_COUNT)")
	fs.Float64Var(&c.GuardPercent, "guard-percent", c.GuardPercent, "...and more than this percent of them, for approval (SCIMD_GUARD_PERCENT)")
	fs.IntVar(&c.WebhookMaxFailures, "webhook-max-failures", c.WebhookMaxFailures, "consecutive failed deliveries that pause a webhook endpoint (SCIMD_WEBHOOK_MAX_FAILURES)")
	fs.DurationVar(&c.WebhookMinBackoff, "webhook-min-backoff", c.WebhookMinBackoff, "first retry delay of a failed webhook delivery (SCIMD_WEBHOOK_MIN_BACKOFF)")
	fs.DurationVar(&c.WebhookMaxBackoff, "webhook-max-backoff", c.WebhookMaxBackoff, "longest retry delay of a failing webhook endpoint (SCIMD_WEBHOOK_MAX_BACKOFF)")
	fs.DurationVar(&c.WebhookTimeout, "webhook-timeout", c.WebhookTimeout, "time limit of one webhook delivery attempt (SCIMD_WEBHOOK_TIMEOUT)")
}

// resolveServeConfig applies the config file and environment beneath the
// flags the user set explicitly.
func resolveServeConfig(cmd *cobra.Command, configPath string) (serveConfig, error) {
	cfg := defaultServeConfig()
	if configPath == "" {
		configPath = os.Getenv("SCIMD_CONFIG")
	}
	if configPath != "" {
		raw, err := os.ReadFile(configPath)
		if err != nil {
			return cfg, fmt.Errorf("read config file: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(raw)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("config file %s: %w", configPath, err)
		}
	}
	fs := cmd.Flags()
	var errs []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "config" || f.Name == "help" {
			return
		}
		env := "SCIMD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !f.Changed {
			if err := setField(&cfg, f.Name, v); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", env, err))
			}
		}
		if f.Changed {
			if err := setField(&cfg, f.Name, f.Value.String()); err != nil {
				errs = append(errs, fmt.Sprintf("--%s: %v", f.Name, err))
			}
		}
	})
	if len(errs) > 0 {
		return cfg, fmt.Errorf("invalid configuration: %s", strings.Join(errs, "; "))
	}
	return cfg, nil
}

func setField(c *serveConfig, name, v string) error {
	var err error
	switch name {
	case "listen":
		c.Listen = v
	case "data":
		c.Data = v
	case "policies":
		c.Policies = v
	case "external-url":
		c.ExternalURL = v
	case "max-body-bytes":
		c.MaxBodyBytes, err = strconv.ParseInt(v, 10, 64)
	case "max-results":
		c.MaxResults, err = strconv.Atoi(v)
	case "rate-limit":
		c.RateLimit, err = strconv.ParseFloat(v, 64)
	case "rate-burst":
		c.RateBurst, err = strconv.Atoi(v)
	case "log-level":
		c.LogLevel = v
	case "guard-count":
		c.GuardCount, err = strconv.Atoi(v)
	case "guard-percent":
		c.GuardPercent, err = strconv.ParseFloat(v, 64)
	case "webhook-max-failures":
		c.WebhookMaxFailures, err = strconv.Atoi(v)
	case "webhook-min-backoff":
		c.WebhookMinBackoff, err = time.ParseDuration(v)
	case "webhook-max-backoff":
		c.WebhookMaxBackoff, err = time.ParseDuration(v)
	case "webhook-timeout":
		c.WebhookTimeout, err = time.ParseDuration(v)
	}
	return err
}
