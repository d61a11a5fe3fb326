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
	tok := alerts.CSRFToken(w, r)
	if again := alerts.CSRFToken(w, r); again != tok {
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
		if got := alerts.ValidCSRF(tc.r); got != tc.want {
			t.Errorf("%s: ValidCSRF = %v", tc.name, got)
		}
	}
	// A request that has the cookie keeps it.
	w = httptest.NewRecorder()
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(cookie)
	if alerts.CSRFToken(w, r) != tok || len(w.Result().Cookies()) != 0 {
		t.Errorf("the existing cookie was replaced")
	}
	// Over TLS the cookie is Secure.
	w = httptest.NewRecorder()
	r = httptest.NewRequest(http.MethodGet, "https://news.example.org/", nil)
	alerts.CSRFToken(w, r)
	if c := w.Result().Cookies(); len(c) != 1 || !c[0].Secure {
		t.Errorf("cookie over TLS: %+v", c)
	}
}
