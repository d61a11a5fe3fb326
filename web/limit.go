package web

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a token bucket per client (clientKey), kept in memory: it
// slows one client guessing admin tokens or flooding strangers' mailboxes
// with sign-ups. Limits that must survive a restart, like the hourly
// allowance of each address, are counted in the outbox instead.
type limiter struct {
	mu    sync.Mutex
	m     map[string]*rate.Limiter
	limit rate.Limit
	burst int
	now   func() time.Time
}

// limiterMaxKeys bounds the memory a flood of distinct clients can take.
const limiterMaxKeys = 50000

func newLimiter(limit rate.Limit, burst int, now func() time.Time) *limiter {
	return &limiter{m: map[string]*rate.Limiter{}, limit: limit, burst: burst, now: now}
}

// perHour is a limiter allowing each client n events an hour, all of them
// at once if it likes.
func perHour(n int, now func() time.Time) *limiter {
	return newLimiter(rate.Every(time.Hour/time.Duration(n)), n, now)
}

// allow takes one token from key's bucket, reporting whether there was one.
func (l *limiter) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	lim := l.m[key]
	if lim == nil {
		if len(l.m) >= limiterMaxKeys {
			l.prune(now)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.m[key] = lim
	}
	return lim.AllowN(now, 1)
}

// prune forgets clients whose bucket is full again (they are
// indistinguishable from new ones). If a flood leaves none to forget, it
// starts over rather than grow without bound.
func (l *limiter) prune(now time.Time) {
	for k, lim := range l.m {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.m, k)
		}
	}
	if len(l.m) >= limiterMaxKeys {
		clear(l.m)
	}
}

// wait is how long key must wait for its next token: 0 when it has one
// now. It takes nothing.
func (l *limiter) wait(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[key]
	if !ok {
		return 0
	}
	missing := 1 - lim.TokensAt(l.now())
	if missing <= 0 {
		return 0
	}
	return time.Duration(missing / float64(l.limit) * float64(time.Second))
}

// clientKey is the rate-limit key of a request's client: its IP address,
// or for IPv6 its /64 network, which one client usually holds whole. It
// uses RemoteAddr only; a reverse proxy in front must be trusted to set
// it, or every client shares one key. Sign-ups, manage-link requests,
// console sign-ins and admin API authentication are all limited by it.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
