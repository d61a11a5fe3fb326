package pull

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"herald/feeds/netguard"
	"herald/feeds/rules"
	"herald/store"
	"herald/templates/text"
)

// Config tunes pulling. Zero fields take the defaults in brackets.
type Config struct {
	// Concurrency is how many sources are fetched at once [4].
	Concurrency int
	// Timeout bounds one source's fetch, body included [30s].
	Timeout time.Duration
	// MaxBody is the largest feed body read, in bytes [10 MiB]; a larger
	// one fails the pull rather than being cut short.
	MaxBody int64
	// MaxBackoff caps the wait before retrying a failing source [6h].
	MaxBackoff time.Duration
	// AlertMaxAge: new releases published longer ago than this are stored
	// without alerting subscribers [48h].
	AlertMaxAge time.Duration
	// Guard says where pulls may connect: by default only to public
	// addresses, so a pull that leads to a loopback, private or other
	// non-public address (netguard) fails with "refused: …".
	Guard netguard.Guard
	// Version is the build's version, named in the default User-Agent [dev].
	Version string
	// UserAgent is sent with every request ["Herald/<Version> (+https://github.com/herald)"].
	UserAgent string
}

// pullBaseBackoff is the wait after a source's first failure; it doubles
// with each further consecutive failure up to Config.MaxBackoff.
const pullBaseBackoff = 5 * time.Minute

func (c Config) withDefaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 10 << 20
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 6 * time.Hour
	}
	if c.AlertMaxAge <= 0 {
		c.AlertMaxAge = 48 * time.Hour
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.UserAgent == "" {
		c.UserAgent = "Herald/" + c.Version + " (+https://github.com/herald)"
	}
	return c
}

// Store is what pulling needs from the store (*store.DB has it).
type Store interface {
	Sources(ctx context.Context) ([]store.Source, error)
	ApplyPull(ctx context.Context, sourceID int64, entries []store.Entry, opt store.PullOptions) (store.PullResult, error)
	RecordPullFailure(ctx context.Context, sourceID int64, f store.PullFailure) error
	RecordNotModified(ctx context.Context, sourceID int64, startedAt time.Time, d time.Duration) error
}

// Statuses of a SourceReport.
const (
	StatusNew         = "new"          // at least one release stored for the first time
	StatusUpdated     = "updated"      // no new release, at least one edited
	StatusUnchanged   = "unchanged"    // the feed was read and nothing changed
	StatusNotModified = "not-modified" // the publisher answered 304
	StatusFailed      = "failed"       // see Err
	StatusSkipped     = "skipped"      // backing off after failures until NextPull
)

// Request says which sources one Pull reads.
type Request struct {
	// Sources are source names; empty means every enabled source. A named
	// source is pulled even if it is disabled or backing off.
	Sources []string
	// Force pulls sources that are backing off after failures.
	Force bool
}

// SourceReport is what pulling one source did.
type SourceReport struct {
	Source    string
	Status    string // one of the PullStatus constants
	New       int
	Updated   int
	Unchanged int
	// Alerts counts releases queued for immediate alerts.
	Alerts int
	// NewIDs are the releases stored for the first time.
	NewIDs []int64
	// Feeds are the feed keys whose content changed and need re-rendering.
	Feeds    []string
	Err      string
	Duration time.Duration
	// NextPull is when a failing or skipped source will be tried again.
	NextPull time.Time
}

// AnyFailed reports whether one of the reports is a failure.
func AnyFailed(reports []SourceReport) bool {
	for _, r := range reports {
		if r.Status == StatusFailed {
			return true
		}
	}
	return false
}

