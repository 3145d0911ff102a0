// Package egress decides which network destinations scimd may connect to
// on behalf of a configuration it was given: the webhook endpoints an
// administrator registers. A registered URL is someone else's input; left
// unchecked it can point scimd at a cloud metadata service, at link-local
// devices, or (through a name that resolves differently later) at anything
// a DNS answer names.
//
// A Policy is made of --webhook-allow and --webhook-deny rules (CIDRs,
// addresses, host names and *.suffix patterns) over a built-in deny list
// (link-local, cloud metadata, unspecified, multicast and broadcast
// addresses). It is checked twice: when a URL is registered (CheckURL:
// literal addresses, and the addresses a name resolves to then), and at
// every connection after DNS resolution (Dialer), so a name that resolves
// to a denied address later, DNS rebinding included, is refused where it
// matters.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrDenied is wrapped by every refusal of a destination.
var ErrDenied = errors.New("destination denied by the webhook egress policy")

// maxRules bounds each rule list; maxRuleLen one rule's text.
const (
	maxRules   = 1024
	maxRuleLen = 253
)

// defaultDenied are refused unless an allow CIDR covers them: addresses a
// webhook has no business reaching (cloud metadata services sit on
// link-local or fixed addresses; unspecified addresses reach the host
// itself; multicast and broadcast are not endpoints).
var defaultDenied = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata (AWS IPv6)"},
	{netip.MustParsePrefix("100.100.100.200/32"), "cloud metadata (Alibaba)"},
	{netip.MustParsePrefix("168.63.129.16/32"), "cloud platform address (Azure)"},
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (\"this network\")"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
}

// Policy is a set of allow and deny rules. The zero Policy applies only
// the built-in deny list. A Policy is immutable and safe for concurrent
// use.
type Policy struct {
	allowNets, denyNets   []netip.Prefix
	allowHosts, denyHosts []string // lower case; "*.example.com" matches subdomains
}

// New parses allow and deny rules. A rule is a CIDR ("10.0.0.0/8"), an
// address ("192.0.2.7", "::1"), a host name ("hooks.example.com") or a
// subdomain pattern ("*.example.com"). Deny rules win over allow rules; an
// allow CIDR lifts the built-in deny list for its addresses; when any
// allow rule is given, only what an allow rule matches may be reached.
func New(allow, deny []string) (*Policy, error) {
	p := &Policy{}
	for _, list := range []struct {
		flag  string
		rules []string
		nets  *[]netip.Prefix
		hosts *[]string
	}{
		{"--webhook-allow", allow, &p.allowNets, &p.allowHosts},
		{"--webhook-deny", deny, &p.denyNets, &p.denyHosts},
	} {
		if len(list.rules) > maxRules {
			return nil, fmt.Errorf("%s: %d rules; at most %d", list.flag, len(list.rules), maxRules)
		}
		for _, raw := range list.rules {
			rule := strings.TrimSpace(raw)
			if rule == "" {
				continue
			}
			prefix, host, err := parseRule(rule)
			if err != nil {
				return nil, fmt.Errorf("%s %q: %w", list.flag, raw, err)
			}
			if host != "" {
				*list.hosts = append(*list.hosts, host)
			} else {
				*list.nets = append(*list.nets, prefix)
			}
		}
	}
	return p, nil
}

