// Command consumer is the reference scimd consumer: it keeps an
// application's table of teammate roles in step with scimd, persisted to a
// JSON file together with the last feed sequence it reflects, and resumes
// from it after a restart.
//
// Feed mode (default) long-polls GET /api/v1/feed; webhook mode (-listen)
// receives scimd's signed webhooks and verifies each signature. Copy it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

func run() error {
	server := flag.String("server", envOr("SCIMD_SERVER", "http://127.0.0.1:8080"), "scimd address (SCIMD_SERVER)")
	statePath := flag.String("state", "teammates.json", "state file: the table and the last sequence applied")
	wait := flag.Duration("wait", 30*time.Second, "feed long-poll wait")
	listen := flag.String("listen", "", "webhook mode: listen on this address (e.g. :9000) instead of following the feed")
	flag.Parse()
	token := os.Getenv("SCIMD_TOKEN")
	secret := os.Getenv("WEBHOOK_SECRET")
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	client := &Client{Server: *server, Token: token, HTTP: &http.Client{Timeout: *wait + 30*time.Second}}

	if *listen == "" {
		if token == "" {
			return errors.New("set SCIMD_TOKEN to a token that can read /api/v1/feed")
		}
		log.Info("following the feed", "server", *server, "state", *statePath)
		return Follow(ctx, client, *statePath, *wait, func(st *State) {
			log.Info("applied", "seq", st.Seq, "teammates", len(st.Teammates))
		})
	}

	if secret == "" {
		return errors.New("set WEBHOOK_SECRET to the endpoint's signing secret")
	}
	var boot func() (*State, error)
	if token != "" {
		boot = func() (*State, error) { return client.Snapshot(ctx) }
	}
	rc, err := NewReceiver(secret, *statePath, boot)
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: *listen, Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Info("receiving webhooks", "listen", *listen, "state", *statePath, "seq", rc.State().Seq)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("listen: %w", err)
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
