package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "scimd-load:", err)
		os.Exit(1)
	}
}

// config is the parsed command line.
type config struct {
	scenario    string
	url         string
	token       string
	metricsURL  string
	users       int
	groups      int
	memberships int
	batch       int
	bulk        int
	concurrency int
	rate        float64
	duration    time.Duration
	timeout     time.Duration
	prefix      string
	mapped      []string
	missRatio   float64
	progress    bool
	jsonOut     string
	seed        int64
}

const usage = `usage: scimd-load SCENARIO --url BASE_URL --token TOKEN [flags]

scenarios:
  sync    create --users users and --groups empty groups, then add
          --memberships memberships with member PATCHes of --batch members
          (--bulk N: as POST /Bulk requests of N operations)
  churn   membership add/remove/move PATCHes and user deactivations at
          --rate changes/s for --duration (seeds a small state when empty)
  read    userName eq "…" lookups at --rate requests/s for --duration

flags:
`

func parseConfig(args []string, stderr io.Writer) (config, error) {
	var c config
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, usage)
		return c, errors.New("missing scenario (sync, churn or read)")
	}
	c.scenario = args[0]
	switch c.scenario {
	case "sync", "churn", "read":
	default:
		return c, fmt.Errorf("unknown scenario %q (want sync, churn or read)", c.scenario)
	}
	fs := flag.NewFlagSet("scimd-load "+c.scenario, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&c.url, "url", "", "SCIM base URL, e.g. http://127.0.0.1:8080/scim/v2 (required)")
	fs.StringVar(&c.token, "token", os.Getenv("SCIMD_LOAD_TOKEN"), "SCIM bearer token (SCIMD_LOAD_TOKEN)")
	fs.StringVar(&c.metricsURL, "metrics-url", "", `Prometheus metrics URL (default: the base URL's origin + /metrics; "none" to skip)`)
	fs.IntVar(&c.users, "users", 1000, "users to create (sync; seed size for churn and read)")
	fs.IntVar(&c.groups, "groups", 10, "groups to create")
	fs.IntVar(&c.memberships, "memberships", 3000, "memberships to add")
	fs.IntVar(&c.batch, "batch", 100, "members per membership PATCH (sync)")
	fs.IntVar(&c.bulk, "bulk", 0, "sync: send every create and member PATCH as POST /Bulk requests of this many operations (0: one request each)")
	fs.IntVar(&c.concurrency, "concurrency", 8, "requests in flight")
	fs.Float64Var(&c.rate, "rate", 0, "requests (read) or changes (churn) per second; 0: as fast as possible")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long churn and read run")
	fs.DurationVar(&c.timeout, "timeout", time.Hour, "give up after this long")
	fs.StringVar(&c.prefix, "prefix", "load", "prefix of generated userNames and group names")
	mapped := fs.String("mapped-groups", "Intercom Admins,Intercom Support,Intercom Viewers",
		"comma-separated names given to the first groups (groups the default policy maps to roles)")
	fs.Float64Var(&c.missRatio, "miss-ratio", 0, "share of read lookups for a userName that does not exist")
	fs.BoolVar(&c.progress, "progress", false, "show the progress bar even when stderr is not a terminal")
	fs.StringVar(&c.jsonOut, "json", "", `write the report as JSON to this file ("-": stdout, after the table)`)
	fs.Int64Var(&c.seed, "seed", 1, "random seed")
	if err := fs.Parse(args[1:]); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	c.url = strings.TrimRight(c.url, "/")
	switch {
	case c.url == "":
		return c, errors.New("--url is required")
	case c.token == "":
		return c, errors.New("--token is required")
	case c.users < 1 || c.groups < 1 || c.memberships < 0 || c.batch < 1 || c.concurrency < 1 || c.bulk < 0:
		return c, errors.New("--users, --groups, --batch and --concurrency must be at least 1, --memberships and --bulk at least 0")
	case c.rate < 0 || c.duration <= 0 || c.timeout <= 0:
		return c, errors.New("--rate must be >= 0, --duration and --timeout > 0")
	case c.missRatio < 0 || c.missRatio > 1:
		return c, errors.New("--miss-ratio must be between 0 and 1")
	}
	perUser := (c.memberships + c.users - 1) / c.users
	if perUser > c.groups {
		return c, fmt.Errorf("%d memberships need %d groups per user, more than --groups %d", c.memberships, perUser, c.groups)
	}
	if *mapped != "" {
		for _, m := range strings.Split(*mapped, ",") {
			if m = strings.TrimSpace(m); m != "" {
				c.mapped = append(c.mapped, m)
			}
		}
	}
	if c.metricsURL == "" {
		c.metricsURL = defaultMetricsURL(c.url)
	}
	return c, nil
}

// run is the whole command, for main and for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cl := newClient(c.url, c.token, c.concurrency)
	var prog *progress
	if c.progress || isTerminal(stderr) {
		prog = newProgress(stderr)
	}
	before, metricsErr := scrape(ctx, cl.http, c.metricsURL)
	l := &loader{cfg: c, cl: cl, rec: newRecorder(), prog: prog}
	started := time.Now()
	switch c.scenario {
	case "sync":
		err = l.sync(ctx)
	case "churn":
		err = l.churn(ctx)
	case "read":
		err = l.read(ctx)
	}
	elapsed := time.Since(started)
	prog.done()
	rep := l.rec.report(c, started, elapsed)
	if metricsErr == nil {
		// Let the reconciler apply the last changes before the second scrape.
		if c.scenario != "read" {
			waitSettled(ctx, cl.http, c.metricsURL)
		}
		after, serr := scrape(ctx, cl.http, c.metricsURL)
		if serr == nil {
			rep.CommitToApplied = commitToApplied(before, after)
		} else {
			metricsErr = serr
		}
	}
	if metricsErr != nil {
		rep.MetricsNote = metricsErr.Error()
	}
	rep.writeTable(stdout)
	if c.jsonOut != "" {
		if err := rep.writeJSON(c.jsonOut, stdout); err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	if rep.Total.Errors > 0 {
		return fmt.Errorf("%d requests failed (first: %s)", rep.Total.Errors, strings.Join(rep.FirstErrors, "; "))
	}
	return nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
