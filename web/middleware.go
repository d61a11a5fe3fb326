package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type ctxKey int

const requestIDKey ctxKey = iota

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// NewLogHandler wraps h so that every record logged with a request's
// context (slog's ...Context methods) carries the request's request_id,
// whichever package logs it.
func NewLogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(logHandler); ok {
		return h
	}
	return logHandler{h}
}

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler { return logHandler{h.Handler.WithGroup(name)} }

// usableRequestID reports whether an incoming X-Request-Id is kept (a
// proxy's id joins the logs up): 1 to 64 of A-Z, a-z, 0-9, '.', '_' and
// '-'. Anything else is replaced. A loop rather than a regular
// expression: behind a proxy every request brings one.
func usableRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// requestIDs names requests: a random prefix per server and a counter,
// unique across restarts and replicas for all practical purposes, and
// cheap on the feed path.
type requestIDs struct {
	prefix [8]byte
	seq    atomic.Uint64
}

func newRequestIDs() *requestIDs {
	ids := &requestIDs{}
	var b [4]byte
	rand.Read(b[:])
	hex.Encode(ids.prefix[:], b[:])
	return ids
}

// next returns incoming when it is a usable id, else a new one.
func (ids *requestIDs) next(incoming string) string {
	if usableRequestID(incoming) {
		return incoming
	}
	n := ids.seq.Add(1)
	var b [16]byte
	copy(b[:], ids.prefix[:])
	for i := 15; i >= 8; i-- {
		b[i] = hexDigits[n&0xf]
		n >>= 4
	}
	return string(b[:])
}

const hexDigits = "0123456789abcdef"

