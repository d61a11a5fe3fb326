package alerts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
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
	// Brand is the organisation's name, logo, colour and footer lines as
	// the emails show them (its LogoURL "cid:"+templates.LogoCID when the
	// logo travels in each email). Unset fields take their defaults
	// (templates.Brand.WithDefaults).
	Brand templates.Brand
	// Location is the zone of digest schedules and of dates in emails.
	// Default UTC.
	Location *time.Location
	// DailyDigest and WeeklyDigest are cron specs (minute hour dom month
	// dow) in Location; a digest period ends at each scheduled time.
	// Defaults "30 8 * * *" and "30 8 * * 6".
	DailyDigest  string
	WeeklyDigest string
	// ConfirmPerHour caps confirmation and magic-link emails per address
	// per hour (default 5). The cap per client is the web server's.
	ConfirmPerHour int
	// DigestMaxEntries is the most releases listed in one digest; the rest
	// are linked. Default 200.
	DigestMaxEntries int
	// EraseAfter: a subscriber whose last subscription ended this long ago
	// is erased. Default 28 days.
	EraseAfter time.Duration
	// PurgeBodiesAfter: bodies of sent messages are deleted this long
	// after sending. Default 7 days.
	PurgeBodiesAfter time.Duration
	// TemplatesFS holds email/ (templates.FS(dir)). Default: the embedded
	// templates.
	TemplatesFS fs.FS
	// BatchSize is how many subscriptions one fan-out transaction covers.
	// Default 1000.
	BatchSize int
	// Notify, if set, is called after a visitor's request queues an email
	// (a confirmation, a welcome, a magic link), so the sender can go at
	// once instead of at its next poll.
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
	c.Brand = c.Brand.WithDefaults(c.SiteName)
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

// Service is the subscription side of alerts: the operations behind the
// subscribe, confirm, manage and unsubscribe pages (which package web
// serves), immediate alerts, digests and privacy housekeeping. It is safe
// for concurrent use.
type Service struct {
	db      *store.DB
	cfg     Config
	keys    Keys
	log     *slog.Logger
	mail    *subMailer
	sched   map[string]cron.Schedule
	metrics subMetrics
	// health reports templates failing on real data, once each.
	health *templateHealth

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

// NewService checks cfg, parses every email template it will use and
// composes a sample of every kind of email with them (so a broken override
// fails at start, not at the first subscriber; see CheckTemplates), and
// registers its metrics with reg when reg is not nil.
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
	s := &Service{db: db, cfg: cfg, keys: keys, log: log, bgSem: make(chan struct{}, 16), sched: map[string]cron.Schedule{}}
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
	var err error
	if s.mail, err = checkMail(cfg, keys); err != nil {
		return nil, err
	}
	if s.metrics, err = newSubMetrics(reg); err != nil {
		return nil, err
	}
	if s.health, err = newTemplateHealth(log, reg); err != nil {
		return nil, err
	}
	return s, nil
}

// Wait blocks until the background work of requests already answered
// (storing subscriptions, queueing confirmation and magic-link messages)
// has finished. Call it at shutdown after the HTTP server has stopped.
func (s *Service) Wait() { s.bgWG.Wait() }

// subBackground runs fn after the caller has answered, with its own
// deadline. It waits for a free slot first, so a flood queues up instead
// of spawning goroutines without bound; the wait depends on load, never on
// the address. A request given up (ctx done) while waiting is dropped.
func (s *Service) subBackground(ctx context.Context, what string, fn func(context.Context) error) {
	select {
	case s.bgSem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	s.bgWG.Add(1)
	go func() {
		defer s.bgWG.Done()
		defer func() { <-s.bgSem }()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := fn(ctx); err != nil && !s.health.failed(err) {
			s.log.Error("alerts: "+what, slog.Any("error", err))
		}
	}()
}

// now is the service's clock: the store's, so tests move both together.
func (s *Service) now() time.Time { return s.db.Now() }

// enqueued counts n messages of kind queued for a visitor and wakes the sender.
func (s *Service) enqueued(kind string, n int) {
	if n <= 0 {
		return
	}
	s.metrics.enqueued.WithLabelValues(kind).Add(float64(n))
	if s.cfg.Notify != nil {
		s.cfg.Notify()
	}
}
