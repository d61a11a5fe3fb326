package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"herald/alerts"
	"herald/alerts/bounce"
	"herald/alerts/delivery"
	"herald/feeds/netguard"
	"herald/feeds/publish"
	"herald/feeds/pull"
	"herald/templates"
	"herald/web"
	"herald/web/admin"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgFlag := newFlags("serve", stderr)
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	a, err := openConfigured(ctx, *cfgFlag, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.serve(ctx)
}

// parts are the running pieces of Herald, built from the config.
type parts struct {
	puller    *pull.Puller
	publisher *publish.Publisher
	alerts    *alerts.Service
	deliverer *delivery.Deliverer
	// bounces applies bounce and complaint reports, whatever brings them.
	bounces *bounce.Processor
	// digestMu keeps the digest runs of the cron ticks and of the pull
	// cycle from overlapping; the outbox keys would make an overlap
	// harmless, but not quiet.
	digestMu sync.Mutex
	// following, when set, reports that this serve instance follows
	// another that leads: it then leaves rendering to the leader.
	following func() bool
}

func (a *app) publishConfig() publish.Config {
	return publish.Config{
		BaseURL: a.cfg.BaseURL, Entries: a.cfg.Feeds.Entries, MaxAge: a.cfg.Feeds.MaxAge,
		Language: a.cfg.Feeds.Language, Title: a.cfg.Feeds.Title, ArchiveSize: a.cfg.Feeds.ArchiveSize,
		EntryLink: a.cfg.Feeds.EntryLink, Icon: a.cfg.Feeds.Icon, TemplatesFS: templates.FS(a.cfg.TemplatesDir),
		WebSub: publish.WebSubConfig{
			LeaseDefault: a.cfg.WebSub.LeaseDefault, LeaseMax: a.cfg.WebSub.LeaseMax,
			Callbacks:    netguard.Guard{AllowPrivate: a.cfg.WebSub.AllowPrivateCallbacks},
			ExternalHubs: a.cfg.WebSub.ExternalHubs,
		},
	}
}

func (a *app) newPublisher() (*publish.Publisher, error) {
	return publish.NewPublisher(a.db, a.publishConfig(), a.reg, a.log)
}

// mailConfig maps the mail section; without one, messages are written to
// ./outbox as .eml files.
func (a *app) mailConfig() (delivery.Config, error) {
	m := defaultMail()
	if a.cfg.Mail != nil {
		m = *a.cfg.Mail
	}
	mc := delivery.Config{
		From: m.From, ReplyTo: m.ReplyTo, ListID: m.ListID, Transport: m.Transport, Dir: m.Dir,
		SMTP: delivery.SMTPConfig{Host: m.SMTP.Host, Port: m.SMTP.Port, Username: m.SMTP.Username,
			Password: m.SMTP.Password.Value(), TLS: m.SMTP.TLS, Timeout: m.SMTP.Timeout},
		Concurrency: m.Concurrency, Rate: m.Rate, RetryMaxAge: m.RetryMaxAge, SuppressAfter: m.SuppressAfter,
	}
	if m.DKIM.Domain != "" {
		key := []byte(m.DKIM.PrivateKey.Value())
		if m.DKIM.KeyFile != "" {
			b, err := os.ReadFile(m.DKIM.KeyFile)
			if err != nil {
				return delivery.Config{}, fmt.Errorf("mail.dkim.key_file: %w", err)
			}
			key = b
		}
		mc.DKIM = delivery.DKIMConfig{Domain: m.DKIM.Domain, Selector: m.DKIM.Selector, PrivateKeyPEM: key}
	}
	return mc, nil
}

// tokenKeys loads the token keys once: links, and the return paths that
// name messages, are signed with them.
func (a *app) tokenKeys(ctx context.Context) (alerts.Keys, error) {
	if a.keys != nil {
		return *a.keys, nil
	}
	var configured []string
	for _, k := range a.cfg.Secrets.TokenKeys {
		configured = append(configured, k.Value())
	}
	keys, generated, err := alerts.LoadKeys(ctx, a.db, configured, os.Getenv("HERALD_TOKEN_KEY"))
	if err != nil {
		return alerts.Keys{}, err
	}
	if generated {
		a.log.Warn("no token key configured: using a key generated and kept in the database; set secrets.token_keys or HERALD_TOKEN_KEY so links survive a new database")
	}
	a.keys = &keys
	return keys, nil
}

