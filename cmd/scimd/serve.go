package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimd/scimd/engine/app"
	"github.com/scimd/scimd/engine/console"
	"github.com/scimd/scimd/engine/reconcile"
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
	a, err := app.Open(ctx, app.Config{
		Data: cfg.Data, Database: cfg.Database, Policies: cfg.Policies, AdminToken: adminToken,
		ExternalURL: cfg.ExternalURL, MaxBodyBytes: cfg.MaxBodyBytes, MaxResults: cfg.MaxResults,
		RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst,
		Guard:       reconcile.Threshold{Count: cfg.GuardCount, Percent: cfg.GuardPercent},
		EvalTimeout: cfg.EvalTimeout, ReadyMaxBacklogAge: cfg.ReadyMaxBacklogAge,
		Delivery: app.DeliveryConfig{MaxFailures: cfg.WebhookMaxFailures, MinBackoff: cfg.WebhookMinBackoff,
			MaxBackoff: cfg.WebhookMaxBackoff, Timeout: cfg.WebhookTimeout},
		Logger: log, ProcessMetrics: true,
	})
	if err != nil {
		return err
	}
	defer a.Close()
	if a.GeneratedAdminToken != "" {
		fmt.Fprintf(stdout, "Admin token (shown once; set SCIMD_ADMIN_TOKEN to use the CLI): %s\n", a.GeneratedAdminToken)
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	ui, err := console.New(console.Options{Store: a.Store, Reconciler: a.Reconciler, Policies: a.Policies,
		Gatherer: a.Registry, Logger: log, SecureCookies: strings.HasPrefix(cfg.ExternalURL, "https://")})
	if err != nil {
		return fmt.Errorf("web console: %w", err)
	}
	defer ui.Close()
	srv := &http.Server{
		Handler:           ui.Mount(a.Handler),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(a.Drain)
	base := "http://" + ln.Addr().String() + server.BasePath
	if cfg.ExternalURL != "" {
		base = cfg.ExternalURL + server.BasePath
	}
	log.Info("scimd serving", "scimBaseURL", base, "listen", ln.Addr().String(), "policies", cfg.Policies)
	fmt.Fprintf(stdout, "SCIM base URL: %s\n", base)
	fmt.Fprintf(stdout, "Web console: %s%s\n", strings.TrimSuffix(base, server.BasePath), console.Prefix)

	errCh := make(chan error, 1)
	go func() { errCh <- srv.Serve(ln) }()
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
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", err)
	}
	ui.Close()
	if err := a.Close(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
