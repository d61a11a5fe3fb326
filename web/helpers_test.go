package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"herald/alerts"
	"herald/alerts/delivery"
	"herald/feeds/netguard"
	"herald/feeds/publish"
	"herald/feeds/pull"
	"herald/feeds/rules"
	"herald/store"
	"herald/store/storetest"
	"herald/templates"
	plaintext "herald/templates/text"
	"herald/web"
	"herald/web/admin"
)

const adminToken = "test-admin-token-0123456789abcdef"

// site is a running Herald web server over a real database, with the
// parts that exist today: the store's outbox, the feeds puller, and a small
// real stand-in for the subscriber admin.
type site struct {
	t      *testing.T
	db     *store.DB
	srv    *httptest.Server
	server *web.Server
	now    time.Time
	subs   *admin.Service
	logs   *syncBuffer
	reg    *prometheus.Registry
	client *http.Client
}

type siteOption func(*siteConfig)

type siteConfig struct {
	cfg  web.Config
	deps web.Deps
	// clock is the store's; options may hand it to other parts.
	clock  *storetest.Clock
	live   bool
	mounts func(t *testing.T, db *store.DB, deps *web.Deps, baseURL string)
}

// withMounts sets dependencies that need the site's database or address.
func withMounts(f func(t *testing.T, db *store.DB, deps *web.Deps, baseURL string)) siteOption {
	return func(c *siteConfig) { c.mounts = f }
}

// withLiveBaseURL makes the site's base URL its real address, for links
// (in emails) that a browser must follow.
func withLiveBaseURL() siteOption { return func(c *siteConfig) { c.live = true } }

func withoutAdmin() siteOption { return func(c *siteConfig) { c.cfg.AdminTokens = nil } }

func withDeps(f func(*web.Deps)) siteOption { return func(c *siteConfig) { f(&c.deps) } }

func withMaxBody(n int64) siteOption { return func(c *siteConfig) { c.cfg.MaxBody = n } }

