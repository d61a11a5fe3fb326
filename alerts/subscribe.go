package alerts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"herald/store"
	"herald/templates"
)

// Config tunes the subscription side of alerts. Zero fields take the
// defaults noted.
type Config struct {
	// BaseURL is Herald's public address, for every link in emails. It is
	// required: an absolute http(s) URL.
	BaseURL string
	// SiteName names Herald in emails and pages. Default "Herald".
	SiteName string
	// Location is the zone of digest schedules and of dates in emails.
	// Default UTC.
	Location *time.Location
	// DailyDigest and WeeklyDigest are cron specs (minute hour dom month
	// dow) in Location; a digest period ends at each scheduled time.
	// Defaults "30 8 * * *" and "30 8 * * 6".
	DailyDigest  string
	WeeklyDigest string
	// ConfirmPerHour caps confirmation and magic-link emails per address
	// per hour (default 5); ConfirmPerIPHour caps such requests per client
	// per hour (default 20).
	ConfirmPerHour   int
	ConfirmPerIPHour int
	// DigestMaxEntries is the most releases listed in one digest; the rest
	// are linked. Default 200.
	DigestMaxEntries int
	// EraseAfter: a subscriber whose last subscription ended this long ago
	// is erased. Default 28 days.
	EraseAfter time.Duration
	// PurgeBodiesAfter: bodies of sent messages are deleted this long
	// after sending. Default 7 days.
	PurgeBodiesAfter time.Duration
	// TemplatesFS holds pages/ and email/ (templates.FS(dir)). Default: the
	// embedded templates.
	TemplatesFS fs.FS
	// BatchSize is how many subscriptions one fan-out transaction covers.
	// Default 1000.
	BatchSize int
	// Notify, if set, is called after a page queues an email (a
	// confirmation, a welcome, a magic link), so the sender can go at once
	// instead of at its next poll.
	Notify func()
}

func (c *Config) defaults() error {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("alerts: base URL %q must be an absolute http(s) URL", c.BaseURL)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.SiteName == "" {
		c.SiteName = "Herald"
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.DailyDigest == "" {
		c.DailyDigest = "30 8 * * *"
	}
	if c.WeeklyDigest == "" {
		c.WeeklyDigest = "30 8 * * 6"
	}
	if c.ConfirmPerHour <= 0 {
		c.ConfirmPerHour = 5
	}
	if c.ConfirmPerIPHour <= 0 {
		c.ConfirmPerIPHour = 20
	}
	if c.DigestMaxEntries <= 0 {
		c.DigestMaxEntries = 200
	}
	if c.EraseAfter <= 0 {
		c.EraseAfter = 28 * 24 * time.Hour
	}
	if c.PurgeBodiesAfter <= 0 {
		c.PurgeBodiesAfter = 7 * 24 * time.Hour
	}
	if c.TemplatesFS == nil {
		c.TemplatesFS = templates.Embedded()
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	return nil
}

// Service is the subscription side of alerts: the subscribe, confirm,
// manage and unsubscribe pages, immediate alerts, digests and privacy
// housekeeping. It is safe for concurrent use.
type Service struct {
	db      *store.DB
	cfg     Config
	keys    Keys
	log     *slog.Logger
	pages   map[string]*template.Template
	mail    *subMailer
	ipLimit *subLimiter
	csrf    CSRF
	sched   map[string]cron.Schedule
	metrics subMetrics

	// Requests that may send mail do their store work in the background,
	// so the response takes the same time whether the address is known.
	bgSem chan struct{}
	bgWG  sync.WaitGroup

	fanMu    sync.Mutex
	digestMu sync.Mutex
}

type subMetrics struct {
	digestRuns     *prometheus.CounterVec
	digestDuration *prometheus.HistogramVec
	enqueued       *prometheus.CounterVec
}

func newSubMetrics(reg prometheus.Registerer) (subMetrics, error) {
	m := subMetrics{
		digestRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_digest_runs_total",
			Help: "Digest periods run to the end, by frequency.",
		}, []string{"frequency"}),
		digestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herald_digest_run_duration_seconds",
			Help:    "Time to compose and queue one digest period, by frequency.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}, []string{"frequency"}),
		enqueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_alerts_enqueued_total",
			Help: "Messages added to the outbox by the subscription side, by kind.",
		}, []string{"kind"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.digestRuns, m.digestDuration, m.enqueued} {
			if err := reg.Register(c); err != nil {
				return m, fmt.Errorf("alerts: register metrics: %w", err)
			}
		}
	}
	// Every kind shows from the start, so dashboards see zeros.
	for _, kind := range []string{store.KindConfirm, store.KindWelcome, store.KindManage, store.KindAddressChange, store.KindImmediate, store.KindDigest} {
		m.enqueued.WithLabelValues(kind)
	}
	for _, f := range []string{"daily", "weekly"} {
		m.digestRuns.WithLabelValues(f)
	}
	return m, nil
}

