package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// serveConfig is the daemon's configuration. Each field is bound to one
// serve flag (bindServeFlags) and comes, in order of precedence, from that
// flag, its SCIMD_* environment variable, the config file's key of the
// flag's name, or its default (resolveServeConfig).
type serveConfig struct {
	Listen       string
	Data         string
	Database     string
	AdvertiseURL string
	// JournalRetention is how long the PostgreSQL journal keeps commits
	// for standbys to replay.
	JournalRetention time.Duration
	Policies         string
	// ShadowPolicies is a policy directory evaluated beside the live one,
	// never applied ("" for none).
	ShadowPolicies string
	ExternalURL    string
	MaxBodyBytes   int64
	MaxResults     int
	RateLimit      float64
	RateBurst      int
	LogLevel       string
	GuardCount     int
	GuardPercent   float64
	// The guard's escalation rule.
	GuardEscalationRoles []string
	GuardEscalationCount int
	// Policy evaluation deadline, and the reconciler backlog age that
	// makes /readyz fail.
	EvalTimeout        time.Duration
	ReadyMaxBacklogAge time.Duration
	// Webhook delivery.
	WebhookMaxFailures int
	WebhookMinBackoff  time.Duration
	WebhookMaxBackoff  time.Duration
	WebhookTimeout     time.Duration
	// Webhook egress rules (package egress).
	WebhookAllow []string
	WebhookDeny  []string
	// OAuth 2.0 client credentials.
	OAuthTokenTTL time.Duration
	// AdminTokenOutput is where a generated admin token goes: stdout or
	// file.
	AdminTokenOutput string
	// HTTPS.
	TLSCert     string
	TLSKey      string
	TLSClientCA string
	// HTTP server hardening (see connection limits in README).
	AdminListen              string
	TrustedProxies           []string
	MetricsAuth              bool
	MaxHeaderBytes           int
	MaxConnections           int
	MaxConnectionsPerAddress int
	ReadHeaderTimeout        time.Duration
	ReadTimeout              time.Duration
	IdleTimeout              time.Duration
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
		// ... or grant the highest role to more than 3 teammates.
		GuardEscalationCount: 3,
		// Each teammate's evaluation: 200 ms; /readyz fails when a
		// trigger waits more than 30 s for its decisions.
		EvalTimeout: 200 * time.Millisecond,
		// Standbys replay the last hour of commits; one further behind
		// restarts with a full load.
		JournalRetention:   time.Hour,
		ReadyMaxBacklogAge: 30 * time.Second,
		// Webhook delivery: pause an endpoint after 10 consecutive
		// failures; back off from 5 s to 1 h; 10 s per attempt.
		WebhookMaxFailures: 10,
		WebhookMinBackoff:  5 * time.Second,
		WebhookMaxBackoff:  time.Hour,
		WebhookTimeout:     10 * time.Second,
		// A client gets 64 KiB of headers, 10 s to send them, 60 s for the
		// whole request; idle keep-alive connections close after 60 s.
		OAuthTokenTTL:            time.Hour,
		AdminTokenOutput:         "stdout",
		MaxHeaderBytes:           64 << 10,
		MaxConnections:           1024,
		MaxConnectionsPerAddress: 256,
		ReadHeaderTimeout:        10 * time.Second,
		ReadTimeout:              60 * time.Second,
		IdleTimeout:              60 * time.Second,
	}
}

