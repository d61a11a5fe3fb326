// Package web is Herald's HTTP surface: the server's middleware, the public
// news pages and search, the subscription pages, the admin JSON API and the
// admin console. It owns every HTTP concern (routes, the one layout and
// error page, security headers, CSRF, rate limits, form errors); it mounts
// the feeds handler it is given and reaches everything else through the
// store and the small interfaces declared here. The admin API and console
// are thin adapters over the operations of web/admin, which the CLI calls
// too.
package web

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"herald/alerts"
	"herald/feeds/publish"
	"herald/store"
	"herald/templates"
	"herald/web/admin"
)

// Config is what the web server needs from Herald's configuration.
type Config struct {
	// BaseURL is the public address of the site, such as
	// https://news.example.org; links and feed URLs are built from it and it
	// decides whether the admin cookie is Secure.
	BaseURL string
	// AdminTokens are the bearer tokens of the admin API and console. With
	// none, both answer 404.
	AdminTokens []string
	// SiteName is shown in page titles and the header; default "Herald".
	SiteName string
	// TemplatesFS holds pages/*.html and static/*, as templates.FS returns.
	TemplatesFS fs.FS
	// Location is the time zone dates are shown in; default UTC.
	Location *time.Location
	// MaxBody limits request bodies in bytes; default 1 MiB.
	MaxBody int64
	// Language is the language of the site's content, for search feeds;
	// default "en".
	Language string
	// Now is the clock of console sessions and of the sign-in and sign-up
	// limiters; default time.Now.
	Now func() time.Time
	// HSTSMaxAge is sent as Strict-Transport-Security's max-age when
	// BaseURL is https; 0 sends none.
	HSTSMaxAge time.Duration
	// ConfirmPerIPHour caps the requests for confirmation and manage-link
	// emails from one client network per hour; default 20. The cap per
	// address is the alerts side's.
	ConfirmPerIPHour int
	// Icon is the address of the site's icon when it is not Herald's own
	// (/static/icon.svg and friends); /favicon.ico then redirects to it.
	Icon string
	// Brand is the organisation's name, colour, footer lines and logo
	// link as the pages show them; unset fields take their defaults
	// (templates.Brand.WithDefaults). With Logo set, the logo is served
	// at /brand/logo and Brand.LogoURL points there.
	Brand templates.Brand
	Logo  *templates.Logo
}

// Mounter is a handler that registers its own routes, such as the feeds
// handler.
type Mounter interface {
	Routes(mux *http.ServeMux)
}

// Alerts is the subscription side (alerts.Service is one): the operations
// behind the subscribe, confirm, manage and unsubscribe pages. Its errors
// say what became of a request (alerts.FieldErrors, alerts.ErrLinkGone,
// the token errors...); the pages choose the words and the status.
type Alerts interface {
	FindTarget(ctx context.Context, target alerts.TargetFields) (alerts.Target, error)
	CheckRequest(ctx context.Context, email string, target alerts.TargetFields, frequency string) (alerts.Request, error)
	// RequestSubscription and RequestManageLink return at once and do
	// their work in the background, so an answer takes the same time
	// whether the address is known.
	RequestSubscription(ctx context.Context, req alerts.Request)
	RequestManageLink(ctx context.Context, email string) error
	PendingSubscription(ctx context.Context, token string) (store.Subscription, error)
	Confirm(ctx context.Context, token string) (alerts.Confirmation, error)
	ManageSubscriber(ctx context.Context, token string) (store.Subscriber, error)
	Subscriptions(ctx context.Context, subscriberID int64) ([]store.Subscription, error)
	ApplyManageAction(ctx context.Context, sub store.Subscriber, a alerts.ManageAction) error
	PendingAddressChange(ctx context.Context, token string) (store.Subscriber, error)
	ChangeAddress(ctx context.Context, token string) (alerts.AddressChange, error)
	CheckUnsubscribe(ctx context.Context, token string) (alerts.UnsubscribeLink, error)
	Unsubscribe(ctx context.Context, token string) ([]store.Subscription, error)
}