// recorder remembers the status and size of a response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rw *recorder) WriteHeader(code int) {
	if rw.status == 0 {
		rw.status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(p []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	n, err := rw.ResponseWriter.Write(p)
	rw.bytes += int64(n)
	return n, err
}

// Flush lets streaming handlers (and promhttp) flush through the recorder.
func (rw *recorder) Flush() {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	http.NewResponseController(rw.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// observe gives each request an id, recovers from panics, logs one access
// line and records the request's duration by route.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// The server canonicalised the request's header names, and this
		// one is written canonical: plain map operations will do.
		var incoming string
		if v := r.Header["X-Request-Id"]; len(v) > 0 {
			incoming = v[0]
		}
		id := s.requestIDs.next(incoming)
		w.Header()["X-Request-Id"] = []string{id}
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		r = r.WithContext(ctx)
		rec := &recorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(ctx, "panic serving request", slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
				if rec.status == 0 {
					s.renderError(rec, r, http.StatusInternalServerError, "")
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			// The ServeMux stored the matched pattern on r.
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			d := time.Since(start)
			s.metrics.observer(route, r.Method, status).Observe(d.Seconds())
			// Feed readers poll all day; a served feed (200 or 304) is
			// counted in the metrics and logged only at debug level, so the
			// log keeps what people and errors do.
			level := slog.LevelInfo
			if status < 400 && strings.HasPrefix(route, "GET /feeds/") {
				level = slog.LevelDebug
			}
			if s.log.Enabled(ctx, level) {
				s.log.LogAttrs(ctx, level, "http request",
					slog.String("method", r.Method), slog.String("path", logPath(r)), slog.String("route", route),
					slog.Int("status", status), slog.Int64("bytes", rec.bytes), slog.Duration("duration", d))
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// logPath is the request path as logged: never the query (it may hold an
// address or a token), and a path segment that is a token is replaced by
// the route's wildcard.
func logPath(r *http.Request) string {
	if strings.Contains(r.Pattern, "{token") {
		_, path, _ := strings.Cut(r.Pattern, " ")
		return path
	}
	// A request that matched no token route (a wrong method, an extra
	// segment) may still carry a token: keep only the prefix.
	for _, prefix := range tokenPathPrefixes {
		if strings.HasPrefix(r.URL.Path, prefix) && len(r.URL.Path) > len(prefix) {
			return prefix + "…"
		}
	}
	return r.URL.Path
}

// tokenPathPrefixes are the paths whose next segment is a secret token.
var tokenPathPrefixes = []string{"/unsubscribe/", "/manage/", "/subscribe/confirm/"}

// metricMethod keeps the method label's values to a known few.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// contentSecurityPolicy allows no inline script or style and no framing.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' https: data:; style-src 'self'; script-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// secure sets the security headers every response carries. They are set
// again as the response starts, so a mounted handler cannot loosen the
// site's policy by setting its own; it can only make the referrer policy
// stricter (pages whose URL holds a token send none).
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.setSecurityHeaders(w.Header())
		next.ServeHTTP(&secureWriter{ResponseWriter: w, s: s}, r)
	})
}

// securityHeader is one header every response carries: its canonical
// name and its value, shared by every response; the [:1:1] capacity makes
// an append by anyone copy rather than write into it.
type securityHeader struct {
	key string
	val []string
}

// securityHeaders builds the headers of every response.
func securityHeaders(https bool, hstsMaxAge time.Duration) []securityHeader {
	h := []securityHeader{
		{"Content-Security-Policy", []string{contentSecurityPolicy}[:1:1]},
		{"X-Content-Type-Options", []string{"nosniff"}[:1:1]},
		{"Referrer-Policy", []string{"strict-origin-when-cross-origin"}[:1:1]},
		{"X-Frame-Options", []string{"DENY"}[:1:1]},
	}
	if https && hstsMaxAge > 0 {
		h = append(h, securityHeader{"Strict-Transport-Security", []string{"max-age=" + strconv.FormatInt(int64(hstsMaxAge/time.Second), 10)}[:1:1]})
	}
	return h
}

// strictReferrer lists the referrer policies stricter than the site's,
// which a handler may set for its own response.
var strictReferrer = map[string]bool{"no-referrer": true, "same-origin": true, "strict-origin": true}

func (s *Server) setSecurityHeaders(h http.Header) {
	// An email's HTML in the console's preview frame keeps the policy
	// made for it, framed by the console alone.
	csp := h["Content-Security-Policy"]
	frame := len(csp) == 1 && csp[0] == previewFramePolicy
	for _, sh := range s.security {
		switch {
		case frame && sh.key == "Content-Security-Policy":
			continue
		case frame && sh.key == "X-Frame-Options":
			h[sh.key] = []string{"SAMEORIGIN"}
			continue
		}
		if v := h[sh.key]; len(v) == 1 {
			if &v[0] == &sh.val[0] {
				continue // still the site's own value, as on most responses
			}
			if sh.key == "Referrer-Policy" && strictReferrer[v[0]] {
				continue
			}
		}
		h[sh.key] = sh.val
	}
}

type secureWriter struct {
	http.ResponseWriter
	s       *Server
	started bool
}

func (sw *secureWriter) WriteHeader(code int) {
	if !sw.started {
		sw.started = true
		sw.s.setSecurityHeaders(sw.Header())
	}
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *secureWriter) Write(p []byte) (int, error) {
	if !sw.started {
		sw.WriteHeader(http.StatusOK)
	}
	return sw.ResponseWriter.Write(p)
}

func (sw *secureWriter) Flush() {
	if !sw.started {
		sw.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(sw.ResponseWriter).Flush()
}

func (sw *secureWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

// limitBody caps every request body at cfg.MaxBody; reading past it fails
// with *http.MaxBytesError, which the error mapping answers with 413.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.MaxBody {
			s.tooLarge(w, r)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) tooLarge(w http.ResponseWriter, r *http.Request) {
	err := &http.MaxBytesError{Limit: s.cfg.MaxBody}
	if isAPI(r) {
		s.apiFail(w, r, err)
		return
	}
	s.fail(w, r, err)
}

// httpMetrics are the server's own Prometheus collectors.
type httpMetrics struct {
	duration *prometheus.HistogramVec
	// observers holds the duration histogram's child for each route,
	// method and status seen so far: resolved once, so that a request
	// costs a map lookup rather than the labels' hashing and formatting.
	// The keys are few (routes, methods and statuses are bounded sets).
	mu        sync.RWMutex
	observers map[observerKey]prometheus.Observer
	// webhooks counts provider webhook requests by provider and result.
	webhooks *prometheus.CounterVec
}

type observerKey struct {
	route, method string
	status        int
}

// observer returns the duration histogram of route, method and status.
func (m *httpMetrics) observer(route, method string, status int) prometheus.Observer {
	k := observerKey{route, metricMethod(method), status}
	m.mu.RLock()
	o, ok := m.observers[k]
	m.mu.RUnlock()
	if ok {
		return o
	}
	o = m.duration.WithLabelValues(k.route, k.method, strconv.Itoa(status))
	m.mu.Lock()
	m.observers[k] = o
	m.mu.Unlock()
	return o
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	d, err := registerOnce(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "herald_http_request_duration_seconds",
		Help:    "Time to answer HTTP requests, by route pattern, method and status code.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "method", "code"}))
	if err != nil {
		return nil, err
	}
	wh, err := registerOnce(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_webhook_requests_total",
		Help: "Bounce and complaint webhook requests, by provider and result (ok, unauthenticated, malformed, too_large, unavailable, error, not_configured).",
	}, []string{"provider", "result"}))
	if err != nil {
		return nil, err
	}
	return &httpMetrics{duration: d, observers: map[observerKey]prometheus.Observer{}, webhooks: wh}, nil
}

// registerOnce registers c, or returns the identical collector already
// registered, so that two servers on one registry share their metrics.
func registerOnce[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// MetricsHandler serves the Prometheus metrics without authentication,
// for a listener of their own that only the scraper reaches
// (metrics.listen); on the site, /metrics asks for an admin token. It is
// nil when Deps.Metrics is.
func (s *Server) MetricsHandler() http.Handler {
	if s.deps.Metrics == nil {
		return nil
	}
	return promhttp.HandlerFor(s.deps.Metrics, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError)})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("ok\n"))
}

// readyz answers 200 when the database answers and the scheduler runs, so a
// load balancer sends traffic only to an instance that can serve it.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var problems []string
	if err := s.db.Ping(ctx); err != nil {
		problems = append(problems, "database: "+err.Error())
	}
	if s.deps.Ready != nil {
		if err := s.deps.Ready(); err != nil {
			problems = append(problems, "scheduler: "+err.Error())
		}
	}
	if len(problems) > 0 {
		s.log.WarnContext(r.Context(), "not ready", slog.String("problems", strings.Join(problems, "; ")))
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(strings.Join(problems, "\n") + "\n"))
		return
	}
	w.Write([]byte("ready\n"))
}