// Puller pulls sources into the store. It is safe for concurrent use, but
// two Pulls of the same source at once would fetch it twice; the scheduler
// runs one Pull at a time.
type Puller struct {
	// HTTPClient fetches feeds. NewPuller builds one with the configured
	// timeout and redirect rules; replace it only with one that keeps them.
	HTTPClient *http.Client
	// Now is the clock for stored times and backoff; tests replace it.
	Now func() time.Time

	db      Store
	cfg     Config
	norm    *Normalizer
	rules   rules.Topics                // tags what is stored
	alert   func(store.NewRelease) bool // which new releases alert
	metrics *pullMetrics
}

// NewPuller returns a Puller writing to db. Metrics are registered with reg
// when it is not nil.
func NewPuller(db Store, cfg Config, reg prometheus.Registerer) *Puller {
	cfg = cfg.withDefaults()
	return &Puller{
		HTTPClient: newFetchClient(cfg.Timeout, cfg.Guard),
		Now:        time.Now,
		db:         db,
		cfg:        cfg,
		norm:       NewNormalizer(),
		alert:      rules.AlertNew(cfg.AlertMaxAge),
		metrics:    newPullMetrics(reg),
	}
}

func (p *Puller) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

// Pull fetches the requested sources in parallel, at most
// Config.Concurrency at a time, and stores what they publish. A source
// that fails is reported, recorded with its error and backed off; it never
// stops the others. The error is for the request itself: an unknown source
// name or a store that cannot list sources.
func (p *Puller) Pull(ctx context.Context, req Request) ([]SourceReport, error) {
	all, err := p.db.Sources(ctx)
	if err != nil {
		return nil, fmt.Errorf("feeds: pull: %w", err)
	}
	explicit := len(req.Sources) > 0
	var targets []store.Source
	if explicit {
		byName := make(map[string]store.Source, len(all))
		for _, s := range all {
			byName[s.Name] = s
		}
		var unknown []string
		seen := map[string]bool{}
		for _, name := range req.Sources {
			s, ok := byName[name]
			switch {
			case !ok:
				unknown = append(unknown, fmt.Sprintf("%q", name))
			case !seen[name]:
				seen[name] = true
				targets = append(targets, s)
			}
		}
		if len(unknown) > 0 {
			return nil, fmt.Errorf("feeds: pull: unknown source %s", strings.Join(unknown, ", "))
		}
	} else {
		for _, s := range all {
			if s.Enabled {
				targets = append(targets, s)
			}
		}
	}

	now := p.now()
	reports := make([]SourceReport, len(targets))
	sem := make(chan struct{}, p.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, src := range targets {
		if !explicit && !req.Force && src.NextPullAt.After(now) {
			reports[i] = SourceReport{Source: src.Name, Status: StatusSkipped, NextPull: src.NextPullAt}
			p.metrics.pulled(reports[i])
			continue
		}
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
				reports[i] = p.pullIsolated(ctx, src)
				<-sem
			case <-ctx.Done():
				reports[i] = SourceReport{Source: src.Name, Status: StatusFailed, Err: "cancelled before it started"}
			}
			p.metrics.pulled(reports[i])
		})
	}
	wg.Wait()
	return reports, nil
}

// pullIsolated pulls one source, turning a panic in a parser fed hostile
// input into that source's failure instead of the end of the process, as
// net/http does for one request.
func (p *Puller) pullIsolated(ctx context.Context, src store.Source) (rep SourceReport) {
	started, t0 := p.now(), time.Now()
	defer func() {
		if v := recover(); v != nil {
			rep = p.pullFailed(ctx, src, SourceReport{Source: src.Name}, started, t0, fmt.Errorf("internal error while reading the feed: %v", v))
		}
	}()
	return p.pullSource(ctx, src)
}