// bounceDomain is the domain of the bounce addresses: bounces.domain, or
// the domain of mail.from.
func (a *app) bounceDomain() string {
	if a.cfg.Bounces.Domain != "" {
		return strings.ToLower(a.cfg.Bounces.Domain)
	}
	from := defaultMail().From
	if a.cfg.Mail != nil {
		from = a.cfg.Mail.From
	}
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return ""
	}
	return strings.ToLower(addr.Address[strings.LastIndexByte(addr.Address, '@')+1:])
}

// newBounces builds bounce processing.
func (a *app) newBounces(ctx context.Context) (*bounce.Processor, error) {
	keys, err := a.tokenKeys(ctx)
	if err != nil {
		return nil, err
	}
	b := a.cfg.Bounces
	return bounce.NewProcessor(a.db, bounce.Config{
		VerifyToken: keys.VerifyReturnPath, Domain: a.bounceDomain(),
		TransientLimit: b.TransientLimit, TransientWindow: b.TransientWindow, MaxMessageBytes: b.MaxMessageBytes,
	}, a.log, a.reg)
}

// newAlerts builds the alerts service; notify (may be nil) is called when a
// page queues an email.
func (a *app) newAlerts(ctx context.Context, notify func()) (*alerts.Service, error) {
	keys, err := a.tokenKeys(ctx)
	if err != nil {
		return nil, err
	}
	brand, logo, err := a.cfg.branding()
	if err != nil {
		return nil, err
	}
	cfg := a.cfg.alertsConfig(mailBrand(brand, logo))
	cfg.Notify = notify
	return alerts.NewService(a.db, cfg, keys, a.log, a.reg)
}

// alertsConfig maps the config to the alerts side's, with brand as the
// emails show it.
func (c *Config) alertsConfig(brand templates.Brand) alerts.Config {
	return alerts.Config{
		BaseURL: c.BaseURL, SiteName: c.Feeds.Title, Brand: brand, Location: c.Location(),
		DailyDigest: c.Schedule.DailyDigest, WeeklyDigest: c.Schedule.WeeklyDigest,
		ConfirmPerHour:   c.Alerts.ConfirmPerHour,
		DigestMaxEntries: c.Alerts.DigestMaxEntries, EraseAfter: c.Alerts.EraseAfter,
		PurgeBodiesAfter: c.Alerts.PurgeBodiesAfter, TemplatesFS: templates.FS(c.TemplatesDir),
	}
}

// webConfig maps the config to the web server's, admin tokens aside.
func (c *Config) webConfig(brand templates.Brand, logo *templates.Logo) web.Config {
	return web.Config{
		BaseURL: c.BaseURL, SiteName: c.Feeds.Title, Brand: brand, Logo: logo,
		TemplatesFS: templates.FS(c.TemplatesDir), Location: c.Location(), Language: c.Feeds.Language,
		HSTSMaxAge: c.HSTSMaxAge, ConfirmPerIPHour: c.Alerts.ConfirmPerIPHour, Icon: c.Feeds.Icon,
	}
}

func (a *app) newDeliverer(ctx context.Context) (*delivery.Deliverer, error) {
	mc, err := a.mailConfig()
	if err != nil {
		return nil, err
	}
	mc.Now = a.db.Now
	keys, err := a.tokenKeys(ctx)
	if err != nil {
		return nil, err
	}
	domain := a.bounceDomain()
	mc.ReturnPath = func(id int64) string { return bounce.Address(keys.SignReturnPath(id), domain) }
	_, logo, err := a.cfg.branding()
	if err != nil {
		return nil, err
	}
	mc.Inline = inlineLogo(logo)
	return delivery.New(a.db, mc, a.log, a.reg)
}

func (a *app) buildParts(ctx context.Context) (*parts, error) {
	p := &parts{puller: pull.NewPuller(a.db, a.pullConfig(), a.reg)}
	var err error
	if p.publisher, err = a.newPublisher(); err != nil {
		return nil, err
	}
	if p.deliverer, err = a.newDeliverer(ctx); err != nil {
		return nil, err
	}
	if p.bounces, err = a.newBounces(ctx); err != nil {
		return nil, err
	}
	if p.alerts, err = a.newAlerts(ctx, p.deliverer.Kick); err != nil {
		return nil, err
	}
	return p, nil
}

