package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/scimd/scimd/scim/server"
	"github.com/scimd/scimd/scim/store"
	"github.com/scimd/scimd/scim/store/sqlite"
)

func newServeCmd() *cobra.Command {
	cfg := defaultServeConfig()
	var configPath string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the SCIM service provider",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			resolved, err := resolveServeConfig(cmd, configPath)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return runServe(ctx, resolved, cmd.OutOrStdout())
		},
	}
	bindServeFlags(cmd.Flags(), &cfg)
	cmd.Flags().StringVar(&configPath, "config", "", "YAML config file (SCIMD_CONFIG)")
	return cmd
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// runServe runs the daemon until ctx is cancelled, then shuts down
// gracefully: stop accepting, finish in-flight requests, close the store.
func runServe(ctx context.Context, cfg serveConfig, stdout interface{ Write([]byte) (int, error) }) error {
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	backend, err := sqlite.Open(ctx, cfg.Data)
	if err != nil {
		return err
	}
	started := time.Now()
	st, err := store.Open(ctx, store.Options{Backend: backend, Logger: log, Registerer: reg})
	if err != nil {
		backend.Close()
		return err
	}
	defer st.Close()
	log.Info("state loaded", "data", cfg.Data, "duration", time.Since(started))

	generated, err := server.EnsureAdminToken(ctx, st, os.Getenv("SCIMD_ADMIN_TOKEN"))
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	if generated != "" {
		fmt.Fprintf(stdout, "Admin token (shown once; set SCIMD_ADMIN_TOKEN to use the CLI): %s\n", generated)
	}

	scim := server.New(server.Options{
		Store: st, Logger: log, Registerer: reg,
		MaxBodyBytes: cfg.MaxBodyBytes, MaxResults: cfg.MaxResults, ExternalURL: cfg.ExternalURL,
		RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst,
	})
	router := mux.NewRouter()
	scim.Register(router)
	router.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	router.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := st.Failed(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, `{"status":"not ready","reason":%q}`+"\n", err.Error())
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	router.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           server.CanonicalPaths(router),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	base := "http://" + ln.Addr().String() + server.BasePath
	if cfg.ExternalURL != "" {
		base = cfg.ExternalURL + server.BasePath
	}
	log.Info("scimd serving", "scimBaseURL", base, "listen", ln.Addr().String(), "policies", cfg.Policies)
	fmt.Fprintf(stdout, "SCIM base URL: %s\n", base)

	errCh := make(chan error, 1)
	go func() { errCh <- srv.Serve(ln) }()
	select {
	case err := <-errCh:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", err)
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	log.Info("stopped")
	return nil
}
