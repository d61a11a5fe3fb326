package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"herald/store"
)

// Sign-in attempts per client: five a minute. Admin tokens are long
// random strings, so this only slows down guessing and keeps a stuck
// script from filling the log.
const (
	loginAttempts = 5
	loginPeriod   = time.Minute
)

// sessionTTL is how long a console session lasts.
const sessionTTL = 12 * time.Hour

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
		wait, err := s.logins.wait(r.Context(), key)
		if err != nil {
			s.apiFail(w, r, err)
			return
		}
		if wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			s.apiFail(w, r, errStatus(http.StatusTooManyRequests, "api.token.too_many"))
			return
		}
		if !s.tokenOK(bearer(r)) {
			if _, err := s.logins.allow(r.Context(), key); err != nil {
				s.apiFail(w, r, err)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="herald admin"`)
			s.apiFail(w, r, errStatus(http.StatusUnauthorized, "api.token.required"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// session is a signed-in admin's state, kept in the database (as
// store.AdminSession) so that every instance knows it; the cookie holds
// only a random id, and the database only its hash, so a copy of the
// database holds no usable cookie.
type session struct {
	// id is the cookie's value, known only when the session is created.
	id      string
	hash    string
	csrf    string
	expires time.Time
	flash   string
}

// sessions are the console's sessions, in the database.
type sessions struct {
	db  *store.DB
	ttl time.Duration
	now func() time.Time
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

// create starts a session, forgetting the sessions that have expired.
func (ss *sessions) create(ctx context.Context) (*session, error) {
	now := ss.now()
	if _, err := ss.db.DeleteExpiredAdminSessions(ctx, now); err != nil {
		return nil, err
	}
	s := &session{id: randomToken(), csrf: randomToken(), expires: now.Add(ss.ttl)}
	s.hash = hashID(s.id)
	err := ss.db.CreateAdminSession(ctx, store.AdminSession{IDHash: s.hash, CSRF: s.csrf, Created: now, Expires: s.expires})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// get returns the live session whose cookie holds id, or nil.
func (ss *sessions) get(ctx context.Context, id string) (*session, error) {
	if id == "" {
		return nil, nil
	}
	row, err := ss.db.AdminSession(ctx, hashID(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if ss.now().After(row.Expires) {
		return nil, ss.db.DeleteAdminSession(ctx, row.IDHash)
	}
	return &session{hash: row.IDHash, csrf: row.CSRF, expires: row.Expires, flash: row.Flash}, nil
}

// delete ends s, on every instance.
func (ss *sessions) delete(ctx context.Context, s *session) error {
	return ss.db.DeleteAdminSession(ctx, s.hash)
}

// setFlash keeps a message for the session's next page.
func (ss *sessions) setFlash(ctx context.Context, s *session, msg string) error {
	s.flash = msg
	return ss.db.SetAdminSessionFlash(ctx, s.hash, msg)
}

// takeFlash returns the message and forgets it. Only a session with a
// message costs a write.
func (ss *sessions) takeFlash(ctx context.Context, s *session) (string, error) {
	msg := s.flash
	if msg == "" {
		return "", nil
	}
	s.flash = ""
	ok, err := ss.db.TakeAdminSessionFlash(ctx, s.hash, msg)
	if err != nil || !ok {
		return "", err
	}
	return msg, nil
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
			if sess, err = s.sessions.get(r.Context(), c.Value); err != nil {
				s.fail(w, r, err)
				return
			}
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
				s.renderError(w, r, http.StatusForbidden, s.say("error.csrf"))
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
