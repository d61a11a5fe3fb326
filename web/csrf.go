package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
)

// The public forms (subscribing, managing, the console's sign-in) are
// protected by a double-submit cookie: a random value in a cookie that a
// cross-site page cannot read, repeated in every form. A forged request
// carries the cookie but cannot know the value to put in the form. The
// console's own forms use their session's token instead (requireSession).
const (
	csrfField  = "csrf_token"
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

// csrf issues and checks the double-submit token of the site's forms.
type csrf struct {
	// secure marks the cookie Secure, so a browser never sends it over
	// plain HTTP: set when the site's base URL is https, whatever the
	// connection in front of Herald (a TLS-terminating proxy) says.
	secure bool
}

// token returns the value to put in a form's csrf_token field, setting the
// cookie it must match when the request has none. Call it before writing
// the response body. Calling it again for the same request returns the
// same value. The cookie is Secure when c.secure is set or the request
// came over TLS.
func (c csrf) token(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && csrfWellFormed(c.Value) {
		return c.Value
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("web: no randomness for a CSRF token: " + err.Error())
	}
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{
		Name:     csrfCookie,
		Value:    v,
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		Secure:   c.secure || r.TLS != nil,
	})
	// Later calls while handling this request see the same value.
	r.AddCookie(&http.Cookie{Name: csrfCookie, Value: v})
	return v
}

// valid reports whether a state-changing request repeats its CSRF cookie
// in the csrf_token form field or the X-CSRF-Token header. It reads the
// form, so limit the body (http.MaxBytesReader) before calling it.
func (csrf) valid(r *http.Request) bool {
	ck, err := r.Cookie(csrfCookie)
	if err != nil || !csrfWellFormed(ck.Value) {
		return false
	}
	v := r.PostFormValue(csrfField)
	if v == "" {
		v = r.Header.Get(csrfHeader)
	}
	return subtle.ConstantTimeCompare([]byte(ck.Value), []byte(v)) == 1
}
