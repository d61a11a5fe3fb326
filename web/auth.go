package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Login attempts per client IP: a burst of five, then one every twelve
// seconds. Admin tokens are long random strings, so this only slows down
// guessing and keeps a stuck script from filling the log.
const (
	loginRate  = rate.Limit(1.0 / 12)
	loginBurst = 5
)

const sessionCookie = "herald_admin"

// tokenOK compares tok with every configured admin token in constant time
// (hashing first, so the comparison does not depend on lengths either).
func (s *Server) tokenOK(tok string) bool {
	if tok == "" {
		return false
	}
	got := sha256.Sum256([]byte(tok))
	ok := 0
	for _, t := range s.cfg.AdminTokens {
		want := sha256.Sum256([]byte(t))
		ok |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	return ok == 1
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// requireToken lets a request through to an API handler only with a valid
// bearer token. Wrong tokens are counted per client with the console's
// sign-in limiter; a client out of attempts gets 429 and is not even
// checked, so guessing runs at the limiter's pace whatever it sends.
func (s *Server) requireToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := clientKey(r)
		if wait := s.logins.wait(key); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			s.apiFail(w, r, errStatus(http.StatusTooManyRequests, "Too many requests with a wrong admin token from your network; try again later."))
			return
		}
		if !s.tokenOK(bearer(r)) {
			s.logins.allow(key)
			w.Header().Set("WWW-Authenticate", `Bearer realm="herald admin"`)
			s.apiFail(w, r, errStatus(http.StatusUnauthorized, "A valid admin token is required: Authorization: Bearer <token>."))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// session is a signed-in admin's state, kept on the server; the cookie
// holds only a random id.
type session struct {
	id      string
	csrf    string
	expires time.Time
	flash   string
}

// sessions is the in-memory session table. Sessions end on restart, which
// for a handful of admins costs one more login.
type sessions struct {
	mu  sync.Mutex
	m   map[string]*session // by hash of the id, so a memory dump holds no usable cookie
	ttl time.Duration
	now func() time.Time
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{m: map[string]*session{}, ttl: ttl, now: now}
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

func (ss *sessions) create() *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	for k, s := range ss.m {
		if now.After(s.expires) {
			delete(ss.m, k)
		}
	}
	s := &session{id: randomToken(), csrf: randomToken(), expires: now.Add(ss.ttl)}
	ss.m[hashID(s.id)] = s
	return s
}

func (ss *sessions) get(id string) (*session, bool) {
	if id == "" {
		return nil, false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	k := hashID(id)
	s, ok := ss.m[k]
	if !ok {
		return nil, false
	}
	if ss.now().After(s.expires) {
		delete(ss.m, k)
		return nil, false
	}
	return s, true
}

func (ss *sessions) delete(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, hashID(id))
}

// setFlash keeps a message for the session's next page.
func (ss *sessions) setFlash(s *session, msg string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.flash = msg
}

// takeFlash returns the message and forgets it.
func (ss *sessions) takeFlash(s *session) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	msg := s.flash
	s.flash = ""
	return msg
}

type sessionKey struct{}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

func (s *Server) secureCookies() bool { return s.base.Scheme == "https" }

func (s *Server) setSessionCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/admin", MaxAge: maxAge,
		HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode,
	})
}

// requireSession lets a request through to a console page only with a live
// session, and a form post only with the session's CSRF token.
func (s *Server) requireSession(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		var sess *session
		if c, err := r.Cookie(sessionCookie); err == nil {
			sess, _ = s.sessions.get(c.Value)
		}
		if sess == nil {
			target := "/admin/login"
			if r.Method == http.MethodGet {
				target += "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				s.fail(w, r, formError(err))
				return
			}
			got := r.PostForm.Get("csrf_token")
			if subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) != 1 {
				s.renderError(w, r, http.StatusForbidden, "The form has expired or did not come from this site. Go back, reload the page and try again.")
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess)))
	})
}

// safeNext keeps a post-login redirect on the console.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/admin/") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return "/admin/"
}