// Puller pulls one source now, outside the schedule, and records the
// outcome on the source (store.Source's health fields). An unknown name is
// an error wrapping store.ErrNotFound.
type Puller interface {
	PullSource(ctx context.Context, name string) error
}

// SubscriberAdmin answers an admin's questions and privacy requests about
// one address (*admin.Service is one). Each method takes the address as it
// was typed and checks it: a refused one is an admin.FieldErrors naming
// "address"; an unknown one is an error wrapping store.ErrNotFound.
type SubscriberAdmin interface {
	LookupSubscriber(ctx context.Context, address string) (admin.SubscriberInfo, error)
	// ExportSubscriber returns everything stored about address as JSON.
	ExportSubscriber(ctx context.Context, address string) ([]byte, error)
	// EraseSubscriber deletes the address and everything kept about it.
	EraseSubscriber(ctx context.Context, address string) error
	// LiftSuppression lets Herald mail a suppressed address again.
	LiftSuppression(ctx context.Context, address string) error
	// ListSuppressions lists suppressions, newest first; a bad query is
	// an admin.FieldErrors.
	ListSuppressions(ctx context.Context, q admin.SuppressionQuery) ([]store.Suppression, error)
}

// SubscriberStats counts subscribers for the topic list, topic previews and
// the dashboard.
type SubscriberStats interface {
	// TopicSubscriptionCounts returns, per topic slug, the number of
	// confirmed subscriptions per frequency ("immediately", "daily",
	// "weekly").
	TopicSubscriptionCounts(ctx context.Context) (map[string]map[string]int, error)
	// SubscribersPerDay counts new confirmed subscribers for each of the
	// last days days (today included) in loc, oldest first.
	SubscribersPerDay(ctx context.Context, days int, loc *time.Location) ([]store.DayCount, error)
}

// OutboxAdmin reports on email delivery and sends failed messages again.
type OutboxAdmin interface {
	// OutboxCounts returns the number of messages per status.
	OutboxCounts(ctx context.Context) (map[string]int, error)
	// FailedMessages returns up to limit failed messages, newest first,
	// with LastError saying why.
	FailedMessages(ctx context.Context, limit int) ([]store.OutboxMessage, error)
	// RetryMessage queues a failed message again: store.ErrNotFound when
	// there is no such message, store.ErrConflict when it has not failed.
	RetryMessage(ctx context.Context, id int64) error
}

// Deps are the parts of Herald the web server composes. A nil part turns
// its routes and its corner of the pages off.
type Deps struct {
	// Feeds serves /feeds/..., /feeds.opml and /websub.
	Feeds Mounter
	// SearchFeeds serves /feeds/search.{atom,rss,json}; nil turns those
	// routes off.
	SearchFeeds SearchFeedRenderer
	// Alerts does the work of /subscribe, /subscribe/confirm, /manage and
	// /unsubscribe/{token}.
	Alerts Alerts
	// Puller serves "pull now" for a source.
	Puller Puller
	// Subscribers serves subscriber look-up, export, erasure and lifting
	// suppressions.
	Subscribers SubscriberAdmin
	// SubscriberStats adds subscriber counts to topics and the dashboard.
	SubscriberStats SubscriberStats
	// Outbox serves the delivery pages and API.
	Outbox OutboxAdmin
	// Ready reports whether the scheduler is running, for /readyz.
	Ready func() error
	// Bounces processes the reports that provider webhooks bring; nil
	// turns /webhooks/{provider} off.
	Bounces BounceProcessor
	// Webhooks are the relays configured to report bounces and
	// complaints, each at POST /webhooks/{name}; a name not among them
	// answers 404.
	Webhooks []WebhookProvider
	// Emails serves the console's and the API's previews and test sends
	// of every kind of email; MailHeaders, when set, adds the headers
	// each would be sent with.
	Emails      Emails
	MailHeaders MailHeaders
	// Metrics is what /metrics exposes (normally the *prometheus.Registry
	// that reg is) to a request with an admin bearer token, and what
	// MetricsHandler serves on a listener of its own; nil turns both off.
	Metrics prometheus.Gatherer
}

