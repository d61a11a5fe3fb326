package web_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"herald/alerts"
	"herald/store"
	"herald/web"
)

// TestMetricsNeedAnAdminToken: /metrics names sources, routes and mail
// volumes, so the site serves it only to an admin bearer token; the
// handler for a separate listener serves it as it is.
func TestMetricsNeedAnAdminToken(t *testing.T) {
	s := newSite(t)
	s.get("/topics/human-trafficking")
	for _, tok := range []string{"", "wrong-token"} {
		r := s.api(http.MethodGet, "/metrics", nil, tok)
		wantStatus(t, r, http.StatusUnauthorized)
		if strings.Contains(r.body, "herald_") {
			t.Errorf("token %q: the metrics were served", tok)
		}
	}
	r := s.api(http.MethodGet, "/metrics", nil)
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(r.body, `route="GET /topics/{slug}"`) {
		t.Errorf("metrics with the admin token lack the request count:\n%s", excerptBody(r.body))
	}

	// Without admin tokens the site has no /metrics at all.
	off := newSite(t, withoutAdmin())
	wantStatus(t, off.get("/metrics"), http.StatusNotFound)
	if off.server.MetricsHandler() == nil {
		t.Fatal("no metrics handler for metrics.listen")
	}
}

// TestAPITokenGuessingIsLimited: wrong bearer tokens are counted per
// client with the console's sign-in limiter. Once a client is out of
// attempts it gets 429 with Retry-After, even with the right token, so
// guessing gains nothing; and the console's sign-in shares the allowance.
func TestAPITokenGuessingIsLimited(t *testing.T) {
	s := newSite(t)
	limited := 0
	for i := range 20 {
		r := s.api(http.MethodGet, "/api/v1/topics", nil, "guess-"+strconv.Itoa(i))
		switch r.StatusCode {
		case http.StatusUnauthorized:
			if limited > 0 {
				t.Fatalf("guess %d answered 401 after a 429", i)
			}
		case http.StatusTooManyRequests:
			limited++
			if secs, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || secs < 1 {
				t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
			}
		default:
			t.Fatalf("guess %d: %d %s", i, r.StatusCode, r.body)
		}
	}
	if limited < 14 {
		t.Fatalf("%d of 20 wrong tokens were limited, want all after the first few", limited)
	}
	wantStatus(t, s.api(http.MethodGet, "/api/v1/topics", nil), http.StatusTooManyRequests)
	wantStatus(t, s.get("/metrics", "Authorization", "Bearer "+adminToken), http.StatusTooManyRequests)

	// Right tokens are not counted: another site's client goes on.
	other := newSite(t)
	for range 20 {
		wantStatus(t, other.api(http.MethodGet, "/api/v1/topics", nil), http.StatusOK)
	}
}

// TestHSTSFollowsBaseURL: an https site tells browsers to stay on https
// for a year by default; a plain-http one (a test or an intranet) does not.
func TestHSTSFollowsBaseURL(t *testing.T) {
	https := newSite(t, func(c *siteConfig) {
		c.cfg.BaseURL = "https://news.example.org"
		c.cfg.HSTSMaxAge = 365 * 24 * time.Hour
	})
	for _, path := range []string{"/", "/nowhere", "/feeds/search.atom?q=x", "/admin/login"} {
		if got := https.get(path).Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
			t.Errorf("%s: Strict-Transport-Security = %q", path, got)
		}
	}
	plain := newSite(t, func(c *siteConfig) { c.cfg.HSTSMaxAge = 365 * 24 * time.Hour })
	if got := plain.get("/").Header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("plain http: Strict-Transport-Security = %q", got)
	}
}

// TestTokenPagesSendNoReferrer: the subscription pages, whose URLs may
// hold a token, keep their stricter referrer policy under the site's.
func TestTokenPagesSendNoReferrer(t *testing.T) {
	s := newSite(t, withMounts(func(t *testing.T, db *store.DB, d *web.Deps, base string) {
		keys, err := alerts.NewKeys("hardening-test-token-key-0123456789abcdef")
		if err != nil {
			t.Fatal(err)
		}
		svc, err := alerts.NewService(db, alerts.Config{BaseURL: base}, keys, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		d.Alerts = svc
	}))
	for _, path := range []string{"/subscribe?topic=human-trafficking", "/subscribe/confirm?token=bad", "/manage", "/manage/bad-token", "/unsubscribe/bad-token"} {
		if got := s.get(path).Header.Get("Referrer-Policy"); got != "no-referrer" {
			t.Errorf("%s: Referrer-Policy = %q, want no-referrer", path, got)
		}
	}
	if got := s.get("/").Header.Get("Referrer-Policy"); got != "strict-origin-when-cross-origin" {
		t.Errorf("home page: Referrer-Policy = %q", got)
	}
}

// TestWrongMethodIs405: a path that exists for other methods answers 405
// with an Allow header, on pages, feeds and the API; a path that exists
// for no method stays 404.
func TestWrongMethodIs405(t *testing.T) {
	s := newSite(t)
	cases := []struct {
		method, path, allow string
	}{
		{http.MethodPost, "/search", "GET, HEAD"},
		{http.MethodDelete, "/topics/human-trafficking", "GET, HEAD"},
		{http.MethodPost, "/feeds/search.atom", "GET, HEAD"},
		{http.MethodPut, "/admin/login", "GET, HEAD, POST"},
		{http.MethodDelete, "/api/v1/topics", "GET, HEAD, POST"},
		{http.MethodPost, "/healthz", "GET, HEAD"},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, s.url(tc.path), nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		r := s.do(req)
		if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q, want 405 Allow %q", tc.method, tc.path, r.StatusCode, r.Header.Get("Allow"), tc.allow)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, s.url("/no/such/page"), nil)
	wantStatus(t, s.do(req), http.StatusNotFound)
	// A handler's own 404 (an unknown topic) is not turned into a 405 by
	// a route for another method on the same path.
	wantStatus(t, s.get("/admin/topics/nowhere/edit"), http.StatusSeeOther)
	s.login()
	wantStatus(t, s.get("/admin/topics/nowhere/edit"), http.StatusNotFound)
}
