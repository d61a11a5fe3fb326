package alerts

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// subLimiter allows each key (a client network) n events per hour, as a
// token bucket holding n. It is kept in memory: it guards against one
// client flooding strangers' mailboxes, while the per-address limit, which
// must survive restarts, is counted in the outbox.
type subLimiter struct {
	mu    sync.Mutex
	n     int
	every rate.Limit
	m     map[string]*rate.Limiter
}

// subLimiterMax bounds the memory a flood of distinct clients can take.
const subLimiterMax = 50000

func newSubLimiter(perHour int) *subLimiter {
	return &subLimiter{n: perHour, every: rate.Every(time.Hour / time.Duration(perHour)), m: map[string]*rate.Limiter{}}
}

// allow reports whether key may have one more event at now.
func (l *subLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.m[key]
	if lim == nil {
		if len(l.m) >= subLimiterMax {
			l.prune(now)
		}
		lim = rate.NewLimiter(l.every, l.n)
		l.m[key] = lim
	}
	return lim.AllowN(now, 1)
}

// prune forgets clients whose bucket is full again (they are
// indistinguishable from new ones). If a flood leaves none to forget, it
// starts over rather than grow without bound.
func (l *subLimiter) prune(now time.Time) {
	for k, lim := range l.m {
		if lim.TokensAt(now) >= float64(l.n) {
			delete(l.m, k)
		}
	}
	if len(l.m) >= subLimiterMax {
		clear(l.m)
	}
}

// ClientKey is the rate-limit key of a request's client: its IP address,
// or for IPv6 its /64 network, which one client usually holds whole. It
// uses RemoteAddr only; a reverse proxy in front must be trusted to set
// it, or every client shares one key. Sign-ups, console sign-ins and admin
// API authentication are all limited by it.
func ClientKey(r *http.Request) string {
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
