package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimd/scimd/engine/app"
	"github.com/scimd/scimd/engine/console"
	"github.com/scimd/scimd/engine/egress"
	"github.com/scimd/scimd/engine/reconcile"
	"github.com/scimd/scimd/internal/httpstack"
	"github.com/scimd/scimd/scim/server"
)

func newServeCmd() *cobra.Command {
	cmd, _ := serveCommand()
	return cmd
}

// serveCommand returns the serve command and the configuration its run
// fills in from flags, environment and config file before starting.
func serveCommand() (*cobra.Command, *serveConfig) {
	cfg := defaultServeConfig()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the SCIM service provider",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := resolveServeConfig(cmd.Flags(), os.LookupEnv); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return runServe(ctx, cfg, cmd.OutOrStdout())
		},
	}
	bindServeFlags(cmd.Flags(), &cfg)
	cmd.Flags().String("config", "", "YAML config file; keys are the flag names (SCIMD_CONFIG)")
	return cmd, &cfg
}

// minAdminTokenLength is the shortest SCIMD_ADMIN_TOKEN accepted: 32
// characters of hex carry 128 bits.
const minAdminTokenLength = 32

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// adminTokenFromEnv is the admin token from SCIMD_ADMIN_TOKEN, or read
// from the file SCIMD_ADMIN_TOKEN_FILE names (a systemd credential, a
// mounted secret), or "" when neither is set.
func adminTokenFromEnv() (string, error) {
	token, file := os.Getenv("SCIMD_ADMIN_TOKEN"), os.Getenv("SCIMD_ADMIN_TOKEN_FILE")
	if file == "" {
		return token, nil
	}
	if token != "" {
		return "", errors.New("both SCIMD_ADMIN_TOKEN and SCIMD_ADMIN_TOKEN_FILE are set: keep one")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("SCIMD_ADMIN_TOKEN_FILE: %w", err)
	}
	token = strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("SCIMD_ADMIN_TOKEN_FILE: %s is empty", file)
	}
	return token, nil
}

// listening is one HTTP server on its listener.
type listening struct {
	name string
	ln   net.Listener
	srv  *http.Server
}

// listen binds addr behind the connection limits and builds its hardened
// HTTP server.
func listen(cfg serveConfig, addr, name string, h http.Handler, a *app.App, log *slog.Logger, tlsConfig *tls.Config) (*listening, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	limited := a.LimitListener(ln, httpstack.Limits{Max: cfg.MaxConnections, PerAddress: cfg.MaxConnectionsPerAddress}, name)
	if tlsConfig != nil {
		limited = tls.NewListener(limited, tlsConfig)
	}
	srv := &http.Server{
		Handler:           h,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.ReadTimeout + 2*time.Minute,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelInfo),
	}
	srv.RegisterOnShutdown(a.Drain)
	return &listening{name: name, ln: limited, srv: srv}, nil
}

// showGeneratedAdminToken generates the admin token on first start (no
// SCIMD_ADMIN_TOKEN and none stored) and shows it once: on stdout, or in
// the file admin-token of the data directory, mode 0600, whose path is
// printed.
func showGeneratedAdminToken(ctx context.Context, a *app.App, cfg serveConfig, stdout io.Writer) error {
	secret, err := a.GenerateAdminToken(ctx)
	if err != nil || secret == "" {
		return err
	}
	if cfg.AdminTokenOutput != "file" {
		fmt.Fprintf(stdout, "Admin token (shown once; set SCIMD_ADMIN_TOKEN to use the CLI): %s\n", secret)
		return nil
	}
	path := filepath.Join(cfg.Data, "admin-token")
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return fmt.Errorf("admin token file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("admin token file: %w", err)
	}
	_, err = fmt.Fprintln(f, secret)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("admin token file %s: %w", path, err)
	}
	fmt.Fprintf(stdout, "Admin token written to %s (mode 0600; read it, keep it in a secret store, delete the file)\n", path)
	return nil
}

// serverTLS is the listeners' TLS configuration, nil without --tls-cert.
func serverTLS(cfg serveConfig, log *slog.Logger) (*tls.Config, error) {
	switch {
	case cfg.TLSCert == "" && cfg.TLSKey == "" && cfg.TLSClientCA == "":
		return nil, nil
	case cfg.TLSCert == "" || cfg.TLSKey == "":
		return nil, errors.New("--tls-cert and --tls-key go together (--tls-client-ca needs both)")
	}
	certs, err := httpstack.NewCertReloader(cfg.TLSCert, cfg.TLSKey, log)
	if err != nil {
		return nil, err
	}
	return httpstack.TLSConfig(certs, cfg.TLSClientCA)
}

