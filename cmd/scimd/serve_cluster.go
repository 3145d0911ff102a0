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

	"github.com/scimd/scimd/engine/app"
	"github.com/scimd/scimd/engine/cluster"
	"github.com/scimd/scimd/engine/console"
	"github.com/scimd/scimd/scim/server"
)

// runClusterMember runs serve on PostgreSQL: one member of a cluster that
// leads or stands by (package cluster). A deposed leader exits with an
// error, for its supervisor to restart it as a standby.
func runClusterMember(ctx context.Context, cfg serveConfig, appCfg app.Config, log *slog.Logger, stdout io.Writer) error {
	if cfg.AdminListen != "" {
		return fmt.Errorf("--admin-listen is not supported with --database yet: one --listen address serves everything")
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" || cfg.TLSClientCA != "" {
		return fmt.Errorf("--tls-cert, --tls-key and --tls-client-ca are not supported with --database yet: terminate TLS in front of the cluster (docs/high-availability.md)")
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	advertise := cfg.AdvertiseURL
	if advertise == "" {
		advertise = "http://" + ln.Addr().String()
	}
	node, err := cluster.Start(ctx, cluster.Config{
		App: appCfg, Advertise: strings.TrimSuffix(advertise, "/"), Logger: log, JournalRetention: cfg.JournalRetention,
		OnLeader: func(a *app.App) {
			if a.GeneratedAdminToken != "" {
				fmt.Fprintf(stdout, "Admin token (shown once; set SCIMD_ADMIN_TOKEN to use the CLI): %s\n", a.GeneratedAdminToken)
			}
		},
		Mount: func(a *app.App) (http.Handler, func(), error) {
			ui, err := console.New(console.Options{Store: a.Store, Reconciler: a.Reconciler, Policies: a.Policies,
				Gatherer: a.Registry, Logger: log, SecureCookies: strings.HasPrefix(cfg.ExternalURL, "https://")})
			if err != nil {
				return nil, nil, fmt.Errorf("web console: %w", err)
			}
			all, _, _ := a.Handlers(ui.Mount)
			return all, ui.Close, nil
		},
	})
	if err != nil {
		ln.Close()
		return err
	}
	defer node.Close()
	srv := &http.Server{
		Handler:           node,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.ReadTimeout + 2*time.Minute,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(node.Drain)
	base := "http://" + ln.Addr().String() + server.BasePath
	if cfg.ExternalURL != "" {
		base = cfg.ExternalURL + server.BasePath
	}
	log.Info("scimd serving as a cluster member", "scimBaseURL", base, "listen", ln.Addr().String(), "advertise", advertise)
	fmt.Fprintf(stdout, "SCIM base URL: %s\n", base)
	// On a standby the console, like the admin API, is the leader's.
	fmt.Fprintf(stdout, "Web console: %s%s\n", strings.TrimSuffix(base, server.BasePath), console.Prefix)

	errCh := make(chan error, 1)
	go func() { errCh <- srv.Serve(ln) }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var exitErr error
wait:
	for {
		select {
		case err := <-errCh:
			return fmt.Errorf("http server: %w", err)
		case <-hup:
			if node.Role() == "leader" {
				if err := node.App().Policies.Reload(ctx, "sighup"); err != nil {
					log.Warn("policy reload on SIGHUP refused", "err", err)
				}
			}
		case err := <-node.Deposed():
			exitErr = fmt.Errorf("no longer a cluster member in good standing (%w); exiting so that a restart rejoins as a standby", err)
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if exitErr != nil {
		// A deposed leader must not finish what it started: drop the
		// connections at once.
		srv.Close()
	} else if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", err)
	}
	if err := node.Close(); err != nil && exitErr == nil {
		return err
	}
	if exitErr != nil {
		return exitErr
	}
	log.Info("stopped")
	return nil
}
