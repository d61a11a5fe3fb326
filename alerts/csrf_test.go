package alerts_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"herald/alerts"
)

func TestCSRF(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/topics/x", nil)
	var csrf alerts.CSRF
	tok := csrf.Token(w, r)
	if again := csrf.Token(w, r); again != tok {
		t.Errorf("a second call in one request gave another token")
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Value != tok || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookies %+v", cookies)
	}
	cookie := cookies[0]
	post := func(field string, c *http.Cookie, header string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/subscribe", strings.NewReader(url.Values{"csrf_token": {field}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if c != nil {
			r.AddCookie(c)
		}
		if header != "" {
			r.Header.Set("X-CSRF-Token", header)
		}
		return r
	}
	tests := []struct {
		name string
		r    *http.Request
		want bool
	}{
		{"matching", post(tok, cookie, ""), true},
		{"header", post("", cookie, tok), true},
		{"no cookie", post(tok, nil, ""), false},
		{"no field", post("", cookie, ""), false},
		{"other value", post(strings.Repeat("A", 43), cookie, ""), false},
		{"malformed cookie", post("x", &http.Cookie{Name: cookie.Name, Value: "x"}, ""), false},
	}
	for _, tc := range tests {
		if got := csrf.Valid(tc.r); got != tc.want {
			t.Errorf("%s: Valid = %v", tc.name, got)
		}
	}
	// A request that has the cookie keeps it.
	w = httptest.NewRecorder()
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(cookie)
	if csrf.Token(w, r) != tok || len(w.Result().Cookies()) != 0 {
		t.Errorf("the existing cookie was replaced")
	}
	// Over TLS the cookie is Secure.
	w = httptest.NewRecorder()
	r = httptest.NewRequest(http.MethodGet, "https://news.example.org/", nil)
	csrf.Token(w, r)
	if c := w.Result().Cookies(); len(c) != 1 || !c[0].Secure {
		t.Errorf("cookie over TLS: %+v", c)
	}
}

// TestCSRFCookieFollowsBaseURL: behind a proxy that terminates TLS, the
// request reaches Herald over plain HTTP, often without X-Forwarded-Proto;
// the cookie is Secure because the site is https, and only then.
func TestCSRFCookieFollowsBaseURL(t *testing.T) {
	for base, want := range map[string]bool{"https://news.example.org": true, "http://127.0.0.1:8080": false} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "http://news.example.org/subscribe", nil)
		alerts.NewCSRF(base).Token(w, r)
		if c := w.Result().Cookies(); len(c) != 1 || c[0].Secure != want {
			t.Errorf("base %s: cookie %+v, want Secure %v", base, c, want)
		}
	}
}
