package publish

import (
	"net"
	"net/http"
	"sync"

	"golang.org/x/time/rate"
)

// hubRateLimit bounds WebSub requests per client and per callback host, so
// the hub cannot be used to aim a stream of verification requests at a
// third party. The zero value is ready to use.
type hubRateLimit struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// Per key: a burst of 20 requests, then one every 6 seconds.
const (
	hubLimitBurst = 20
	hubLimitEvery = 6e9 // nanoseconds
	hubLimitKeys  = 10000
)

func (l *hubRateLimit) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil || len(l.m) > hubLimitKeys {
		// Forgetting everyone at once is crude but bounded; a client
		// gains at most one fresh burst from it.
		l.m = map[string]*rate.Limiter{}
	}
	lim, ok := l.m[key]
	if !ok {
		lim = rate.NewLimiter(rate.Every(hubLimitEvery), hubLimitBurst)
		l.m[key] = lim
	}
	return lim.Allow()
}

// hubAllowed reports whether a request from r for callbackHost may go on.
func (p *Publisher) hubAllowed(r *http.Request, callbackHost string) bool {
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	return p.hubLimit.allow("client:"+client) && p.hubLimit.allow("callback:"+callbackHost)
}
