package alerts_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"herald/alerts"
	"herald/alerts/alertstest"
	"herald/store"
	"herald/templates"
)

// subFixture is a database with two departments, two topics and a source
// that has been pulled once (so new releases are alertable), and a service.
type subFixture struct {
	t        *testing.T
	ctx      context.Context
	db       *store.DB
	clock    *alertstest.Clock
	svc      *alerts.Service
	keys     alerts.Keys
	src      store.Source
	trSrc    store.Source
	home     store.Department
	treasury store.Department
	traffick store.Topic
	immig    store.Topic
	budget   store.Topic
}

var subLondon = func() *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return loc
}()

const subBase = alertstest.BaseURL

func newSubFixture(t *testing.T, mod func(*alerts.Config)) *subFixture {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "herald.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clock := alertstest.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	db.Now = clock.Now
	f := &subFixture{t: t, ctx: ctx, db: db, clock: clock}
	if f.home, err = db.UpsertDepartment(ctx, store.Department{Slug: "home-office", Name: "Home Office"}); err != nil {
		t.Fatal(err)
	}
	if f.treasury, err = db.UpsertDepartment(ctx, store.Department{Slug: "treasury", Name: "Treasury"}); err != nil {
		t.Fatal(err)
	}
	if f.src, err = db.UpsertSource(ctx, store.Source{Name: "home-office", URL: "https://example.org/ho.atom", DepartmentSlug: "home-office", Format: "auto", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if f.trSrc, err = db.UpsertSource(ctx, store.Source{Name: "treasury", URL: "https://example.org/tr.atom", DepartmentSlug: "treasury", Format: "auto", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if f.traffick, err = db.UpsertTopic(ctx, store.Topic{Slug: "human-trafficking", Title: "Human trafficking", Description: "Policy and enforcement.",
		Rule: store.Rule{Departments: []string{"home-office"}, Keywords: []string{"trafficking"}}}); err != nil {
		t.Fatal(err)
	}
	if f.immig, err = db.UpsertTopic(ctx, store.Topic{Slug: "immigration", Title: "Immigration",
		Rule: store.Rule{Keywords: []string{"visa", "border"}}}); err != nil {
		t.Fatal(err)
	}
	if f.budget, err = db.UpsertTopic(ctx, store.Topic{Slug: "budget", Title: "Budget",
		Rule: store.Rule{Departments: []string{"treasury"}, Keywords: []string{"budget"}}}); err != nil {
		t.Fatal(err)
	}
	// The first pull of a source stores its back catalogue silently.
	for _, s := range []store.Source{f.src, f.trSrc} {
		if _, err := db.ApplyPull(ctx, s.ID, nil, store.PullOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	f.keys, err = alerts.NewKeys("test key number one, long enough")
	if err != nil {
		t.Fatal(err)
	}
	cfg := alerts.Config{BaseURL: subBase, Location: subLondon, TemplatesFS: templates.Embedded()}
	if mod != nil {
		mod(&cfg)
	}
	f.svc, err = alerts.NewService(db, cfg, f.keys, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// pull stores entries as one successful pull of src at the current time.
func (f *subFixture) pull(src store.Source, entries ...store.Entry) store.PullResult {
	f.t.Helper()
	res, err := f.db.ApplyPull(f.ctx, src.ID, entries, store.PullOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

// subscribe creates an active subscription the way a confirmed sign-up
// leaves it.
func (f *subFixture) subscribe(addr string, target store.Target, freq string) store.ConfirmResult {
	f.t.Helper()
	return alertstest.Subscribe(f.t, f.db, addr, target, freq)
}

// subOutboxRow is an outbox row as tests look at it.
type subOutboxRow = alertstest.Message

// outbox returns the outbox rows matching where (SQL, with args).
func (f *subFixture) outbox(where string, args ...any) []subOutboxRow {
	f.t.Helper()
	return alertstest.Outbox(f.t, f.db, where, args...)
}

// server serves the service's routes over real HTTP.
func (f *subFixture) server() *httptest.Server {
	mux := http.NewServeMux()
	f.svc.Routes(mux)
	srv := httptest.NewServer(mux)
	f.t.Cleanup(srv.Close)
	return srv
}

// subBrowser is a client with a cookie jar that does not follow
// redirects, so tests see each answer.
type subBrowser struct {
	t   *testing.T
	srv *httptest.Server
	c   *http.Client
}

func newSubBrowser(t *testing.T, srv *httptest.Server) *subBrowser {
	jar, _ := cookiejar.New(nil)
	return &subBrowser{t: t, srv: srv, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// subPage is one answer.
type subPage struct {
	Status int
	Header http.Header
	Body   string
}

func (b *subBrowser) do(req *http.Request) subPage {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return subPage{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

func (b *subBrowser) get(path string) subPage {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.url(path), nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *subBrowser) post(path string, form url.Values) subPage {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.url(path), strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// url maps a link from an email (on subBase) or a path to the test server.
func (b *subBrowser) url(p string) string {
	p = strings.TrimPrefix(p, subBase)
	return b.srv.URL + p
}

var subCSRFRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf returns the form token of a page.
func subCSRF(t *testing.T, p subPage) string {
	t.Helper()
	m := subCSRFRe.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no csrf_token in page:\n%s", p.Body)
	}
	return m[1]
}

// subLinks returns the links to Herald in a text body that contain part.
func subLinks(text, part string) []string { return alertstest.Links(text, part) }

func subLink(t *testing.T, text, part string) string {
	t.Helper()
	return alertstest.Link(t, text, part)
}
