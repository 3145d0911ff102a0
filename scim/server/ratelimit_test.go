package server_test

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/scimd/scimd/scim/server"
)

func TestRateLimit(t *testing.T) {
	ts := newTestServer(t, func(o *server.Options) { o.RateLimit, o.RateBurst = 5, 5 })
	// 20 requests at once against a bucket of 5 refilled at 5/s: unless the
	// machine takes seconds to serve them, some are refused. A slow machine
	// gets a few more rounds.
	deadline := time.Now().Add(30 * time.Second)
	for round := 1; ; round++ {
		start := time.Now()
		statuses := make([]*response, 20)
		var wg sync.WaitGroup
		for i := range statuses {
			wg.Go(func() { statuses[i] = ts.do(http.MethodGet, "/Users", nil) })
		}
		wg.Wait()
		elapsed := time.Since(start)
		ok, throttled := 0, 0
		for _, r := range statuses {
			switch r.Status {
			case http.StatusOK:
				ok++
			case http.StatusTooManyRequests:
				throttled++
				checkSCIMError(t, r, http.StatusTooManyRequests, "")
				secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
				if err != nil || secs < 1 {
					t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
				}
			default:
				t.Fatalf("unexpected %s", r)
			}
		}
		// At most the burst plus what refilled while the round ran (+1 for rounding).
		if limit := 5 + int(elapsed.Seconds()*5) + 1; ok > limit {
			t.Fatalf("round %d: %d requests admitted in %v; the limit allows %d", round, ok, elapsed, limit)
		}
		if throttled > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request throttled in %d rounds", round)
		}
	}
	// Tokens are limited separately: the admin API and other tokens are not affected.
	expect(t, ts.do(http.MethodGet, "/api/v1/tokens", nil, withToken(ts.Admin)), http.StatusOK)
	other := expect(t, ts.do(http.MethodPost, "/api/v1/tokens", map[string]any{"name": "other"}, withToken(ts.Admin)), http.StatusCreated)
	expect(t, ts.do(http.MethodGet, "/Users", nil, withToken(str(other.JSON, "token"))), http.StatusOK)
}

func TestRateLimitDefaultAllowsEntraRate(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 2 s")
	}
	// scimd's default: 200 requests/s (cmd/scimd config). Entra's gallery
	// validation requires at least 25 requests/s.
	ts := newTestServer(t, func(o *server.Options) { o.RateLimit = 200 })
	tick := time.NewTicker(time.Second / 25)
	defer tick.Stop()
	for i := range 50 {
		<-tick.C
		r := ts.do(http.MethodGet, "/Users?filter="+urlq(`userName eq "x`+strconv.Itoa(i)+`"`), nil)
		expect(t, r, http.StatusOK)
	}
}
