package httpstack

import (
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Limits bound the connections a listener holds open.
type Limits struct {
	// Max is the most connections open at once (0: unlimited).
	Max int
	// PerAddress is the most connections open at once from one client IP
	// address (0: unlimited).
	PerAddress int
}

// LimitedListener accepts connections within Limits: one over a limit is
// closed at once, so a flood of idle or slow connections can exhaust
// neither file descriptors nor memory, and one address cannot take every
// slot.
type LimitedListener struct {
	net.Listener
	limits  Limits
	mu      sync.Mutex
	open    int
	perAddr map[string]int
	refused map[string]prometheus.Counter
	gauge   prometheus.Gauge
}

// connMetrics are the listeners' metrics, labelled by listener.
type connMetrics struct {
	refused *prometheus.CounterVec
	open    *prometheus.GaugeVec
}

func newConnMetrics(reg prometheus.Registerer) *connMetrics {
	m := &connMetrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scimd_http_connections_refused_total",
			Help: "Connections closed at accept because a connection limit was reached, by listener and limit."},
			[]string{"listener", "limit"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scimd_http_connections_open", Help: "Connections open, by listener."}, []string{"listener"}),
	}
	if reg != nil {
		reg.MustRegister(m.refused, m.open)
	}
	return m
}

// LimitListener wraps ln with limits; name labels its metrics ("main",
// "admin").
func (s *Stack) LimitListener(ln net.Listener, limits Limits, name string) *LimitedListener {
	return &LimitedListener{Listener: ln, limits: limits, perAddr: make(map[string]int),
		refused: map[string]prometheus.Counter{
			"max":         s.conns.refused.WithLabelValues(name, "max"),
			"per-address": s.conns.refused.WithLabelValues(name, "per-address"),
		},
		gauge: s.conns.open.WithLabelValues(name),
	}
}

// Accept returns the next connection within the limits.
func (l *LimitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := hostOf(c.RemoteAddr())
		l.mu.Lock()
		reason := ""
		switch {
		case l.limits.Max > 0 && l.open >= l.limits.Max:
			reason = "max"
		case l.limits.PerAddress > 0 && l.perAddr[addr] >= l.limits.PerAddress:
			reason = "per-address"
		default:
			l.open++
			l.perAddr[addr]++
		}
		l.mu.Unlock()
		if reason != "" {
			l.refused[reason].Inc()
			_ = c.Close()
			continue
		}
		l.gauge.Inc()
		return &limitedConn{Conn: c, release: func() { l.release(addr) }}, nil
	}
}

func (l *LimitedListener) release(addr string) {
	l.mu.Lock()
	l.open--
	if l.perAddr[addr]--; l.perAddr[addr] <= 0 {
		delete(l.perAddr, addr)
	}
	l.mu.Unlock()
	l.gauge.Dec()
}

func hostOf(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