// parseRule reads one rule: a CIDR or address (as a prefix), or a host
// name or *.suffix pattern (lower case).
func parseRule(rule string) (netip.Prefix, string, error) {
	if len(rule) > maxRuleLen {
		return netip.Prefix{}, "", fmt.Errorf("longer than %d characters", maxRuleLen)
	}
	if strings.Contains(rule, "/") {
		prefix, err := netip.ParsePrefix(rule)
		if err != nil {
			return netip.Prefix{}, "", fmt.Errorf("not a CIDR: %w", err)
		}
		return unmapPrefix(prefix.Masked()), "", nil
	}
	if addr, err := netip.ParseAddr(strings.Trim(rule, "[]")); err == nil {
		addr = addr.Unmap().WithZone("")
		return netip.PrefixFrom(addr, addr.BitLen()), "", nil
	}
	if numericLooking(rule) {
		return netip.Prefix{}, "", errors.New("not an address in standard form (write IPv4 as four decimal numbers)")
	}
	host := strings.ToLower(strings.TrimSuffix(rule, "."))
	name := strings.TrimPrefix(host, "*.")
	if !validHostName(name) {
		return netip.Prefix{}, "", errors.New("neither a CIDR, an address, a host name nor a *.domain pattern")
	}
	return netip.Prefix{}, host, nil
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// validHostName reports whether s is a DNS name of letters, digits,
// hyphens and underscores in dot-separated labels of at most 63 bytes.
func validHostName(s string) bool {
	if s == "" || len(s) > maxRuleLen {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// numericLooking reports whether host is made only of digits, dots and
// hexadecimal notation: the shapes C's inet_aton reads as an IPv4 address
// ("2852039166", "0xA9FEA9FE", "0251.0376.0251.0376", "169.254.43518").
// Some resolvers honour them and some do not, so scimd refuses them rather
// than guess which address they mean.
func numericLooking(host string) bool {
	if host == "" {
		return false
	}
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return false
	}
	for _, part := range parts {
		if part == "" {
			return false
		}
		if _, err := strconv.ParseUint(part, 0, 64); err != nil {
			lower := strings.ToLower(part)
			if !strings.HasPrefix(lower, "0x") {
				return false
			}
		}
	}
	return true
}

// matchHost reports whether host (lower case, no trailing dot) matches a
// rule of hosts.
func matchHost(hosts []string, host string) (string, bool) {
	for _, rule := range hosts {
		if suffix, ok := strings.CutPrefix(rule, "*"); ok {
			if strings.HasSuffix(host, suffix) {
				return rule, true
			}
		} else if host == rule {
			return rule, true
		}
	}
	return "", false
}

func matchNet(nets []netip.Prefix, addr netip.Addr) (netip.Prefix, bool) {
	for _, p := range nets {
		if p.Contains(addr) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// normalHost is host in lower case without a trailing dot or brackets.
func normalHost(host string) string {
	return strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
}

// CheckAddr decides a connection to addr reached through host (the name
// in the URL, or the address itself). The error wraps ErrDenied and names
// the rule that refused it.
func (p *Policy) CheckAddr(host string, addr netip.Addr) error {
	host = normalHost(host)
	addr = addr.Unmap().WithZone("")
	if rule, ok := matchHost(p.denyHosts, host); ok {
		return fmt.Errorf("%w: %s matches --webhook-deny %s", ErrDenied, host, rule)
	}
	if rule, ok := matchNet(p.denyNets, addr); ok {
		return fmt.Errorf("%w: %s is in --webhook-deny %s", ErrDenied, addr, rule)
	}
	if _, ok := matchNet(p.allowNets, addr); ok {
		return nil
	}
	for _, d := range defaultDenied {
		if d.prefix.Contains(addr) {
			return fmt.Errorf("%w: %s is a %s address, denied by default (--webhook-allow %s to permit it)", ErrDenied, addr, d.why, d.prefix)
		}
	}
	if len(p.allowNets)+len(p.allowHosts) > 0 {
		if _, ok := matchHost(p.allowHosts, host); !ok {
			return fmt.Errorf("%w: %s (%s) matches no --webhook-allow rule", ErrDenied, host, addr)
		}
	}
	return nil
}

// CheckName applies the rules that can be decided from a host alone: an
// address in the host is checked fully; for a name, deny host rules and an
// allow list of names only. It is what can be said of a URL scimd sends
// through a proxy, which resolves the name itself.
func (p *Policy) CheckName(host string) error {
	host = normalHost(host)
	if addr, err := netip.ParseAddr(host); err == nil {
		return p.CheckAddr(host, addr)
	}
	if numericLooking(host) {
		return fmt.Errorf("%w: host %q is a number, not an address in standard form (write IPv4 as four decimal numbers)", ErrDenied, host)
	}
	if rule, ok := matchHost(p.denyHosts, host); ok {
		return fmt.Errorf("%w: %s matches --webhook-deny %s", ErrDenied, host, rule)
	}
	if len(p.allowHosts) > 0 && len(p.allowNets) == 0 {
		if _, ok := matchHost(p.allowHosts, host); !ok {
			return fmt.Errorf("%w: %s matches no --webhook-allow rule", ErrDenied, host)
		}
	}
	return nil
}

// Resolver looks up a host's addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// lookupTimeout bounds the DNS lookup of a registration.
const lookupTimeout = 3 * time.Second

// CheckURL checks a URL being registered: its host against the rules and,
// for a name, every address it resolves to now (with resolver, or the
// system's when nil). A name that does not resolve is accepted: every
// connection is checked again when it is made.
func (p *Policy) CheckURL(ctx context.Context, raw string, resolver Resolver) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("url does not parse: %w", err)
	}
	host := u.Hostname()
	if err := p.CheckName(host); err != nil {
		return err
	}
	if _, err := netip.ParseAddr(normalHost(host)); err == nil {
		return nil // checked above
	}
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	addrs, err := resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if err := p.CheckAddr(host, a); err != nil {
			return err
		}
	}
	return nil
}

// DialContext is the signature of net.Dialer.DialContext.
type DialContext func(ctx context.Context, network, address string) (net.Conn, error)

// Dialer returns a DialContext that checks every connection's address,
// after DNS resolution and right before connecting, against the policy
// (with the host name of address for host rules). base supplies timeouts
// and keep-alive; its Control, if any, runs after the check.
func (p *Policy) Dialer(base *net.Dialer) DialContext {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", address, err)
		}
		if err := p.CheckName(host); err != nil {
			return nil, err
		}
		d := *base
		inner := base.Control
		d.Control = func(network, address string, c syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: connection to %q: %w", ErrDenied, address, err)
			}
			if err := p.CheckAddr(host, ap.Addr()); err != nil {
				return err
			}
			if inner != nil {
				return inner(network, address, c)
			}
			return nil
		}
		return d.DialContext(ctx, network, address)
	}
}
