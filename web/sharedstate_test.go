package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"herald/store"
	"herald/store/storetest"
	"herald/templates"
	"herald/web"
)

// instances starts n web servers on one fresh database, each with its own
// store, as n `herald serve` processes would be, and one browser that
// reaches all of them: cookies do not depend on the port, so what one
// server sets goes to every other, as behind a load balancer.
func instances(t *testing.T, n int) []*site {
	t.Helper()
	path := storetest.Database(t)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var out []*site
	for range n {
		db, err := store.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		server, err := web.New(db, web.Config{BaseURL: "http://news.example.org", AdminTokens: []string{adminToken},
			TemplatesFS: templates.Embedded()}, web.Deps{}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(server.Handler())
		t.Cleanup(srv.Close)
		out = append(out, &site{t: t, db: db, srv: srv, server: server, client: client})
	}
	return out
}

// sessionCookie returns the console session cookie s's browser holds.
func (s *site) sessionCookie() *http.Cookie {
	s.t.Helper()
	u, _ := url.Parse(s.url("/admin/"))
	for _, c := range s.client.Jar.Cookies(u) {
		if c.Name == "herald_admin" {
			return c
		}
	}
	s.t.Fatal("no session cookie")
	return nil
}

// TestConsoleSessionIsSharedBetweenInstances: a session made on one
// instance is valid on another, a message left by one is shown by the
// other, and signing out on one ends the session on all.
func TestConsoleSessionIsSharedBetweenInstances(t *testing.T) {
	ctx := context.Background()
	sites := instances(t, 2)
	a, b := sites[0], sites[1]
	a.login()
	cookie := a.sessionCookie()
	wantStatus(t, b.get("/admin/"), http.StatusOK)

	// The database knows the session by the hash of its id only.
	if _, err := b.db.AdminSession(ctx, cookie.Value); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the session is stored under its id: %v", err)
	}
	sum := sha256.Sum256([]byte(cookie.Value))
	if _, err := b.db.AdminSession(ctx, hex.EncodeToString(sum[:])); err != nil {
		t.Errorf("the session is not stored under its id's hash: %v", err)
	}

	tok := b.csrf("/admin/departments")
	r := a.postForm("/admin/departments", url.Values{"csrf_token": {tok}, "slug": {"cabinet-office"}, "name": {"Cabinet Office"}})
	wantStatus(t, r, http.StatusSeeOther)
	if p := b.get(r.Header.Get("Location")); !strings.Contains(p.body, "Department “Cabinet Office” added.") {
		t.Errorf("the other instance does not show the message:\n%s", excerptBody(p.body))
	}
	if p := a.get("/admin/departments"); strings.Contains(p.body, "added.") {
		t.Error("the message was shown twice")
	}

	wantStatus(t, b.postForm("/admin/logout", url.Values{"csrf_token": {tok}}), http.StatusSeeOther)
	for i, s := range sites {
		req, _ := http.NewRequest(http.MethodGet, s.url("/admin/"), nil)
		req.AddCookie(cookie)
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/admin/login") {
			t.Errorf("instance %d after signing out: %d to %q", i, res.StatusCode, res.Header.Get("Location"))
		}
	}
}

// TestSignInLimitIsSharedBetweenInstances: wrong admin tokens count
// against the client on every instance, so spreading guesses over
// several gains nothing.
func TestSignInLimitIsSharedBetweenInstances(t *testing.T) {
	sites := instances(t, 3)
	for i := range 5 {
		r := sites[i%3].api(http.MethodGet, "/api/v1/topics", nil, "guess-"+strconv.Itoa(i))
		wantStatus(t, r, http.StatusUnauthorized)
	}
	for i, s := range sites {
		r := s.api(http.MethodGet, "/api/v1/topics", nil)
		wantStatus(t, r, http.StatusTooManyRequests)
		if secs, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || secs < 1 || secs > 60 {
			t.Errorf("instance %d: Retry-After %q, want 1 to 60 seconds", i, r.Header.Get("Retry-After"))
		}
	}
	tok := sites[1].csrf("/admin/login")
	r := sites[2].postForm("/admin/login", url.Values{"csrf_token": {tok}, "token": {adminToken}})
	wantStatus(t, r, http.StatusTooManyRequests)
}

// TestSignInAllowanceComesBackAfterAMinute: five wrong tokens spend a
// client's allowance for a minute from the first; Retry-After says how
// much of the minute is left, and when it has passed the client may try
// again.
func TestSignInAllowanceComesBackAfterAMinute(t *testing.T) {
	clock := storetest.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	s := newSite(t, func(c *siteConfig) { c.cfg.Now = clock.Now })
	for i := range 5 {
		wantStatus(t, s.api(http.MethodGet, "/api/v1/topics", nil, "guess-"+strconv.Itoa(i)), http.StatusUnauthorized)
		clock.Add(time.Second)
	}
	for _, c := range []struct {
		after      time.Duration
		retryAfter string
	}{{0, "55"}, {50 * time.Second, "5"}, {4500 * time.Millisecond, "1"}} {
		clock.Add(c.after)
		r := s.api(http.MethodGet, "/api/v1/topics", nil)
		wantStatus(t, r, http.StatusTooManyRequests)
		if got := r.Header.Get("Retry-After"); got != c.retryAfter {
			t.Errorf("Retry-After %q, want %q", got, c.retryAfter)
		}
	}
	clock.Add(500 * time.Millisecond)
	wantStatus(t, s.api(http.MethodGet, "/api/v1/topics", nil), http.StatusOK)
}
