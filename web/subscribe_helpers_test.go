package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"herald/alerts"
	"herald/alerts/alertstest"
	"herald/feeds/rules"
	"herald/store"
	"herald/store/storetest"
	"herald/web"
)

// subFixture is a site (seedSite's departments, sources and releases) with
// two more topics and the real subscription side mounted.
type subFixture struct {
	*site
	t        *testing.T
	ctx      context.Context
	clock    *storetest.Clock
	svc      *alerts.Service
	keys     alerts.Keys
	treasury store.Department
	traffick store.Topic
	immig    store.Topic
	budget   store.Topic
}

// subBase is the site's public address: links in emails start with it.
const subBase = alertstest.BaseURL

// newSubFixture starts the site; mod, if not nil, changes the alerts and
// web configurations first.
func newSubFixture(t *testing.T, mod func(*alerts.Config, *web.Config)) *subFixture {
	t.Helper()
	f := &subFixture{t: t, ctx: context.Background()}
	var err error
	f.keys, err = alerts.NewKeys("test key number one, long enough")
	if err != nil {
		t.Fatal(err)
	}
	london, _ := time.LoadLocation("Europe/London")
	ac := alerts.Config{Location: london}
	f.site = newSite(t, withoutAdmin(), func(c *siteConfig) {
		f.clock = c.clock
		c.cfg.BaseURL, c.cfg.Now = subBase, f.clock.Now
		if mod != nil {
			mod(&ac, &c.cfg)
		}
	}, withMounts(func(t *testing.T, db *store.DB, d *web.Deps, base string) {
		ctx := f.ctx
		var err error
		if f.traffick, err = db.TopicBySlug(ctx, "human-trafficking"); err != nil {
			t.Fatal(err)
		}
		if f.treasury, err = db.DepartmentBySlug(ctx, "treasury"); err != nil {
			t.Fatal(err)
		}
		if f.immig, err = db.CreateTopic(ctx, store.Topic{Slug: "immigration", Title: "Immigration",
			Rule: store.Rule{Keywords: []string{"visa", "border"}}}, &rules.Topics{}); err != nil {
			t.Fatal(err)
		}
		if f.budget, err = db.CreateTopic(ctx, store.Topic{Slug: "budget", Title: "Budget",
			Rule: store.Rule{Departments: []string{"treasury"}, Keywords: []string{"budget"}}}, &rules.Topics{}); err != nil {
			t.Fatal(err)
		}
		ac.BaseURL = base
		if f.svc, err = alerts.NewService(db, ac, f.keys, nil, nil); err != nil {
			t.Fatal(err)
		}
		d.Alerts = f.svc
	}))
	return f
}

// server is the running site.
func (f *subFixture) server() *httptest.Server { return f.srv }

// subscribe creates an active subscription the way a confirmed sign-up
// leaves it.
func (f *subFixture) subscribe(addr string, target store.Target, freq string) storetest.Subscription {
	f.t.Helper()
	return storetest.Subscribe(f.t, f.db, addr, target, freq)
}

// outbox returns the outbox rows keep picks (nil: all).
func (f *subFixture) outbox(keep alertstest.Filter) []alertstest.Message {
	f.t.Helper()
	return alertstest.Outbox(f.t, f.db, keep)
}

// subBrowser is a client with a cookie jar of its own that does not follow
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

// subCSRF returns the form token of a page.
func subCSRF(t *testing.T, p subPage) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.Body)
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