// pageNames are the templates in pages/ the service renders.
var pageNames = []string{"subscribe", "subscribe_sent", "confirm", "manage", "manage_request", "manage_sent",
	"unsubscribe", "unsubscribed", "error_alerts"}

// NewService checks cfg, parses every template it will use (so a broken
// override fails at start, not at the first subscriber), and registers its
// metrics with reg when reg is not nil.
func NewService(db *store.DB, cfg Config, keys Keys, log *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if len(keys.keys) == 0 {
		return nil, errors.New("alerts: no token keys")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{db: db, cfg: cfg, keys: keys, log: log, pages: map[string]*template.Template{},
		ipLimit: newSubLimiter(cfg.ConfirmPerIPHour), csrf: NewCSRF(cfg.BaseURL), bgSem: make(chan struct{}, 16), sched: map[string]cron.Schedule{}}
	for freq, spec := range map[string]string{store.FrequencyDaily: cfg.DailyDigest, store.FrequencyWeekly: cfg.WeeklyDigest} {
		if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
			return nil, fmt.Errorf("alerts: %s digest schedule %q: the time zone comes from the config, not the spec", freq, spec)
		}
		sched, err := cron.ParseStandard(spec)
		if err != nil {
			return nil, fmt.Errorf("alerts: %s digest schedule %q: %w", freq, spec, err)
		}
		s.sched[freq] = sched
	}
	funcs := template.FuncMap{
		"frequencyPhrase": frequencyPhrase,
		"site":            func() string { return cfg.SiteName },
	}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(cfg.TemplatesFS, "pages/layout.html", "pages/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("alerts: page template %s: %w", name, err)
		}
		s.pages[name] = t
	}
	var err error
	if s.mail, err = newSubMailer(cfg.TemplatesFS); err != nil {
		return nil, err
	}
	if s.metrics, err = newSubMetrics(reg); err != nil {
		return nil, err
	}
	return s, nil
}

// Wait blocks until the background work of requests already answered
// (storing subscriptions, queueing confirmation and magic-link messages)
// has finished. Call it at shutdown after the HTTP server has stopped.
func (s *Service) Wait() { s.bgWG.Wait() }

// subBackground runs fn after the response, with its own deadline. It
// waits for a free slot first, so a flood queues up instead of spawning
// goroutines without bound; the wait depends on load, never on the address.
func (s *Service) subBackground(r *http.Request, what string, fn func(context.Context) error) {
	select {
	case s.bgSem <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	s.bgWG.Add(1)
	go func() {
		defer s.bgWG.Done()
		defer func() { <-s.bgSem }()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
		defer cancel()
		if err := fn(ctx); err != nil {
			s.log.Error("alerts: "+what, slog.Any("error", err))
		}
	}()
}

// now is the service's clock: the store's, so tests move both together.
func (s *Service) now() time.Time { return s.db.Now() }

// render writes a page. Every page here either carries a CSRF token or
// acts on a subscriber, so none may be cached or framed, and none sends
// its URL (which may hold a token) as a Referer.
func (s *Service) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		s.log.Error("alerts: render page", slog.String("page", name), slog.Any("error", err))
		http.Error(w, "Something went wrong on our side. Please try again later.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "private, no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// enqueued counts n messages of kind queued by a page and wakes the sender.
func (s *Service) enqueued(kind string, n int) {
	if n <= 0 {
		return
	}
	s.metrics.enqueued.WithLabelValues(kind).Add(float64(n))
	if s.cfg.Notify != nil {
		s.cfg.Notify()
	}
}

// errorPage is the data of error_alerts.html.
type errorPage struct {
	Status    int
	Heading   string
	Message   string
	LinkURL   string
	LinkLabel string
}

// fail renders the error page; only server faults are logged.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, status int, p errorPage, err error) {
	if status >= 500 {
		s.log.Error("alerts: request failed", slog.String("method", r.Method), slog.String("route", r.Pattern), slog.Any("error", err))
		if p.Heading == "" {
			p.Heading = "Sorry, something went wrong"
			p.Message = "Herald could not do that just now. Please try again in a few minutes."
		}
	}
	p.Status = status
	s.render(w, status, "error_alerts", p)
}
