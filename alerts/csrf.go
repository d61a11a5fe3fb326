package alerts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
)

// CSRF protection is a double-submit cookie: a random value in a cookie
// that a cross-site page cannot read, repeated in every form. A forged
// request carries the cookie but cannot know the value to put in the form.
const (
	// CSRFField is the form field (or X-CSRF-Token header) that must repeat
	// the cookie.
	CSRFField  = "csrf_token"
	csrfCookie = "herald_csrf"
	csrfHeader = "X-CSRF-Token"
	csrfLen    = 43 // 32 random bytes, unpadded base64url
)

func csrfWellFormed(v string) bool {
	if len(v) != csrfLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil
}

// CSRF issues and checks the double-submit token of the site's forms.
type CSRF struct {
	// Secure marks the cookie Secure, so a browser never sends it over
	// plain HTTP: set it when the site's base URL is https, whatever the
	// connection in front of Herald (a TLS-terminating proxy) says.
	Secure bool
}

// NewCSRF returns the CSRF protection for a site at baseURL.
func NewCSRF(baseURL string) CSRF { return CSRF{Secure: strings.HasPrefix(baseURL, "https://")} }

// Token returns the value to put in a form's csrf_token field, setting the
// cookie it must match when the request has none. Call it before writing
// the response body. Calling it again for the same request returns the
// same value. The cookie is Secure when c.Secure is set or the request
// came over TLS.
func (c CSRF) Token(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && csrfWellFormed(c.Value) {
		return c.Value
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("alerts: no randomness for a CSRF token: " + err.Error())
	}
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{
		Name:     csrfCookie,
		Value:    v,
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		Secure:   c.Secure || r.TLS != nil,
	})
	// Later calls while handling this request see the same value.
	r.AddCookie(&http.Cookie{Name: csrfCookie, Value: v})
	return v
}

// Valid reports whether a state-changing request repeats its CSRF cookie
// in the csrf_token form field or the X-CSRF-Token header. It reads the
// form, so limit the body (http.MaxBytesReader) before calling it.
func (CSRF) Valid(r *http.Request) bool {
	ck, err := r.Cookie(csrfCookie)
	if err != nil || !csrfWellFormed(ck.Value) {
		return false
	}
	v := r.PostFormValue(CSRFField)
	if v == "" {
		v = r.Header.Get(csrfHeader)
	}
	return subtle.ConstantTimeCompare([]byte(ck.Value), []byte(v)) == 1
}