// pullSource fetches, parses, cleans and stores one source.
func (p *Puller) pullSource(ctx context.Context, src store.Source) SourceReport {
	started := p.now()
	t0 := time.Now()
	rep := SourceReport{Source: src.Name}

	// The timeout covers the network (parsing is bounded by MaxBody), not
	// waiting for the store's single writer, so a neighbour's long
	// transaction cannot time out a healthy fetch.
	fctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	res, err := p.fetch(fctx, src)
	if err != nil {
		return p.pullFailed(ctx, src, rep, started, t0, err)
	}
	if res.notModified {
		rep.Duration = time.Since(t0)
		if err := p.db.RecordNotModified(ctx, src.ID, started, rep.Duration); err != nil {
			rep.Status, rep.Err = StatusFailed, err.Error()
			return rep
		}
		rep.Status = StatusNotModified
		return rep
	}
	feed, err := ParseFeed(res.body, res.contentType, src.Format, res.finalURL)
	res.body = nil
	if err != nil {
		return p.pullFailed(ctx, src, rep, started, t0, err)
	}
	entries := p.normalizeAll(feed.Items, p.now())
	cancel()

	pr, err := p.db.ApplyPull(ctx, src.ID, entries, store.PullOptions{
		ETag:         res.etag,
		LastModified: res.lastModified,
		StartedAt:    started,
		Duration:     time.Since(t0),
		Topics:       &p.rules,
		Alert:        p.alert,
		Realert:      rules.Realert,
	})
	if err != nil {
		return p.pullFailed(ctx, src, rep, started, t0, err)
	}
	rep.Duration = time.Since(t0)
	rep.New, rep.Updated, rep.Unchanged, rep.Alerts = pr.New, pr.Updated, pr.Unchanged, pr.Alerts
	rep.NewIDs, rep.Feeds = pr.NewIDs, pr.Feeds
	switch {
	case pr.New > 0:
		rep.Status = StatusNew
	case pr.Updated > 0:
		rep.Status = StatusUpdated
	default:
		rep.Status = StatusUnchanged
	}
	p.metrics.stored(pr.New, pr.Updated)
	return rep
}

// normalizeAll cleans a feed's items; of several items with one id, the
// first in the feed wins, as publishers list the current version first.
func (p *Puller) normalizeAll(items []RawItem, now time.Time) []store.Entry {
	out := make([]store.Entry, 0, len(items))
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		e, ok := p.norm.Normalize(it, now)
		if !ok || seen[e.GUID] {
			continue
		}
		seen[e.GUID] = true
		out = append(out, e)
	}
	return out
}

// pullFailed records a failed pull and when to try the source again:
// pullBaseBackoff doubled for each consecutive failure before this one,
// capped at MaxBackoff, with up to a tenth more at random so sources that
// failed together do not retry in lockstep. A publisher's Retry-After
// is honoured up to the same cap.
func (p *Puller) pullFailed(ctx context.Context, src store.Source, rep SourceReport, started, t0 time.Time, err error) SourceReport {
	rep.Status = StatusFailed
	rep.Err = text.Truncate(text.Line(err.Error()), 1000)
	rep.Duration = time.Since(t0)
	if ctx.Err() != nil {
		// The whole pull was cancelled (shutdown): not the source's fault.
		return rep
	}
	delay := pullBackoff(src.FailureCount, p.cfg.MaxBackoff)
	var fe *fetchError
	if errors.As(err, &fe) && fe.retryAfter > delay {
		delay = min(fe.retryAfter, p.cfg.MaxBackoff)
	}
	// At the store's precision, so the report and the stored row agree.
	rep.NextPull = p.now().Add(delay).Truncate(time.Microsecond)
	if rerr := p.db.RecordPullFailure(ctx, src.ID, store.PullFailure{
		Status:    StatusFailed,
		Error:     rep.Err,
		StartedAt: started,
		Duration:  rep.Duration,
		NextPull:  rep.NextPull,
	}); rerr != nil {
		rep.Err += "; recording the failure also failed: " + rerr.Error()
	}
	return rep
}

// pullBackoff is the wait after failures consecutive failures before this
// one, plus jitter.
func pullBackoff(failures int, limit time.Duration) time.Duration {
	d := pullBaseBackoff
	for i := 0; i < failures && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return (d + rand.N(d/10+1)).Truncate(time.Second)
}
