package server

import (
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// tokenLimiter keeps one token bucket per SCIM token name.
type tokenLimiter struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	byKey map[string]*rate.Limiter
}

func newTokenLimiter(perSecond float64, burst int) *tokenLimiter {
	if burst <= 0 {
		burst = int(perSecond * 2)
		if burst < 1 {
			burst = 1
		}
	}
	return &tokenLimiter{limit: rate.Limit(perSecond), burst: burst, byKey: map[string]*rate.Limiter{}}
}

// allow reports whether a request for key may proceed; when not, how long
// until it would.
func (l *tokenLimiter) allow(key string) (time.Duration, bool) {
	if l.limit <= 0 {
		return 0, true
	}
	l.mu.Lock()
	lim, ok := l.byKey[key]
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.byKey[key] = lim
	}
	l.mu.Unlock()
	res := lim.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return d, false
	}
	return 0, true
}

func itoa(n int) string { return strconv.Itoa(n) }