// cycle is one scheduled pull and everything that follows from it; see
// pullOnce. It also runs digests: a period that ended in a daylight-saving
// gap has no cron tick of its own, and checking after each pull sends it
// once, promptly (one query when nothing is due).
func (a *app) cycle(ctx context.Context, p *parts, req pull.Request) []pull.SourceReport {
	reports := a.pullOnce(ctx, p, req)
	a.runDigests(ctx, p, "daily", a.db.Now())
	a.runDigests(ctx, p, "weekly", a.db.Now())
	return reports
}

// pullOnce pulls, then re-renders the changed feeds (which notifies WebSub
// subscribers), queues immediate alerts and wakes the mail workers. Each
// step reads its work from the store, so a step that fails is picked up
// by the next one.
func (a *app) pullOnce(ctx context.Context, p *parts, req pull.Request) []pull.SourceReport {
	reports, err := p.puller.Pull(ctx, req)
	if err != nil {
		a.log.Error("pull", slog.Any("error", err))
	}
	for _, r := range reports {
		switch r.Status {
		case pull.StatusFailed:
			a.log.Warn("pull failed", slog.String("source", r.Source), slog.String("error", r.Err), slog.Time("next_pull", r.NextPull))
		case pull.StatusNew, pull.StatusUpdated:
			a.log.Info("pulled", slog.String("source", r.Source), slog.String("status", r.Status),
				slog.Int("new", r.New), slog.Int("updated", r.Updated), slog.Int("alerts", r.Alerts))
		}
	}
	a.afterChange(ctx, p)
	return reports
}

// afterChange renders dirty feeds and fans out pending alerts. An
// instance following another (a pull asked of it from the console or the
// API) leaves the rendering to the leader, which renders dirty feeds
// within seconds: two instances rendering one feed at once could store
// archive pages made from different moments.
func (a *app) afterChange(ctx context.Context, p *parts) {
	if p.following == nil || !p.following() {
		if changed, err := p.publisher.RenderDirty(ctx); err != nil {
			a.log.Error("render feeds", slog.Any("error", err))
		} else if len(changed) > 0 {
			a.log.Info("feeds rendered", slog.Int("feeds", len(changed)))
		}
	}
	if n, err := p.alerts.ProcessPending(ctx); err != nil {
		a.log.Error("immediate alerts", slog.Any("error", err))
	} else if n > 0 {
		a.log.Info("immediate alerts queued", slog.Int("messages", n))
		p.deliverer.Kick()
	}
}

// runDigests sends every due period of one frequency.
func (a *app) runDigests(ctx context.Context, p *parts, frequency string, now time.Time) {
	p.digestMu.Lock()
	defer p.digestMu.Unlock()
	rep, err := p.alerts.RunDue(ctx, frequency, now)
	if err != nil {
		a.log.Error("digest", slog.String("frequency", frequency), slog.Any("error", err))
		return
	}
	if n := rep.Enqueued(); n > 0 {
		a.log.Info("digest queued", slog.String("frequency", frequency), slog.Int("messages", n), slog.Int("periods", len(rep.Periods)))
		p.deliverer.Kick()
	}
}

// pullNow lets the admin API and console pull one source at once.
type pullNow struct {
	a *app
	p *parts
}

func (n pullNow) PullSource(ctx context.Context, name string) error {
	reports := n.a.pullOnce(ctx, n.p, pull.Request{Sources: []string{name}, Force: true})
	for _, r := range reports {
		if r.Status == pull.StatusFailed {
			return errors.New(r.Err)
		}
	}
	return nil
}