// syncBuffer is a log sink the server's goroutines can share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newSite(t *testing.T, opts ...siteOption) *site {
	t.Helper()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	db, clock := storetest.Open(t, now)
	seedSite(t, db, now)

	s := &site{t: t, db: db, now: now, subs: admin.New(db), logs: &syncBuffer{}, reg: prometheus.NewRegistry()}
	london, _ := time.LoadLocation("Europe/London")
	c := siteConfig{
		cfg: web.Config{BaseURL: "http://news.example.org", AdminTokens: []string{adminToken}, SiteName: "Herald",
			TemplatesFS: templates.Embedded(), Location: london},
		clock: clock,
		deps: web.Deps{
			Puller:          feedsPuller{pull.NewPuller(db, pull.Config{Timeout: 5 * time.Second, Guard: netguard.Guard{AllowPrivate: true}}, nil)},
			Subscribers:     s.subs,
			SubscriberStats: s.subs,
			Outbox:          db,
			Metrics:         s.reg,
		},
	}
	for _, o := range opts {
		o(&c)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if c.live {
		c.cfg.BaseURL = "http://" + ln.Addr().String()
	}
	if c.deps.SearchFeeds == nil {
		// Search feeds are rendered by the real publisher, as in serve.
		pub, err := publish.NewPublisher(db, publish.Config{BaseURL: c.cfg.BaseURL}, s.reg, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.deps.SearchFeeds = pub
	}
	if c.mounts != nil {
		c.mounts(t, db, &c.deps, c.cfg.BaseURL)
	}
	if c.deps.Emails == nil {
		// The console's and the API's email previews, over the site's
		// templates and brand, as serve wires them.
		keys, err := alerts.NewKeys("site-test-token-key-0123456789abcdef")
		if err != nil {
			t.Fatal(err)
		}
		brand := c.cfg.Brand
		if c.cfg.Logo != nil {
			brand.LogoURL = "cid:" + templates.LogoCID
		}
		svc, err := alerts.NewService(db, alerts.Config{BaseURL: c.cfg.BaseURL, Location: london, TemplatesFS: c.cfg.TemplatesFS,
			SiteName: c.cfg.SiteName, Brand: brand}, keys, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.deps.Emails = svc
	}
	if c.deps.MailHeaders == nil {
		d, err := delivery.New(db, delivery.Config{From: "Herald <alerts@news.example.org>", Transport: "file", Dir: t.TempDir()}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.deps.MailHeaders = d
	}
	log := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	server, err := web.New(db, c.cfg, c.deps, log, s.reg)
	if err != nil {
		t.Fatal(err)
	}
	s.server = server
	s.srv = httptest.NewUnstartedServer(server.Handler())
	s.srv.Listener.Close()
	s.srv.Listener = ln
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	jar, _ := cookiejar.New(nil)
	s.client = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return s
}

// seedSite stores two departments, their sources, a topic and 26
// releases: 24 from the Home Office (more than a page) and 2 from the
// Treasury.
func seedSite(t *testing.T, db *store.DB, now time.Time) {
	t.Helper()
	ctx := context.Background()
	for _, d := range []store.Department{
		{Slug: "home-office", Name: "Home Office", URL: "https://home-office.example.org"},
		{Slug: "treasury", Name: "Treasury"},
	} {
		if _, err := db.CreateDepartment(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.CreateTopic(ctx, store.Topic{Slug: "human-trafficking", Title: "Human trafficking",
		Description: "Modern slavery and people smuggling.",
		Rule:        store.Rule{Keywords: []string{"trafficking", "modern slavery"}}}, &rules.Topics{}); err != nil {
		t.Fatal(err)
	}
	var ho []store.Entry
	for i := 1; i <= 24; i++ {
		e := store.Entry{GUID: fmt.Sprint("ho-", i), Link: fmt.Sprint("https://home-office.example.org/news/", i),
			Title:     fmt.Sprintf("Home Office notice %02d on passports", i),
			Summary:   fmt.Sprintf("<p>Summary of notice %d.</p>", i),
			Published: now.Add(-time.Duration(25-i) * time.Hour)}
		ho = append(ho, e)
	}
	ho[23] = store.Entry{GUID: "ho-24", Link: "https://home-office.example.org/news/uk-romania",
		Title:     "UK and Romania pledge to tackle human trafficking",
		Summary:   "<p>Joint action on <strong>modern slavery</strong>.</p>",
		Body:      `<p>Ministers met in London.</p><p>Read the <a href="https://home-office.example.org/plan">action plan</a>.</p>`,
		Published: now.Add(-time.Hour), Categories: []string{"Crime"}}
	pull := func(name, dept string, entries []store.Entry) {
		src, err := db.CreateSource(ctx, store.Source{Name: name, URL: "https://" + dept + ".example.org/feed.atom", DepartmentSlug: dept, Format: "auto", Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range entries { // as the pull side reads the HTML
			entries[i].PlainSummary, entries[i].PlainBody = plaintext.Plain(e.Summary), plaintext.Plain(e.Body)
		}
		if _, err := db.ApplyPull(ctx, src.ID, entries, store.PullOptions{Topics: &rules.Topics{}, Alert: rules.AlertNew(0), Realert: rules.Realert}); err != nil {
			t.Fatal(err)
		}
	}
	pull("home-office-news", "home-office", ho)
	pull("treasury-news", "treasury", []store.Entry{
		{GUID: "t-1", Link: "https://treasury.example.org/1", Title: "Spring statement published", Summary: "<p>Figures for the year.</p>", Published: now.Add(-30 * time.Minute)},
		{GUID: "t-2", Link: "https://treasury.example.org/2", Title: "Customs checks on trafficking routes", Summary: "<p>Border figures.</p>", Published: now.Add(-26 * time.Hour)},
	})
}

// url is an absolute URL on the test server.
func (s *site) url(path string) string { return s.srv.URL + path }

type response struct {
	*http.Response
	body string
}

func (s *site) do(req *http.Request) response {
	s.t.Helper()
	res, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return response{res, string(b)}
}

func (s *site) get(path string, header ...string) response {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url(path), nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return s.do(req)
}

func (s *site) postForm(path string, form url.Values) response {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url(path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return s.do(req)
}

// api calls the admin API with the test token and a JSON body (a string
// is sent as it is).
func (s *site) api(method, path string, body any, token ...string) response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, s.url(path), rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	tok := adminToken
	if len(token) > 0 {
		tok = token[0]
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return s.do(req)
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("body is not JSON (%v):\n%s", err, r.body)
	}
}

// fieldErrors reads the "fields" of an API error body.
func (r response) fieldErrors(t *testing.T) map[string]string {
	t.Helper()
	var e struct {
		Error  string            `json:"error"`
		Fields map[string]string `json:"fields"`
	}
	r.json(t, &e)
	return e.Fields
}

func wantStatus(t *testing.T, r response, code int) {
	t.Helper()
	if r.StatusCode != code {
		t.Fatalf("%s %s = %d, want %d\n%s", r.Request.Method, r.Request.URL.Path, r.StatusCode, code, excerptBody(r.body))
	}
}

func excerptBody(b string) string {
	if len(b) > 2000 {
		return b[:2000] + "…"
	}
	return b
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf fetches a page and returns the token of its first form.
func (s *site) csrf(path string) string {
	s.t.Helper()
	r := s.get(path)
	m := csrfField.FindStringSubmatch(r.body)
	if m == nil {
		s.t.Fatalf("no csrf_token on %s (%d):\n%s", path, r.StatusCode, excerptBody(r.body))
	}
	return m[1]
}

// login signs the site's client in to the console.
func (s *site) login() {
	s.t.Helper()
	tok := s.csrf("/admin/login")
	r := s.postForm("/admin/login", url.Values{"csrf_token": {tok}, "token": {adminToken}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/admin/" {
		s.t.Fatalf("login = %d to %q\n%s", r.StatusCode, r.Header.Get("Location"), excerptBody(r.body))
	}
}

// csrfCookie is the cookie of the public forms' double-submit token.
const csrfCookie = "herald_csrf"

// feedsPuller adapts the feeds package's Puller to "pull this source now",
// as cmd/herald does.
type feedsPuller struct{ p *pull.Puller }

func (f feedsPuller) PullSource(ctx context.Context, name string) error {
	reports, err := f.p.Pull(ctx, pull.Request{Sources: []string{name}, Force: true})
	if err != nil {
		return err
	}
	for _, r := range reports {
		if r.Status == pull.StatusFailed {
			return fmt.Errorf("%s", r.Err)
		}
	}
	return nil
}

// subscribe stores a confirmed subscription of address to a topic or a
// department (kind "topic" or "department"), as an import would.
func (s *site) subscribe(address, kind, slug, frequency string) {
	s.t.Helper()
	ctx := context.Background()
	var target store.Target
	if kind == "topic" {
		t, err := s.db.TopicBySlug(ctx, slug)
		if err != nil {
			s.t.Fatal(err)
		}
		target.TopicID = t.ID
	} else {
		d, err := s.db.DepartmentBySlug(ctx, slug)
		if err != nil {
			s.t.Fatal(err)
		}
		target.DepartmentID = d.ID
	}
	if _, err := s.db.ImportSubscription(ctx, address, target, frequency); err != nil {
		s.t.Fatal(err)
	}
}

// suppress stops mail to address, as the delivery side does after bounces.
func (s *site) suppress(address, reason string) {
	s.t.Helper()
	if err := s.db.Suppress(context.Background(), address, reason); err != nil {
		s.t.Fatal(err)
	}
}
