package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"herald/alerts"
	"herald/alerts/bounce/providers"
	"herald/store"
	"herald/web/admin"
)

// httpError is an error with the status and the message a client sees:
// msg names it among the messages (templates/messages), said with the
// named values of data.
type httpError struct {
	status int
	msg    string
	data   []any
	err    error
}

func (e *httpError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *httpError) Unwrap() error { return e.err }

// errStatus is an error answered with status and message msg, said with
// the named values kv.
func errStatus(status int, msg string, kv ...any) error {
	return &httpError{status: status, msg: msg, data: kv}
}

// statusOf is the one place that maps errors to HTTP status codes.
func statusOf(err error) int {
	var he *httpError
	var fe admin.FieldErrors
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.As(err, &fe):
		return http.StatusBadRequest
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, providers.ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, providers.ErrMalformed):
		return http.StatusBadRequest
	case errors.Is(err, providers.ErrUnavailable):
		return http.StatusServiceUnavailable
	case store.IsConflict(err), errors.Is(err, alerts.ErrAddressTaken):
		return http.StatusConflict
	case errors.Is(err, alerts.ErrTokenInvalid), errors.Is(err, alerts.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, alerts.ErrTokenExpired), errors.Is(err, alerts.ErrLinkGone), errors.Is(err, alerts.ErrTopicEnded):
		return http.StatusGone
	case errors.Is(err, alerts.ErrTooManyLinks):
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// publicMessage is what a client is told about err: never the text of an
// internal error.
func (s *Server) publicMessage(status int, err error) string {
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return s.say(he.msg, he.data...)
	case errors.As(err, &mbe):
		return s.say("error.message.413", "Limit", mbe.Limit)
	case status == http.StatusNotFound, status == http.StatusUnauthorized, status == http.StatusConflict, status == http.StatusBadRequest:
		return s.say("error.message." + strconv.Itoa(status))
	}
	return s.say("error.message.other")
}

// logFailure logs the errors that are Herald's fault; 4xx answers are the
// client's and appear only in the access log.
func (s *Server) logFailure(r *http.Request, status int, err error) {
	if status < 500 || errors.Is(err, context.Canceled) {
		return
	}
	s.log.ErrorContext(r.Context(), "request failed", slog.String("route", r.Pattern), slog.Int("status", status), slog.Any("error", err))
}

// fail answers a page request with the error page for err.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	s.logFailure(r, status, err)
	s.renderError(w, r, status, s.publicMessage(status, err))
}

// apiError is the body of every failed API response.
type apiError struct {
	Error  string            `json:"error"`
	Fields map[string]string `json:"fields,omitempty"`
}

// apiFail answers an API request with err as JSON.
func (s *Server) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	s.logFailure(r, status, err)
	body := apiError{Error: s.publicMessage(status, err)}
	var fe admin.FieldErrors
	if errors.As(err, &fe) {
		body.Fields = fe
	}
	writeJSON(w, status, body)
}

// queryLimit reads the limit query parameter of a listing: def when it is
// absent, else a whole number from 1 to max; anything else is a problem
// with the field "limit".
func queryLimit(r *http.Request, def, max int) (int, error) {
	raw := r.URL.Query().Get("limit")
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > max {
		return 0, admin.FieldErrors{"limit": admin.LimitProblem(max)}
	}
	return n, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// isAPI reports whether r is for a machine (the admin API, a provider's
// webhook), answered in JSON rather than with a page.
func isAPI(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/webhooks/")
}
