package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// csrfCookieOf returns the CSRF cookie a response sets, or nil.
func csrfCookieOf(cookies []*http.Cookie) *http.Cookie {
	for _, c := range cookies {
		if c.Name == csrfCookie {
			return c
		}
	}
	return nil
}

// TestCSRF: the public forms carry a double-submit token. A page with a
// form sets an HttpOnly, SameSite=Lax cookie holding the token the form
// repeats, and keeps a cookie the visitor has; a post counts only when it
// repeats the cookie in the csrf_token field or the X-CSRF-Token header.
func TestCSRF(t *testing.T) {
	f := newSubFixture(t, nil)
	get := func(c *http.Cookie) response {
		req, _ := http.NewRequest(http.MethodGet, f.url("/topics/human-trafficking"), nil)
		if c != nil {
			req.AddCookie(c)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return response{Response: res}
	}
	first := f.get("/topics/human-trafficking")
	cookie := csrfCookieOf(first.Cookies())
	tok := csrfField.FindStringSubmatch(first.body)
	if cookie == nil || tok == nil || cookie.Value != tok[1] || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" {
		t.Fatalf("form token %q, cookie %+v", tok, cookie)
	}
	// The site is https, so the cookie is Secure even though the
	// connection to Herald (behind a proxy) is plain HTTP.
	if !cookie.Secure {
		t.Errorf("cookie of an https site is not Secure")
	}
	if again := get(cookie); csrfCookieOf(again.Cookies()) != nil {
		t.Errorf("the visitor's cookie was replaced")
	}

	post := func(field string, c *http.Cookie, header string) int {
		req, _ := http.NewRequest(http.MethodPost, f.url("/manage"), strings.NewReader(url.Values{"csrf_token": {field}, "email": {"ana@example.org"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if c != nil {
			req.AddCookie(c)
		}
		if header != "" {
			req.Header.Set("X-CSRF-Token", header)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	tests := []struct {
		name string
		code int
		want int
	}{
		{"matching", post(cookie.Value, cookie, ""), http.StatusOK},
		{"header", post("", cookie, cookie.Value), http.StatusOK},
		{"no cookie", post(cookie.Value, nil, ""), http.StatusForbidden},
		{"no field", post("", cookie, ""), http.StatusForbidden},
		{"other value", post(strings.Repeat("A", 43), cookie, ""), http.StatusForbidden},
		{"malformed cookie", post("x", &http.Cookie{Name: csrfCookie, Value: "x"}, ""), http.StatusForbidden},
	}
	for _, tc := range tests {
		if tc.code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, tc.code, tc.want)
		}
	}
	f.svc.Wait()
}

// TestCSRFCookieOnPlainHTTP: on a site whose base URL is http the cookie
// is Secure only for a request that came over TLS.
func TestCSRFCookieOnPlainHTTP(t *testing.T) {
	s := newSite(t)
	if c := csrfCookieOf(s.get("/topics/human-trafficking").Cookies()); c == nil || c.Secure {
		t.Errorf("cookie of an http site: %+v", c)
	}
	w := httptest.NewRecorder()
	s.server.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "https://news.example.org/topics/human-trafficking", nil))
	if c := csrfCookieOf(w.Result().Cookies()); c == nil || !c.Secure {
		t.Errorf("cookie over TLS: %+v", c)
	}
}
