package server_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/scimd/scimd/scim/server"
)

// TestLocationIgnoresClientHost checks that meta.location and Location are
// built from the address the request arrived at, not from Host or
// X-Forwarded-* headers, unless the peer is a trusted proxy.
func TestLocationIgnoresClientHost(t *testing.T) {
	spoof := []reqOpt{
		func(r *http.Request) { r.Host = "attacker.example" },
		withHeader("X-Forwarded-Host", "evil.example"),
		withHeader("X-Forwarded-Proto", "https"),
	}
	cases := []struct {
		name    string
		trusted []netip.Prefix
		want    string
	}{
		{"untrusted peer", nil, "http://127.0.0.1:"},
		{"trusted proxy", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "https://evil.example/scim/v2/Users/"},
		{"another proxy is trusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "http://127.0.0.1:"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, func(o *server.Options) { o.TrustedProxies = tc.trusted })
			r := expect(t, ts.do(http.MethodPost, "/Users", userBody("loc"+string(rune('a'+i))), spoof...), http.StatusCreated)
			loc := r.Header.Get("Location")
			meta, _ := r.JSON["meta"].(map[string]any)
			if !strings.HasPrefix(loc, tc.want) || meta["location"] != loc {
				t.Fatalf("Location %q, meta.location %v; want prefix %q", loc, meta["location"], tc.want)
			}
		})
	}
}