func bindServeFlags(fs *pflag.FlagSet, c *serveConfig) {
	fs.StringVar(&c.Listen, "listen", c.Listen, "address to listen on (SCIMD_LISTEN)")
	fs.StringVar(&c.Data, "data", c.Data, "data directory (SCIMD_DATA)")
	fs.StringVar(&c.AdvertiseURL, "advertise-url", c.AdvertiseURL, "with --database: the URL other scimd processes forward requests to this one at (default http://LISTEN-ADDRESS) (SCIMD_ADVERTISE_URL)")
	fs.StringVar(&c.Database, "database", c.Database, "postgres://… URL: keep the state in PostgreSQL instead of SQLite in --data (SCIMD_DATABASE)")
	fs.DurationVar(&c.JournalRetention, "journal-retention", c.JournalRetention, "with --database: how long the leader keeps commits in the journal for standbys to replay; a standby further behind restarts with a full load (SCIMD_JOURNAL_RETENTION)")
	fs.StringVar(&c.Policies, "policies", c.Policies, "policy directory (SCIMD_POLICIES)")
	fs.StringVar(&c.ShadowPolicies, "shadow-policies", c.ShadowPolicies, "shadow policy directory: gated and evaluated beside the live policy, never applied; see GET /api/v1/policy/shadow (SCIMD_SHADOW_POLICIES)")
	fs.StringVar(&c.ExternalURL, "external-url", c.ExternalURL, "public origin for meta.location, e.g. https://scimd.example.com (SCIMD_EXTERNAL_URL)")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "largest accepted request body (SCIMD_MAX_BODY_BYTES)")
	fs.IntVar(&c.MaxResults, "max-results", c.MaxResults, "most resources in one list response (SCIMD_MAX_RESULTS)")
	fs.Float64Var(&c.RateLimit, "rate-limit", c.RateLimit, "sustained SCIM requests per second per token, 0 for none (SCIMD_RATE_LIMIT)")
	fs.IntVar(&c.RateBurst, "rate-burst", c.RateBurst, "burst of SCIM requests per token above the rate (SCIMD_RATE_BURST)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (SCIMD_LOG_LEVEL)")
	fs.IntVar(&c.GuardCount, "guard-count", c.GuardCount, "hold a change that demotes more than this many teammates... (SCIMD_GUARD_COUNT)")
	fs.Float64Var(&c.GuardPercent, "guard-percent", c.GuardPercent, "...and more than this percent of them, for approval (SCIMD_GUARD_PERCENT)")
	fs.StringSliceVar(&c.GuardEscalationRoles, "guard-escalation-roles", c.GuardEscalationRoles, "roles whose grant counts as an escalation besides the highest one, comma-separated (SCIMD_GUARD_ESCALATION_ROLES)")
	fs.IntVar(&c.GuardEscalationCount, "guard-escalation-count", c.GuardEscalationCount, "hold a change that grants the highest (or an escalation) role to more than this many teammates; -1 turns the rule off (SCIMD_GUARD_ESCALATION_COUNT)")
	fs.DurationVar(&c.EvalTimeout, "eval-timeout", c.EvalTimeout, "deadline of one teammate's policy evaluation; one that takes longer keeps its decision and is retried (SCIMD_EVAL_TIMEOUT)")
	fs.DurationVar(&c.ReadyMaxBacklogAge, "ready-max-backlog-age", c.ReadyMaxBacklogAge, "/readyz fails while a trigger has waited longer than this for its decisions (SCIMD_READY_MAX_BACKLOG_AGE)")
	fs.IntVar(&c.WebhookMaxFailures, "webhook-max-failures", c.WebhookMaxFailures, "consecutive failed deliveries that pause a webhook endpoint (SCIMD_WEBHOOK_MAX_FAILURES)")
	fs.DurationVar(&c.WebhookMinBackoff, "webhook-min-backoff", c.WebhookMinBackoff, "first retry delay of a failed webhook delivery (SCIMD_WEBHOOK_MIN_BACKOFF)")
	fs.DurationVar(&c.WebhookMaxBackoff, "webhook-max-backoff", c.WebhookMaxBackoff, "longest retry delay of a failing webhook endpoint (SCIMD_WEBHOOK_MAX_BACKOFF)")
	fs.DurationVar(&c.WebhookTimeout, "webhook-timeout", c.WebhookTimeout, "time limit of one webhook delivery attempt (SCIMD_WEBHOOK_TIMEOUT)")
	fs.StringSliceVar(&c.WebhookAllow, "webhook-allow", c.WebhookAllow, "CIDRs, addresses, host names or *.domain patterns webhooks may be delivered to; when set, nothing else (SCIMD_WEBHOOK_ALLOW)")
	fs.StringSliceVar(&c.WebhookDeny, "webhook-deny", c.WebhookDeny, "CIDRs, addresses, host names or *.domain patterns webhooks are never delivered to, besides the built-in link-local, metadata, unspecified and multicast addresses (SCIMD_WEBHOOK_DENY)")
	fs.StringVar(&c.AdminTokenOutput, "admin-token-output", c.AdminTokenOutput, "where a generated admin token is shown once: stdout, or file (admin-token in the data directory, mode 0600) (SCIMD_ADMIN_TOKEN_OUTPUT)")
	fs.DurationVar(&c.OAuthTokenTTL, "oauth-token-ttl", c.OAuthTokenTTL, "lifetime of OAuth 2.0 access tokens from POST /oauth/token, 5m to 6h (SCIMD_OAUTH_TOKEN_TTL)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate (chain) file: serve HTTPS only, TLS 1.2 or later; re-read when it changes (SCIMD_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM private key file of --tls-cert (SCIMD_TLS_KEY)")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", c.TLSClientCA, "PEM CA file: require client certificates it signed (mutual TLS) (SCIMD_TLS_CLIENT_CA)")
	fs.StringVar(&c.AdminListen, "admin-listen", c.AdminListen, "separate address for /api/v1, /metrics and the console; empty: the --listen address serves all (SCIMD_ADMIN_LISTEN)")
	fs.StringSliceVar(&c.TrustedProxies, "trusted-proxies", c.TrustedProxies, "CIDRs or addresses of reverse proxies whose Host and X-Forwarded-Host/-Proto may build meta.location (SCIMD_TRUSTED_PROXIES)")
	fs.BoolVar(&c.MetricsAuth, "metrics-auth", c.MetricsAuth, "require a token with the read scope on /metrics (SCIMD_METRICS_AUTH)")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", c.MaxHeaderBytes, "largest request header block; larger → 431 (SCIMD_MAX_HEADER_BYTES)")
	fs.IntVar(&c.MaxConnections, "max-connections", c.MaxConnections, "most connections open at once per listener; more are closed at accept (SCIMD_MAX_CONNECTIONS)")
	fs.IntVar(&c.MaxConnectionsPerAddress, "max-connections-per-address", c.MaxConnectionsPerAddress, "most connections open at once from one client IP (SCIMD_MAX_CONNECTIONS_PER_ADDRESS)")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", c.ReadHeaderTimeout, "time a client has to send its request headers (SCIMD_READ_HEADER_TIMEOUT)")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", c.ReadTimeout, "time a client has to send a whole request, body included; slower → 408 (SCIMD_READ_TIMEOUT)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "idle keep-alive connections are closed after this (SCIMD_IDLE_TIMEOUT)")
}

