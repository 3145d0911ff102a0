package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func mustPolicy(t *testing.T, allow, deny []string) *Policy {
	t.Helper()
	p, err := New(allow, deny)
	if err != nil {
		t.Fatalf("New(%q, %q): %v", allow, deny, err)
	}
	return p
}

func TestNewRefusesBadRules(t *testing.T) {
	for _, tc := range []struct {
		name        string
		allow, deny []string
		want        string
	}{
		{"bad cidr", []string{"10.0.0.0/33"}, nil, "--webhook-allow \"10.0.0.0/33\": not a CIDR"},
		{"decimal address", nil, []string{"2852039166"}, "standard form"},
		{"hex address", nil, []string{"0xA9FEA9FE"}, "standard form"},
		{"url not a host", []string{"http://x"}, nil, "not a CIDR"},
		{"space inside", nil, []string{"a b"}, "neither"},
		{"long", []string{strings.Repeat("a", 300)}, nil, "longer than"},
		{"empty label", []string{"a..b"}, nil, "neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.allow, tc.deny)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%q, %q) = %v, want an error containing %q", tc.allow, tc.deny, err, tc.want)
			}
		})
	}
	if _, err := New(make([]string, maxRules+1), nil); err == nil {
		t.Fatal("New accepted more than maxRules rules")
	}
}

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		name        string
		allow, deny []string
		host, addr  string
		denied      bool
		why         string
	}{
		{"metadata", nil, nil, "169.254.169.254", "169.254.169.254", true, "link-local"},
		{"metadata mapped", nil, nil, "::ffff:169.254.169.254", "::ffff:169.254.169.254", true, "link-local"},
		{"ipv6 link-local", nil, nil, "fe80::1", "fe80::1", true, "link-local"},
		{"aws ipv6 metadata", nil, nil, "fd00:ec2::254", "fd00:ec2::254", true, "AWS"},
		{"alibaba metadata", nil, nil, "100.100.100.200", "100.100.100.200", true, "Alibaba"},
		{"unspecified v4", nil, nil, "0.0.0.0", "0.0.0.0", true, "unspecified"},
		{"unspecified v6", nil, nil, "::", "::", true, "unspecified"},
		{"multicast", nil, nil, "224.0.0.1", "224.0.0.1", true, "multicast"},
		{"broadcast", nil, nil, "255.255.255.255", "255.255.255.255", true, "broadcast"},
		{"loopback allowed by default", nil, nil, "localhost", "127.0.0.1", false, ""},
		{"private allowed by default", nil, nil, "hooks.internal", "10.1.2.3", false, ""},
		{"public allowed by default", nil, nil, "hooks.example.com", "203.0.113.9", false, ""},
		{"deny cidr", nil, []string{"127.0.0.0/8"}, "localhost", "127.0.0.1", true, "--webhook-deny 127.0.0.0/8"},
		{"deny mapped cidr", nil, []string{"::ffff:10.0.0.0/104"}, "x", "10.9.9.9", true, "--webhook-deny 10.0.0.0/8"},
		{"deny host", nil, []string{"evil.example.com"}, "EVIL.example.com.", "203.0.113.9", true, "--webhook-deny evil.example.com"},
		{"deny subdomain", nil, []string{"*.evil.example"}, "a.b.evil.example", "203.0.113.9", true, "*.evil.example"},
		{"subdomain pattern is not the apex", nil, []string{"*.evil.example"}, "evil.example", "203.0.113.9", false, ""},
		{"allow cidr lifts default", []string{"169.254.10.0/24"}, nil, "x", "169.254.10.5", false, ""},
		{"allow cidr does not lift others", []string{"169.254.10.0/24"}, nil, "x", "169.254.169.254", true, "link-local"},
		{"deny beats allow", []string{"10.0.0.0/8"}, []string{"10.0.0.5"}, "x", "10.0.0.5", true, "--webhook-deny 10.0.0.5/32"},
		{"allow list excludes others", []string{"hooks.example.com"}, nil, "other.example.com", "203.0.113.9", true, "no --webhook-allow"},
		{"allow list host", []string{"hooks.example.com"}, nil, "hooks.example.com", "203.0.113.9", false, ""},
		{"allowed host still not metadata", []string{"hooks.example.com"}, nil, "hooks.example.com", "169.254.169.254", true, "link-local"},
		{"allow list cidr", []string{"192.0.2.0/24"}, nil, "x", "192.0.2.1", false, ""},
		{"allow list cidr miss", []string{"192.0.2.0/24"}, nil, "x", "198.51.100.1", true, "no --webhook-allow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustPolicy(t, tc.allow, tc.deny)
			err := p.CheckAddr(tc.host, netip.MustParseAddr(tc.addr))
			if tc.denied != (err != nil) {
				t.Fatalf("CheckAddr(%q, %s) = %v, denied want %v", tc.host, tc.addr, err, tc.denied)
			}
			if err != nil && (!errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), tc.why)) {
				t.Fatalf("CheckAddr(%q, %s) = %v, want ErrDenied naming %q", tc.host, tc.addr, err, tc.why)
			}
		})
	}
}

