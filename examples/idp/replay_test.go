package idp_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/scimd/scimd/engine/app"
	"github.com/scimd/scimd/examples/idp/replay"
	"github.com/scimd/scimd/scim/server"
	"github.com/scimd/scimd/scim/store"
)

// TestReplayAgainstRealServer replays each IdP's recorded request sequence
// against a fresh, real scimd (on-disk store, default policy, HTTP on
// loopback) and checks the final users, groups and memberships, once with
// a token of the IdP's compatibility profile and once with "auto".
func TestReplayAgainstRealServer(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("*", "sequence.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sequences: %v", err)
	}
	for _, file := range files {
		for _, profile := range []string{filepath.Dir(file), "auto"} {
			t.Run(filepath.Dir(file)+"/"+profile, func(t *testing.T) {
				seq, err := replay.Load(file)
				if err != nil {
					t.Fatal(err)
				}
				a, err := app.Open(context.Background(), app.Config{
					Data: t.TempDir(), Policies: filepath.Join("..", "..", "policies"), AdminToken: "admin",
					Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				})
				if err != nil {
					t.Fatal(err)
				}
				srv := httptest.NewServer(a.Handler)
				t.Cleanup(func() { srv.Close(); a.Close() })
				token, err := server.CreateScopedToken(context.Background(), a.Store,
					server.TokenSpec{Name: "idp", Scopes: []string{store.TokenRoleSCIM}, Profile: profile}, server.ActorFrom(context.Background()))
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				if err := seq.Run(ctx, &http.Client{Timeout: 30 * time.Second}, srv.URL+"/scim/v2", token); err != nil {
					t.Fatalf("%s replay with profile %s: %v", seq.IdP, profile, err)
				}
			})
		}
	}
}