// envName is the environment variable that sets the serve flag name:
// SCIMD_ and the name in upper case with dashes as underscores.
func envName(flag string) string {
	return "SCIMD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// notSettings are the flags of serve that are not settings: they are
// neither read from the environment nor from the config file.
var notSettings = map[string]bool{"config": true, "help": true}

// resolveServeConfig fills in every serve flag the command line did not
// set, from its SCIMD_* environment variable or else from the YAML config
// file (--config, or SCIMD_CONFIG). Every source goes through the flag's
// own pflag.Value, so a flag bound to serveConfig is settable from all
// three without further code, and parses the same way from each.
func resolveServeConfig(fs *pflag.FlagSet, lookupEnv func(string) (string, bool)) error {
	configPath, _ := fs.GetString("config")
	if configPath == "" {
		configPath, _ = lookupEnv("SCIMD_CONFIG")
	}
	file, err := readConfigFile(fs, configPath)
	if err != nil {
		return err
	}
	var errs []string
	fs.VisitAll(func(f *pflag.Flag) {
		if notSettings[f.Name] || f.Changed {
			return
		}
		if v, ok := lookupEnv(envName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q: %v", envName(f.Name), v, err))
			}
			return
		}
		if n, ok := file[f.Name]; ok {
			if err := setFromYAML(f.Value, n); err != nil {
				errs = append(errs, fmt.Sprintf("config file %s line %d: %s: %v", configPath, n.Line, f.Name, err))
			}
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration: %s", strings.Join(errs, "; "))
	}
	return nil
}

// readConfigFile reads the YAML config file at path (none if path is
// empty): a mapping from flag names to values. A key that is not a serve
// setting, or given twice, is an error naming the file and line.
func readConfigFile(fs *pflag.FlagSet, path string) (map[string]*yaml.Node, error) {
	if path == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if len(doc.Content) == 0 { // empty file
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s line %d: expected a mapping of setting names to values", path, root.Line)
	}
	values := make(map[string]*yaml.Node, len(root.Content)/2)
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		if fs.Lookup(key.Value) == nil || notSettings[key.Value] {
			return nil, fmt.Errorf("config file %s line %d: unknown setting %q", path, key.Line, key.Value)
		}
		if _, dup := values[key.Value]; dup {
			return nil, fmt.Errorf("config file %s line %d: setting %q given twice", path, key.Line, key.Value)
		}
		values[key.Value] = val
	}
	return values, nil
}

// setFromYAML sets v from a YAML value: a scalar as the flag's text, a
// sequence of scalars for a list flag.
func setFromYAML(v pflag.Value, n *yaml.Node) error {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return fmt.Errorf("no value")
	case n.Kind == yaml.ScalarNode:
		return v.Set(n.Value)
	case n.Kind == yaml.SequenceNode:
		list, ok := v.(pflag.SliceValue)
		if !ok {
			return fmt.Errorf("a list where one value is expected")
		}
		items := make([]string, len(n.Content))
		for i, item := range n.Content {
			if item.Kind != yaml.ScalarNode {
				return fmt.Errorf("list item %d is not a single value", i+1)
			}
			items[i] = item.Value
		}
		return list.Replace(items)
	default:
		return fmt.Errorf("expected a single value")
	}
}