// SearchFeedRenderer serves search results as a feed, in the same form
// and through the same path as every other feed (publish.Publisher is
// one): run finds the releases when the feed is not already at hand.
type SearchFeedRenderer interface {
	ServeSearch(w http.ResponseWriter, r *http.Request, format string, sf publish.SearchFeed, run func(context.Context) ([]store.Release, error)) error
}

// Server is Herald's HTTP server.
type Server struct {
	db         *store.DB
	admin      *admin.Service
	cfg        Config
	deps       Deps
	log        *slog.Logger
	base       *url.URL
	pages      *pages
	msgs       *templates.Messages
	metrics    *httpMetrics
	sessions   *sessions
	csrf       csrf
	logins     *limiter
	requestIDs *requestIDs
	// signups limits the requests for confirmation and manage-link
	// emails per client.
	signups *limiter
	// security are the headers every response carries.
	security []securityHeader
	mux      *http.ServeMux
	handler  http.Handler
	// webhooks are Deps.Webhooks by name.
	webhooks map[string]WebhookProvider
	// apiRoutes records the /api/v1 patterns as they are registered, for
	// the OpenAPI document's test.
	apiRoutes []string
}

// New builds the server. It parses every page template and message up
// front and renders each page with sample data (see CheckTemplates), so a
// broken template stops Herald at start rather than on a visitor's request.
func New(db *store.DB, cfg Config, deps Deps, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if db == nil {
		return nil, errors.New("web: no database")
	}
	if cfg.TemplatesFS == nil {
		return nil, errors.New("web: no templates (Config.TemplatesFS)")
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("web: base URL %q must be an absolute http(s) URL", cfg.BaseURL)
	}
	if cfg.SiteName == "" {
		cfg.SiteName = "Herald"
	}
	if cfg.Logo != nil {
		cfg.Brand.LogoURL = "/brand/logo" + cfg.Logo.Ext()
	}
	cfg.Brand = cfg.Brand.WithDefaults(cfg.SiteName)
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Language == "" {
		cfg.Language = "en"
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ConfirmPerIPHour <= 0 {
		cfg.ConfirmPerIPHour = 20
	}
	var tokens []string
	for _, t := range cfg.AdminTokens {
		if t = strings.TrimSpace(t); t != "" {
			tokens = append(tokens, t)
		}
	}
	cfg.AdminTokens = tokens
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{
		db:         db,
		admin:      admin.New(db),
		cfg:        cfg,
		deps:       deps,
		log:        slog.New(NewLogHandler(log.Handler())),
		base:       base,
		sessions:   &sessions{db: db, ttl: sessionTTL, now: cfg.Now},
		csrf:       csrf{secure: base.Scheme == "https"},
		logins:     perPeriod(db, "login", loginAttempts, loginPeriod, cfg.Now),
		signups:    perPeriod(db, "signup", cfg.ConfirmPerIPHour, time.Hour, cfg.Now),
		requestIDs: newRequestIDs(),
	}
	s.webhooks = map[string]WebhookProvider{}
	for _, p := range deps.Webhooks {
		if _, dup := s.webhooks[p.Name()]; dup {
			return nil, fmt.Errorf("web: two webhook providers named %q", p.Name())
		}
		s.webhooks[p.Name()] = p
	}
	if s.msgs, err = templates.LoadMessages(cfg.TemplatesFS); err != nil {
		return nil, err
	}
	s.msgs.OnError(func(name string, err error) {
		s.log.Error("message failed: its built-in words were used", slog.String("message", name), slog.String("error", err.Error()))
	})
	if err := s.parseAndCheckPages(); err != nil {
		return nil, err
	}
	s.metrics, err = newHTTPMetrics(reg)
	if err != nil {
		return nil, err
	}
	s.security = securityHeaders(base.Scheme == "https", cfg.HSTSMaxAge)
	s.mux = http.NewServeMux()
	s.routes(s.mux)
	s.handler = s.observe(s.secure(s.limitBody(s.mux)))
	return s, nil
}

// Handler returns the server's root handler, with its middleware.
func (s *Server) Handler() http.Handler { return s.handler }

// APIRoutes lists the admin API's route patterns ("GET /api/v1/topics"),
// as registered; the OpenAPI document describes each of them.
func (s *Server) APIRoutes() []string { return append([]string(nil), s.apiRoutes...) }

// adminEnabled reports whether any admin token is configured.
func (s *Server) adminEnabled() bool { return len(s.cfg.AdminTokens) > 0 }

// routes registers every route of the site, public first.
func (s *Server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /static/", s.static())
	mux.HandleFunc("GET /favicon.ico", s.favicon)
	mux.HandleFunc("GET /brand.css", s.brandCSS)
	mux.HandleFunc("GET /brand/{file}", s.brandLogo)

	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("GET /departments/{slug}", s.department)
	mux.HandleFunc("GET /topics/{slug}", s.topic)
	mux.HandleFunc("GET /releases/{id}", s.release)
	mux.HandleFunc("GET /search", s.search)
	if s.deps.SearchFeeds != nil {
		mux.HandleFunc("GET /feeds/search.atom", s.searchFeed("atom"))
		mux.HandleFunc("GET /feeds/search.rss", s.searchFeed("rss"))
		mux.HandleFunc("GET /feeds/search.json", s.searchFeed("json"))
	}
	if s.deps.Feeds != nil {
		s.deps.Feeds.Routes(mux)
	}
	if s.deps.Alerts != nil {
		// Confirmation links open a page with one button rather than
		// confirming on GET: mail security scanners and link previews
		// fetch links in incoming mail, and a confirmation they could
		// trigger would prove nothing about the person. The button costs
		// the subscriber one click. The same goes for unsubscribe links;
		// mail clients use the RFC 8058 one-click POST instead.
		sub := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, private(h)) }
		sub("GET /subscribe", s.subscribeForm)
		sub("POST /subscribe", s.subscribePost)
		sub("GET /subscribe/confirm", s.confirmForm)
		sub("POST /subscribe/confirm", s.confirmPost)
		sub("GET /manage", s.manageRequestForm)
		sub("POST /manage", s.manageRequestPost)
		sub("GET /manage/{token}", s.managePage)
		sub("POST /manage/{token}", s.manageAction)
		sub("GET /manage/address/{token}", s.addressForm)
		sub("POST /manage/address/{token}", s.addressPost)
		sub("GET /unsubscribe/{token}", s.unsubscribeForm)
		sub("POST /unsubscribe/{token}", s.unsubscribePost)
	}
	if s.deps.Bounces != nil {
		mux.HandleFunc("POST /webhooks/{provider}", s.webhook)
	}
	mux.HandleFunc("/", s.unmatched)

	if !s.adminEnabled() {
		return
	}

	// /metrics names sources, routes and mail volumes: only for admins
	// here, or for anyone who reaches metrics.listen (MetricsHandler).
	if s.deps.Metrics != nil {
		mux.Handle("GET /metrics", s.requireToken(s.MetricsHandler()))
	}
	api := func(pattern string, h http.HandlerFunc) {
		s.apiRoutes = append(s.apiRoutes, pattern)
		mux.Handle(pattern, s.requireToken(h))
	}
	mux.HandleFunc("GET /api/v1/openapi.json", s.openAPI)
	api("GET /api/v1/topics", s.apiTopics)
	api("POST /api/v1/topics", s.apiCreateTopic)
	api("POST /api/v1/topics/preview", s.apiPreviewTopic)
	api("GET /api/v1/topics/{slug}", s.apiTopic)
	api("PUT /api/v1/topics/{slug}", s.apiUpdateTopic)
	api("POST /api/v1/topics/{slug}/retire", s.apiRetireTopic)
	api("GET /api/v1/sources", s.apiSources)
	api("POST /api/v1/sources", s.apiCreateSource)
	api("GET /api/v1/sources/{name}", s.apiSource)
	api("PUT /api/v1/sources/{name}", s.apiUpdateSource)
	api("POST /api/v1/sources/{name}/disable", s.apiEnableSource(false))
	api("POST /api/v1/sources/{name}/enable", s.apiEnableSource(true))
	if s.deps.Puller != nil {
		api("POST /api/v1/sources/{name}/pull", s.apiPullSource)
	}
	api("GET /api/v1/searches", s.apiSearches)
	api("GET /api/v1/searches/{id}", s.apiSearch)
	api("POST /api/v1/searches/{id}/promote", s.apiPromoteSearch)
	api("GET /api/v1/departments", s.apiDepartments)
	api("POST /api/v1/departments", s.apiCreateDepartment)
	api("GET /api/v1/departments/{slug}", s.apiDepartment)
	api("PUT /api/v1/departments/{slug}", s.apiUpdateDepartment)
	if s.deps.Subscribers != nil {
		api("GET /api/v1/subscribers", s.apiLookupSubscriber)
		api("GET /api/v1/subscribers/export", s.apiExportSubscriber)
		api("POST /api/v1/subscribers/erase", s.apiEraseSubscriber)
		api("POST /api/v1/subscribers/lift-suppression", s.apiLiftSuppression)
		api("GET /api/v1/suppressions", s.apiSuppressions)
	}
	if s.deps.Emails != nil {
		api("GET /api/v1/emails", s.apiEmails)
		api("GET /api/v1/emails/{kind}/preview", s.apiEmailPreview)
		api("POST /api/v1/emails/{kind}/test", s.apiEmailTest)
	}
	if s.deps.Outbox != nil {
		api("GET /api/v1/outbox", s.apiOutbox)
		api("GET /api/v1/outbox/failed", s.apiFailedMessages)
		api("POST /api/v1/outbox/{id}/retry", s.apiRetryMessage)
	}

	mux.HandleFunc("GET /admin/login", s.adminLoginForm)
	mux.HandleFunc("POST /admin/login", s.adminLogin)
	console := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.requireSession(h)) }
	console("POST /admin/logout", s.adminLogout)
	mux.Handle("GET /admin", http.RedirectHandler("/admin/", http.StatusSeeOther))
	console("GET /admin/{$}", s.adminDashboard)
	console("GET /admin/topics", s.adminTopics)
	console("GET /admin/topics/new", s.adminNewTopic)
	console("POST /admin/topics", s.adminCreateTopic)
	console("POST /admin/topics/preview", s.adminPreviewTopic)
	console("GET /admin/topics/{slug}/edit", s.adminTopic)
	console("POST /admin/topics/{slug}/edit", s.adminUpdateTopic)
	console("POST /admin/topics/{slug}/retire", s.adminRetireTopic)
	console("GET /admin/sources", s.adminSources)
	console("POST /admin/sources", s.adminCreateSource)
	console("GET /admin/sources/{name}/edit", s.adminSource)
	console("POST /admin/sources/{name}/edit", s.adminUpdateSource)
	console("POST /admin/sources/{name}/disable", s.adminEnableSource(false))
	console("POST /admin/sources/{name}/enable", s.adminEnableSource(true))
	if s.deps.Puller != nil {
		console("POST /admin/sources/{name}/pull", s.adminPullSource)
	}
	console("GET /admin/searches", s.adminSearches)
	console("GET /admin/searches/{id}", s.adminSearch)
	console("POST /admin/searches/{id}/promote", s.adminPromoteSearch)
	console("GET /admin/departments", s.adminDepartments)
	console("POST /admin/departments", s.adminCreateDepartment)
	console("GET /admin/departments/{slug}/edit", s.adminDepartment)
	console("POST /admin/departments/{slug}/edit", s.adminUpdateDepartment)
	if s.deps.Subscribers != nil {
		console("GET /admin/subscribers", s.adminSubscribers)
		console("GET /admin/subscribers/export", s.adminExportSubscriber)
		console("POST /admin/subscribers/erase", s.adminEraseSubscriber)
		console("POST /admin/subscribers/lift-suppression", s.adminLiftSuppression)
		console("GET /admin/suppressions", s.adminSuppressions)
	}
	if s.deps.Emails != nil {
		console("GET /admin/emails", s.adminEmails)
		console("GET /admin/emails/{kind}", s.adminEmail)
		console("GET /admin/emails/{kind}/html", s.adminEmailHTML)
		console("POST /admin/emails/{kind}/test", s.adminEmailTest)
	}
	if s.deps.Outbox != nil {
		console("GET /admin/outbox", s.adminOutbox)
		console("POST /admin/outbox/{id}/retry", s.adminRetryMessage)
	}
}
