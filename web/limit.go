package web

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"time"

	"herald/store"
)

// limiter counts a client's attempts at something limited (signing in,
// asking for confirmation emails) in the database, so that the limit holds
// across every Herald instance on it. Each attempt is counted in a slot of
// period/limiterSlots and counts until its slot is a period old: at most
// limit attempts count at any moment, and a client that spent its
// allowance has all of it back at most one period after its first
// attempt. Limits that must also survive a change of client, like the
// hourly allowance of each address, are counted in the outbox instead.
type limiter struct {
	db *store.DB
	// bucket names the limit in the database ("login", "signup").
	bucket string
	limit  int
	period time.Duration
	now    func() time.Time
}

// limiterSlots is how many windows a limiter's period is counted in: more
// follow the period more closely, fewer keep fewer rows per client.
const limiterSlots = 12

// perPeriod is a limiter allowing each client n attempts in any period,
// all of them at once if it likes.
func perPeriod(db *store.DB, bucket string, n int, period time.Duration, now func() time.Time) *limiter {
	return &limiter{db: db, bucket: bucket, limit: n, period: period, now: now}
}

// allow counts one attempt of key, reporting whether it was within the
// limit; an attempt over the limit is not counted.
func (l *limiter) allow(ctx context.Context, key string) (bool, error) {
	now := l.now()
	ws, err := l.db.RateWindows(ctx, l.bucket, key, now)
	if err != nil {
		return false, err
	}
	start := now.UTC().Truncate(l.period / limiterSlots)
	used := 0
	for _, w := range ws {
		if !w.Start.Equal(start) {
			used += w.N
		}
	}
	n, err := l.db.CountRate(ctx, l.bucket, key, start, start.Add(l.period), l.limit-used)
	if err != nil {
		return false, err
	}
	if n == 1 {
		// A new window: the time to forget the windows that no longer
		// count, of every client, so the table stays as small as the
		// clients of the last period.
		if _, err := l.db.PurgeRateWindows(ctx, now); err != nil {
			return false, err
		}
	}
	return n > 0, nil
}

// wait is how long key must wait until an attempt is within the limit
// again: 0 when one is now. It counts nothing.
func (l *limiter) wait(ctx context.Context, key string) (time.Duration, error) {
	now := l.now()
	ws, err := l.db.RateWindows(ctx, l.bucket, key, now)
	if err != nil {
		return 0, err
	}
	over := 1 - l.limit // attempts that must stop counting first
	for _, w := range ws {
		over += w.N
	}
	if over <= 0 {
		return 0, nil
	}
	for _, w := range ws {
		if over -= w.N; over <= 0 {
			return w.Expires.Sub(now), nil
		}
	}
	return 0, nil
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
