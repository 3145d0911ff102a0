// Command replay sends an identity provider's recorded SCIM requests (a
// sequence file such as examples/idp/okta/sequence.json) to a running
// scimd, as the identity provider would, and checks every answer and the
// final Users and Groups.
//
//	go run ./examples/walkthrough/replay --url http://127.0.0.1:8080/scim/v2 \
//	    --token "$OKTA_TOKEN" examples/idp/okta/sequence.json
//
// The token is a SCIM token (scimd token create --name okta); it may also
// come from SCIMD_SCIM_TOKEN.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/scimd/scimd/examples/idp/replay"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "replay:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8080/scim/v2", "SCIM base URL of the running scimd")
	token := fs.String("token", os.Getenv("SCIMD_SCIM_TOKEN"), "SCIM bearer token (default: SCIMD_SCIM_TOKEN)")
	settleToken := fs.String("settle-token", "", "a read token: after each step, wait until scimd has applied its roles (GET /api/v1/settled), so each step shows in the history")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: replay [--url URL] [--token TOKEN] SEQUENCE.json...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no sequence file")
	}
	if *token == "" {
		return errors.New("no SCIM token: pass --token or set SCIMD_SCIM_TOKEN")
	}
	client := &http.Client{Timeout: 30 * time.Second}
	for _, file := range fs.Args() {
		seq, err := replay.Load(file)
		if err != nil {
			return err
		}
		if *settleToken != "" {
			seq.AfterStep = settler(client, *base, *settleToken)
		}
		if err := seq.Run(ctx, client, *base, *token); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "replayed %s: %d %s requests, final state as expected (%d users, %d groups)\n",
			file, len(seq.Steps), seq.IdP, len(seq.Expect.Users), len(seq.Expect.Groups))
	}
	return nil
}

// settler waits, through the admin API next to the SCIM base URL, until
// scimd has reconciled every write it acknowledged.
func settler(client *http.Client, scimBase, token string) func(context.Context) error {
	api := strings.TrimSuffix(strings.TrimRight(scimBase, "/"), "/scim/v2") + "/api/v1/settled?timeout=10s"
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, api, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("wait for scimd to settle: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("wait for scimd to settle: %s", resp.Status)
		}
		return nil
	}
}