// fakeResolver answers every name with the same addresses.
type fakeResolver []netip.Addr

func (f fakeResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	if len(f) == 0 {
		return nil, errors.New("no such host")
	}
	return f, nil
}

func TestCheckURL(t *testing.T) {
	meta := fakeResolver{netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("169.254.169.254")}
	public := fakeResolver{netip.MustParseAddr("203.0.113.5")}
	for _, tc := range []struct {
		name     string
		url      string
		resolver Resolver
		deny     []string
		denied   bool
	}{
		{"metadata literal", "http://169.254.169.254/latest", public, nil, true},
		{"decimal literal", "http://2852039166/", public, nil, true},
		{"hex literal", "http://0xA9FEA9FE/", public, nil, true},
		{"octal dotted", "http://0251.0376.0251.0376/", public, nil, true},
		{"short dotted", "http://169.254.43518/", public, nil, true},
		{"ipv6 unspecified", "http://[::]:8080/", public, nil, true},
		{"ipv4-mapped ipv6", "http://[::ffff:169.254.169.254]/", public, nil, true},
		{"zero", "http://0.0.0.0:9000/", public, nil, true},
		{"name resolving to metadata", "https://hooks.example.com/x", meta, nil, true},
		{"name resolving to public", "https://hooks.example.com/x", public, nil, false},
		{"name that does not resolve", "https://hooks.example.com/x", fakeResolver{}, nil, false},
		{"name denied", "https://hooks.example.com/x", public, []string{"hooks.example.com"}, true},
		{"loopback by default", "http://127.0.0.1:8080/", public, nil, false},
		{"loopback denied", "http://127.0.0.1:8080/", public, []string{"127.0.0.0/8"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustPolicy(t, nil, tc.deny)
			err := p.CheckURL(context.Background(), tc.url, tc.resolver)
			if tc.denied != (err != nil) {
				t.Fatalf("CheckURL(%q) = %v, denied want %v", tc.url, err, tc.denied)
			}
			if err != nil && !errors.Is(err, ErrDenied) {
				t.Fatalf("CheckURL(%q) = %v, want ErrDenied", tc.url, err)
			}
		})
	}
}

// TestDialerChecksTheResolvedAddress dials a real listener by a name: the
// check runs on the address the name resolved to, at connection time.
func TestDialerChecksTheResolvedAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	base := &net.Dialer{Timeout: 5 * time.Second}
	for _, tc := range []struct {
		name   string
		deny   []string
		allow  []string
		host   string
		denied bool
	}{
		{"allowed", nil, nil, "localhost", false},
		{"name resolving to a denied address", []string{"127.0.0.0/8", "::1"}, nil, "localhost", true},
		{"denied by name", []string{"localhost"}, nil, "localhost", true},
		{"not in the allow list", nil, []string{"192.0.2.0/24"}, "127.0.0.1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dial := mustPolicy(t, tc.allow, tc.deny).Dialer(base)
			conn, err := dial(context.Background(), "tcp", net.JoinHostPort(tc.host, port))
			if conn != nil {
				conn.Close()
			}
			if tc.denied != (err != nil) {
				t.Fatalf("dial %s: %v, denied want %v", tc.host, err, tc.denied)
			}
			if err != nil && !errors.Is(err, ErrDenied) {
				t.Fatalf("dial %s: %v, want ErrDenied", tc.host, err)
			}
		})
	}
}

// FuzzPolicy feeds odd rules and hosts: parsing never panics, and a host
// that is a default-denied address is refused whatever the deny rules.
func FuzzPolicy(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "::1", "*.example.com", "2852039166", "0x7f.1", "[::ffff:1.2.3.4]", "a..b", "", "169.254.169.254"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, rule, host string) {
		p, err := New(nil, []string{rule})
		if err != nil {
			return
		}
		_ = p.CheckName(host)
		if err := p.CheckName("169.254.169.254"); err == nil {
			t.Fatalf("deny rule %q let the metadata address through", rule)
		}
		if addr, err := netip.ParseAddr(host); err == nil {
			_ = p.CheckAddr(host, addr)
		}
	})
}