// parseTrustedProxies parses --trusted-proxies: CIDRs or single addresses.
func parseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %q is neither a CIDR nor an IP address", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// runServe runs the daemon until ctx is cancelled, then shuts down
// gracefully: stop accepting, finish in-flight requests, stop the
// reconciler, close the store. SIGHUP reloads the policies.
func runServe(ctx context.Context, cfg serveConfig, stdout io.Writer) error {
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	adminToken, err := adminTokenFromEnv()
	if err != nil {
		return err
	}
	if adminToken != "" && len(adminToken) < minAdminTokenLength {
		return fmt.Errorf("the admin token is %d characters long; use at least %d random characters (for example: openssl rand -hex 32)", len(adminToken), minAdminTokenLength)
	}
	trusted, err := parseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return err
	}
	webhookEgress, err := egress.New(cfg.WebhookAllow, cfg.WebhookDeny)
	if err != nil {
		return err
	}
	if cfg.AdminTokenOutput != "stdout" && cfg.AdminTokenOutput != "file" {
		return fmt.Errorf("--admin-token-output %q: use stdout or file", cfg.AdminTokenOutput)
	}
	if cfg.OAuthTokenTTL < server.MinOAuthTokenTTL || cfg.OAuthTokenTTL > server.MaxOAuthTokenTTL {
		return fmt.Errorf("--oauth-token-ttl %s: use %s to %s", cfg.OAuthTokenTTL, server.MinOAuthTokenTTL, server.MaxOAuthTokenTTL)
	}
	appCfg := app.Config{
		Data: cfg.Data, Database: cfg.Database, Policies: cfg.Policies, ShadowPolicies: cfg.ShadowPolicies, AdminToken: adminToken,
		ExternalURL: cfg.ExternalURL, MaxBodyBytes: cfg.MaxBodyBytes, MaxResults: cfg.MaxResults,
		RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst,
		Guard: reconcile.Threshold{Count: cfg.GuardCount, Percent: cfg.GuardPercent,
			EscalationRoles: cfg.GuardEscalationRoles, EscalationCount: cfg.GuardEscalationCount},
		EvalTimeout: cfg.EvalTimeout, ReadyMaxBacklogAge: cfg.ReadyMaxBacklogAge,
		Delivery: app.DeliveryConfig{MaxFailures: cfg.WebhookMaxFailures, MinBackoff: cfg.WebhookMinBackoff,
			MaxBackoff: cfg.WebhookMaxBackoff, Timeout: cfg.WebhookTimeout},
		Logger: log, ProcessMetrics: true, TrustedProxies: trusted, MetricsAuth: cfg.MetricsAuth,
		OAuthTokenTTL: cfg.OAuthTokenTTL, WebhookEgress: webhookEgress,
	}
	if cfg.Database != "" {
		return runClusterMember(ctx, cfg, appCfg, log, stdout)
	}
	// The admin token of a first start is made once the listeners are up.
	appCfg.DeferAdminToken = true
	a, err := app.Open(ctx, appCfg)
	if err != nil {
		return err
	}
	defer a.Close()

	ui, err := console.New(console.Options{Store: a.Store, Reconciler: a.Reconciler, Policies: a.Policies,
		Gatherer: a.Registry, Logger: log, SecureCookies: strings.HasPrefix(cfg.ExternalURL, "https://")})
	if err != nil {
		return fmt.Errorf("web console: %w", err)
	}
	defer ui.Close()
	tlsConfig, err := serverTLS(cfg, log)
	if err != nil {
		return err
	}
	all, public, admin := a.Handlers(ui.Mount)
	var servers []*listening
	defer func() {
		for _, l := range servers {
			_ = l.ln.Close()
		}
	}()
	mainHandler := all
	if cfg.AdminListen != "" {
		mainHandler = public
	}
	main, err := listen(cfg, cfg.Listen, "main", mainHandler, a, log, tlsConfig)
	if err != nil {
		return err
	}
	servers = append(servers, main)
	if cfg.AdminListen != "" {
		adm, err := listen(cfg, cfg.AdminListen, "admin", admin, a, log, tlsConfig)
		if err != nil {
			return err
		}
		servers = append(servers, adm)
	}
	// Every listener is bound: only now make the first start's admin
	// token, so a failed start leaves none that nobody saw.
	if err := showGeneratedAdminToken(ctx, a, cfg, stdout); err != nil {
		return err
	}
	scheme := "http://"
	if tlsConfig != nil {
		scheme = "https://"
	}
	base := scheme + main.ln.Addr().String() + server.BasePath
	if cfg.ExternalURL != "" {
		base = cfg.ExternalURL + server.BasePath
	}
	log.Info("scimd serving", "scimBaseURL", base, "listen", main.ln.Addr().String(), "policies", cfg.Policies)
	fmt.Fprintf(stdout, "SCIM base URL: %s\n", base)
	adminBase := strings.TrimSuffix(base, server.BasePath)
	if len(servers) > 1 {
		adminBase = scheme + servers[1].ln.Addr().String()
		fmt.Fprintf(stdout, "Admin API: %s/api/v1\n", adminBase)
	}
	fmt.Fprintf(stdout, "Web console: %s%s\n", adminBase, console.Prefix)

	errCh := make(chan error, len(servers))
	for _, l := range servers {
		go func() { errCh <- l.srv.Serve(l.ln) }()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
wait:
	for {
		select {
		case err := <-errCh:
			return fmt.Errorf("http server: %w", err)
		case <-hup:
			if err := a.Policies.Reload(ctx, "sighup"); err != nil {
				log.Warn("policy reload on SIGHUP refused", "err", err)
			}
		case <-ctx.Done():
			break wait
		}
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, l := range servers {
		if err := l.srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("http shutdown", "listener", l.name, "err", err)
		}
	}
	ui.Close()
	if err := a.Close(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