// serve runs Herald until ctx ends: HTTP, the scheduler, the WebSub hub
// and the mail workers.
func (a *app) serve(ctx context.Context) error {
	// Every template is checked before anything starts, all problems
	// told at once: a template that would fail on a subscriber's email
	// or a visitor's page stops Herald here.
	if err := a.cfg.checkTemplates(); err != nil {
		return err
	}
	p, err := a.buildParts(ctx)
	if err != nil {
		return err
	}
	// leading is set while this instance runs the scheduled work.
	var leading atomic.Bool
	p.following = func() bool { return !leading.Load() }
	if a.cfg.Mail == nil {
		a.log.Info("no mail section in the config: writing messages as .eml files to ./outbox")
	}
	if err := p.publisher.Warm(ctx); err != nil {
		return err
	}

	var tokens []string
	for _, t := range a.cfg.Admin.Tokens {
		tokens = append(tokens, t.Value())
	}
	jobs := a.scheduledJobs(p)
	for _, j := range jobs {
		if _, err := cron.ParseStandard(j.spec); err != nil {
			return fmt.Errorf("schedule %q: %w", j.spec, err)
		}
	}
	// ready is set once this instance has either caught up the scheduled
	// work as the leader or found another instance leading.
	var ready atomic.Bool
	subs := admin.New(a.db)
	webhooks, problems := a.cfg.Bounces.Webhooks.providers()
	if len(problems) > 0 {
		return &ConfigError{Problems: problems}
	}
	brand, logo, err := a.cfg.branding()
	if err != nil {
		return err
	}
	wcfg := a.cfg.webConfig(brand, logo)
	wcfg.AdminTokens = tokens
	srv, err := web.New(a.db, wcfg, web.Deps{
		Feeds: p.publisher, SearchFeeds: p.publisher, Alerts: p.alerts, Emails: p.alerts, MailHeaders: p.deliverer,
		Puller: pullNow{a, p}, Subscribers: subs, SubscriberStats: subs, Outbox: a.db, Webhooks: webhooks, Bounces: p.bounces,
		Ready: func() error {
			if !ready.Load() {
				return errors.New("scheduler not running")
			}
			return nil
		},
		Metrics: a.reg,
	}, a.log, a.reg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Listen, err)
	}
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second,
			ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		}
	}
	servers := map[net.Listener]*http.Server{ln: newServer(srv.Handler())}
	if a.cfg.Metrics.Listen != "" {
		mln, err := net.Listen("tcp", a.cfg.Metrics.Listen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics.listen on %s: %w", a.cfg.Metrics.Listen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", srv.MetricsHandler())
		servers[mln] = newServer(mux)
		a.log.Info("metrics served", slog.String("listen", mln.Addr().String()))
	}

	var receiver *bounce.Receiver
	var bln net.Listener
	if a.cfg.Bounces.Listen != "" {
		if bln, err = net.Listen("tcp", a.cfg.Bounces.Listen); err != nil {
			for l := range servers {
				l.Close()
			}
			return fmt.Errorf("bounces.listen on %s: %w", a.cfg.Bounces.Listen, err)
		}
		receiver = p.bounces.NewReceiver(bounce.ReceiverConfig{PerClient: a.cfg.Bounces.PerClientPerMinute})
		a.log.Info("bounce receiver listening", slog.String("listen", bln.Addr().String()),
			slog.String("domain", a.bounceDomain()))
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(servers)+1)
	if receiver != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := receiver.Serve(bln); err != nil {
				errc <- fmt.Errorf("bounce receiver: %w", err)
				cancel()
			}
		}()
	}
	for l, hs := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
				cancel()
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := p.publisher.Run(ctx); err != nil {
			a.log.Error("websub hub", slog.Any("error", err))
		}
	}()
	go func() {
		defer wg.Done()
		p.deliverer.Run(ctx)
	}()
	a.log.Info("herald serving", slog.String("listen", ln.Addr().String()), slog.String("base_url", a.cfg.BaseURL),
		slog.String("version", version))

	// Scheduled work runs on the leader; every instance follows the feeds
	// any instance renders.
	ld := &leader{
		l: a.db.Leadership(), every: leaderEvery, log: a.log, gauge: newLeaderGauge(a.reg),
		work: func(ctx context.Context) {
			leading.Store(true)
			defer leading.Store(false)
			a.runScheduled(ctx, p, jobs, func() { ready.Store(true) })
		},
		following: func() { ready.Store(true) },
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		ld.run(ctx)
	}()
	go func() {
		defer wg.Done()
		if err := p.publisher.Follow(ctx, feedCheckEvery); err != nil {
			a.log.Error("follow feeds", slog.Any("error", err))
		}
	}()

	<-ctx.Done()
	ready.Store(false)
	shutdownCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	for _, hs := range servers {
		hs.Shutdown(shutdownCtx)
	}
	if receiver != nil {
		if err := receiver.Shutdown(shutdownCtx); err != nil {
			receiver.Close()
		}
	}
	wg.Wait()
	p.alerts.Wait()
	a.log.Info("herald stopped")
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}
