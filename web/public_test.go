package web_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"

	"herald/feeds/publish"
	"herald/feeds/rules"
	"herald/store"
	"herald/web"
)

// releaseID finds a seeded release by its title.
func (s *site) releaseID(title string) int64 {
	s.t.Helper()
	rs, err := s.db.Releases(context.Background(), store.ReleaseFilter{Limit: 1000})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, r := range rs {
		if r.Title == title {
			return r.ID
		}
	}
	s.t.Fatalf("no release titled %q", title)
	return 0
}

var releaseItem = regexp.MustCompile(`<li>\s*<h3><a href="/releases/\d+">`)

func TestPublicPages(t *testing.T) {
	s := newSite(t)
	uk := strconv.FormatInt(s.releaseID("UK and Romania pledge to tackle human trafficking"), 10)
	tests := []struct {
		path   string
		status int
		want   []string
		not    []string
		items  int // releases listed, -1 to skip
	}{
		{"/", 200, []string{
			"<title>Latest news – Herald</title>",
			`<link rel="alternate" type="application/atom&#43;xml" title="All news (Atom)" href="http://news.example.org/feeds/all.atom">`,
			`<link rel="alternate" type="application/rss&#43;xml" title="All news (RSS)" href="http://news.example.org/feeds/all.rss">`,
			`<link rel="alternate" type="application/feed&#43;json" title="All news (JSON Feed)" href="http://news.example.org/feeds/all.json">`,
			`<a href="/departments/home-office">Home Office</a>`, `<a href="/topics/human-trafficking">Human trafficking</a>`,
			"Spring statement published", "Joint action on modern slavery.",
		}, nil, 20},
		{"/departments/home-office", 200, []string{
			"<h1>Home Office</h1>", `href="http://news.example.org/feeds/departments/home-office.atom"`,
			`href="http://news.example.org/feeds/departments/home-office.rss"`, `href="http://news.example.org/feeds/departments/home-office.json"`,
			`<form method="post" action="/subscribe">`, `<input type="hidden" name="department" value="home-office">`,
			`<label for="subscribe-email">Email address</label>`, `name="email"`, `value="immediately" checked`, `value="daily"`, `value="weekly"`,
			`<legend>How often do you want emails?</legend>`, `name="csrf_token" value="`,
			`<a href="https://home-office.example.org">Visit the department’s website</a>`,
			`<a href="/departments/home-office?before=`,
		}, []string{"Spring statement"}, 20},
		{"/topics/human-trafficking", 200, []string{
			"<h1>Human trafficking</h1>", "Modern slavery and people smuggling.",
			`href="http://news.example.org/feeds/topics/human-trafficking.atom"`,
			`<input type="hidden" name="topic" value="human-trafficking">`,
			"UK and Romania pledge to tackle human trafficking", "Customs checks on trafficking routes",
		}, []string{"Older news"}, 2},
		{"/releases/" + uk, 200, []string{
			"<title>UK and Romania pledge to tackle human trafficking – Herald</title>",
			`<a href="/departments/home-office">Home Office</a>`,
			`<time datetime="2026-03-02T08:00:00Z">2 March 2026</time>`,
			// Sanitised HTML from the store is shown as HTML.
			"<p>Joint action on <strong>modern slavery</strong>.</p>",
			`<p>Read the <a href="https://home-office.example.org/plan">action plan</a>.</p>`,
			`<a href="https://home-office.example.org/news/uk-romania">Read the original on the publisher’s website</a>`,
			`<a href="/topics/human-trafficking">Human trafficking</a>`,
			`<h2 id="latest-heading">Latest news from Home Office</h2>`,
			`<a href="/releases/` + uk + `?print=1">Printable version</a>`,
			`href="http://news.example.org/feeds/departments/home-office.atom"`,
		}, []string{`<link rel="stylesheet" href="/static/print.css">`}, 8},
		{"/releases/" + uk + "?print=1", 200, []string{
			`<link rel="stylesheet" href="/static/print.css">`, `<meta name="robots" content="noindex">`, "Back to the page",
		}, []string{"Printable version"}, 8},
		{"/departments/nowhere", 404, []string{"Page not found"}, nil, 0},
		{"/topics/nowhere", 404, []string{"Page not found"}, nil, 0},
		{"/topics/Not%20A%20Slug", 404, []string{"Page not found"}, nil, 0},
		{"/releases/999999", 404, []string{"Page not found"}, nil, 0},
		{"/releases/abc", 404, []string{"Page not found"}, nil, 0},
		{"/releases/-1", 404, []string{"Page not found"}, nil, 0},
		{"/no/such/page", 404, []string{"Page not found"}, nil, 0},
		{"/departments/home-office?before=abc", 400, []string{"The page link is not valid."}, nil, 0},
		{"/departments/home-office?before=999999", 400, []string{"The page link is not valid."}, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			r := s.get(tc.path)
			wantStatus(t, r, tc.status)
			if ct := r.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(r.body, w) {
					t.Errorf("page has %q", w)
				}
			}
			if n := len(releaseItem.FindAllString(r.body, -1)); tc.items >= 0 && n != tc.items {
				t.Errorf("%d releases listed, want %d", n, tc.items)
			}
		})
	}
}

func TestListingPagesByLastReleaseShown(t *testing.T) {
	s := newSite(t)
	first := s.get("/departments/home-office")
	m := regexp.MustCompile(`href="(/departments/home-office\?before=\d+)"`).FindStringSubmatch(first.body)
	if m == nil {
		t.Fatal("no link to older news")
	}
	if !strings.Contains(first.body, "Home Office notice 05 on passports") || strings.Contains(first.body, "notice 04 on") {
		t.Fatal("the first page does not end at notice 05")
	}
	older := s.get(m[1])
	wantStatus(t, older, 200)
	for _, want := range []string{"Home Office notice 04 on passports", "Home Office notice 01 on passports", "Back to the latest news", "<h2 id=\"news-heading\">Older news</h2>"} {
		if !strings.Contains(older.body, want) {
			t.Errorf("second page lacks %q", want)
		}
	}
	if strings.Contains(older.body, "notice 05 on") || strings.Contains(older.body, "?before=") {
		t.Error("the second page repeats the first or links further")
	}
	if n := len(releaseItem.FindAllString(older.body, -1)); n != 4 {
		t.Errorf("second page lists %d releases, want 4", n)
	}
}

func TestPagesEscapeUpstreamText(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	src, err := s.db.SourceByName(ctx, "treasury-news")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.db.ApplyPull(ctx, src.ID, []store.Entry{{GUID: "xss", Link: "javascript:alert(1)",
		Title: `<script>alert("title")</script> & "quotes"`, Summary: "<p>ok</p>", Published: s.now}}, store.PullOptions{Topics: &rules.Topics{}, Alert: rules.AlertNew(0), Realert: rules.Realert})
	if err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(s.releaseID(`<script>alert("title")</script> & "quotes"`), 10)
	for _, path := range []string{"/", "/departments/treasury", "/releases/" + id, "/search?q=quotes"} {
		r := s.get(path)
		wantStatus(t, r, 200)
		if strings.Contains(r.body, `<script>alert("title")`) {
			t.Errorf("%s: title not escaped", path)
		}
		if !strings.Contains(r.body, "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt; &amp; &#34;quotes&#34;") {
			t.Errorf("%s: escaped title missing", path)
		}
		if strings.Contains(r.body, `href="javascript:`) {
			t.Errorf("%s: a javascript: link got through", path)
		}
	}
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	s := newSite(t)
	const csp = "default-src 'self'; img-src 'self' https: data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	for _, path := range []string{"/", "/nowhere", "/static/herald.css", "/healthz", "/api/v1/topics", "/admin/login", "/feeds/search.atom", "/search?q=x"} {
		r := s.get(path)
		for h, want := range map[string]string{
			"Content-Security-Policy": csp,
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "strict-origin-when-cross-origin",
			"X-Frame-Options":         "DENY",
		} {
			if got := r.Header.Get(h); got != want {
				t.Errorf("%s: %s = %q, want %q", path, h, got, want)
			}
		}
	}
	// No page needs inline script or style, which the policy forbids.
	for _, path := range []string{"/", "/departments/home-office", "/search?q=passports", "/admin/login"} {
		body := s.get(path).body
		if strings.Contains(body, "<script") || strings.Contains(body, "style=") || strings.Contains(body, "<style") {
			t.Errorf("%s has inline script or style", path)
		}
	}
}

func TestStaticFiles(t *testing.T) {
	s := newSite(t)
	r := s.get("/static/herald.css")
	wantStatus(t, r, 200)
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/css") || !strings.Contains(r.body, ":focus") {
		t.Errorf("herald.css: %q", r.Header.Get("Content-Type"))
	}
	for _, p := range []string{"/static/", "/static/nope.css", "/static/pages/layout.html"} {
		wantStatus(t, s.get(p), 404)
	}
}

// TestIcons: pages link the site's icon, the icons are served, and
// /favicon.ico (asked for by browsers and feed readers whatever the pages
// say) answers with a cacheable icon, or a redirect to a configured one.
func TestIcons(t *testing.T) {
	s := newSite(t)
	home := s.get("/")
	wantStatus(t, home, 200)
	for _, link := range []string{`<link rel="icon" href="/static/icon.svg" type="image/svg+xml">`,
		`<link rel="icon" href="/static/icon-64.png" type="image/png" sizes="64x64">`} {
		if !strings.Contains(home.body, link) {
			t.Errorf("the home page does not link %s", link)
		}
	}
	for path, ctype := range map[string]string{
		"/favicon.ico": "image/x-icon", "/static/icon.svg": "image/svg+xml", "/static/icon-64.png": "image/png",
		"/static/icon-512.png": "image/png", "/static/logo.png": "image/png",
	} {
		r := s.get(path)
		wantStatus(t, r, 200)
		if got := r.Header.Get("Content-Type"); !strings.HasPrefix(got, ctype) && !(path == "/favicon.ico" && got == "image/vnd.microsoft.icon") {
			t.Errorf("%s: Content-Type %q, want %s", path, got, ctype)
		}
		if !strings.HasPrefix(r.Header.Get("Cache-Control"), "public, max-age=") || len(r.body) == 0 {
			t.Errorf("%s: Cache-Control %q, %d bytes", path, r.Header.Get("Cache-Control"), len(r.body))
		}
	}
	if ico := s.get("/favicon.ico").body; !strings.HasPrefix(ico, "\x00\x00\x01\x00") || !strings.Contains(ico, "\x89PNG") {
		t.Errorf("/favicon.ico is not an ICO holding a PNG")
	}

	own := newSite(t, func(c *siteConfig) { c.cfg.Icon = "https://cdn.example.org/crest.png" })
	if home := own.get("/"); !strings.Contains(home.body, `<link rel="icon" href="https://cdn.example.org/crest.png">`) ||
		strings.Contains(home.body, "/static/icon.svg") {
		t.Error("a configured icon is not the one pages link")
	}
	r := own.get("/favicon.ico")
	wantStatus(t, r, 301)
	if r.Header.Get("Location") != "https://cdn.example.org/crest.png" {
		t.Errorf("/favicon.ico redirects to %q", r.Header.Get("Location"))
	}
}

func TestRequestIDsAndAccessLog(t *testing.T) {
	s := newSite(t)
	r := s.get("/search?q=private%40example.org", "X-Request-Id", "proxy-id-123")
	if got := r.Header.Get("X-Request-Id"); got != "proxy-id-123" {
		t.Errorf("X-Request-Id = %q, want the proxy's", got)
	}
	r = s.get("/", "X-Request-Id", "bad id with spaces")
	id := r.Header.Get("X-Request-Id")
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(id) {
		t.Errorf("a malformed incoming id gave %q, want a fresh one", id)
	}
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(s.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		if rec["msg"] == "http request" && rec["request_id"] == nil {
			t.Errorf("access log line without request_id: %s", line)
		}
		if rec["request_id"] == id && rec["route"] == "GET /{$}" && rec["status"] == float64(200) {
			found = true
		}
	}
	if !found {
		t.Errorf("no access log line for request %s:\n%s", id, s.logs.String())
	}
	if strings.Contains(s.logs.String(), "private@example.org") || strings.Contains(s.logs.String(), "private%40") {
		t.Error("the query string (with an address) reached the log")
	}
	// Paths that carry a token but match no route are logged without it.
	const secret = "AQMBAADnqwA9tB3PseW8NhBURMNV"
	s.get("/unsubscribe/" + secret + "/extra")
	s.get("/manage/" + secret + "/x/y")
	if strings.Contains(s.logs.String(), secret) {
		t.Errorf("a token reached the log:\n%s", s.logs.String())
	}
}

func TestHealthReadinessAndMetrics(t *testing.T) {
	schedulerErr := errors.New("scheduler stopped")
	var ready error
	s := newSite(t, withDeps(func(d *web.Deps) { d.Ready = func() error { return ready } }))
	r := s.get("/healthz")
	wantStatus(t, r, 200)
	if r.body != "ok\n" {
		t.Errorf("healthz = %q", r.body)
	}
	wantStatus(t, s.get("/readyz"), 200)
	ready = schedulerErr
	r = s.get("/readyz")
	wantStatus(t, r, 503)
	if !strings.Contains(r.body, "scheduler stopped") {
		t.Errorf("readyz = %q", r.body)
	}
	ready = nil

	s.get("/topics/human-trafficking")
	r = s.api(http.MethodGet, "/metrics", nil)
	wantStatus(t, r, 200)
	for _, want := range []string{
		`herald_http_request_duration_seconds_count{code="200",method="GET",route="GET /topics/{slug}"} 1`,
		`herald_http_request_duration_seconds_count{code="503",method="GET",route="GET /readyz"} 1`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	s.db.Close()
	r = s.get("/readyz")
	wantStatus(t, r, 503)
	if !strings.Contains(r.body, "database") {
		t.Errorf("readyz with a closed database = %q", r.body)
	}
}

// panicky is a mounted handler that fails in the worst way.
type panicky struct{}

func (panicky) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
}

func TestPanicsAnswer500AndAreLogged(t *testing.T) {
	s := newSite(t, withDeps(func(d *web.Deps) { d.Feeds = panicky{} }))
	r := s.get("/boom")
	wantStatus(t, r, 500)
	if !strings.Contains(r.body, "Sorry, there is a problem with the service") || strings.Contains(r.body, "kaboom") {
		t.Errorf("500 page = %s", r.body)
	}
	if !strings.Contains(s.logs.String(), `"panic":"kaboom"`) {
		t.Error("the panic was not logged")
	}
	wantStatus(t, s.get("/"), 200)
}

func TestSearchPage(t *testing.T) {
	s := newSite(t)
	tests := []struct {
		query  string
		status int
		items  int
		want   []string
	}{
		{"", 200, 0, []string{`<label for="q">Words to search for</label>`, `<option value="home-office">Home Office</option>`}},
		{"q=trafficking", 200, 2, []string{"2 results", `href="http://news.example.org/feeds/search.atom?q=trafficking"`,
			`<link rel="alternate" type="application/rss&#43;xml" title="Search results for “trafficking” (RSS)" href="http://news.example.org/feeds/search.rss?q=trafficking">`}},
		{"q=trafficking&department=treasury", 200, 1, []string{"1 result", `<option value="treasury" selected>Treasury</option>`, "Customs checks"}},
		{"topic=human-trafficking", 200, 2, []string{"2 results"}},
		{"q=passports", 200, 20, []string{"23 results, showing 1 to 20", `href="/search?q=passports&amp;page=2"`}},
		{"q=passports&page=2", 200, 3, []string{"showing 21 to 23", `href="/search?q=passports"`}},
		{"q=passports&page=9", 200, 0, []string{"No results on this page", `<a href="/search?q=passports">the first page</a>`, `href="/search?q=passports&amp;page=2" rel="prev"`}},
		{"q=%22unbalanced+AND+%28", 200, 0, []string{"No results"}},
		{"q=NEAR%28a+b%29+OR+title%3Ax", 200, 0, []string{"No results"}},
		{"q=%21%21%21", 200, 0, []string{"No results"}},
		{"q=trafficking&department=Bad%20Slug", 200, 2, []string{"2 results"}},
		{"q=" + strings.Repeat("passports+", 200), 200, 20, []string{"23 results"}},
		{"q=a%0d%0aSet-Cookie:%20x", 200, 0, []string{"No results"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := s.get("/search?" + tc.query)
			wantStatus(t, r, tc.status)
			if n := len(releaseItem.FindAllString(r.body, -1)); n != tc.items {
				t.Errorf("%d results listed, want %d", n, tc.items)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
		})
	}
}

func TestSearchFeeds(t *testing.T) {
	s := newSite(t)
	parser := gofeed.NewParser()
	for _, tc := range []struct{ format, ctype string }{
		{"atom", "application/atom+xml; charset=utf-8"},
		{"rss", "application/rss+xml; charset=utf-8"},
		{"json", "application/feed+json; charset=utf-8"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			path := "/feeds/search." + tc.format + "?q=trafficking"
			r := s.get(path)
			wantStatus(t, r, 200)
			if got := r.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type = %q", got)
			}
			f, err := parser.ParseString(r.body)
			if err != nil {
				t.Fatalf("feed does not parse: %v\n%s", err, r.body)
			}
			if len(f.Items) != 2 || f.Items[0].Title != "UK and Romania pledge to tackle human trafficking" {
				t.Fatalf("items = %d, first %q", len(f.Items), f.Items[0].Title)
			}
			id := s.releaseID("UK and Romania pledge to tackle human trafficking")
			if want := "tag:news.example.org,2026:release/" + strconv.FormatInt(id, 10); f.Items[0].GUID != want {
				t.Errorf("entry id = %q, want %q (the feeds package's id)", f.Items[0].GUID, want)
			}
			if want := "http://news.example.org/releases/" + strconv.FormatInt(id, 10); f.Items[0].Link != want {
				t.Errorf("entry link = %q, want %q", f.Items[0].Link, want)
			}
			if f.UpdatedParsed != nil && !f.UpdatedParsed.Equal(s.now.Add(-time.Hour)) {
				t.Errorf("feed updated = %v, want the newest entry's (%v)", f.UpdatedParsed, s.now.Add(-time.Hour))
			}
			if f.FeedLink != "http://news.example.org"+path {
				t.Errorf("self link = %q", f.FeedLink)
			}
			etag := r.Header.Get("ETag")
			again := s.get(path, "If-None-Match", etag)
			wantStatus(t, again, 304)
			if again.body != "" {
				t.Error("304 with a body")
			}
		})
	}
	// Same bytes for the same results: the feed's date is its newest
	// entry's, not the clock's.
	a, b := s.get("/feeds/search.atom?q=trafficking"), s.get("/feeds/search.atom?q=trafficking")
	if a.body != b.body {
		t.Error("two renders of the same search differ")
	}
	if !strings.Contains(a.body, "<updated>2026-03-02T08:00:00Z</updated>") {
		t.Errorf("feed updated is not the newest entry's:\n%s", a.body)
	}

	// An empty result is still a valid feed; JSON Feed keeps "items".
	r := s.get("/feeds/search.json?q=zeppelin")
	var doc map[string]any
	r.json(t, &doc)
	if items, ok := doc["items"].([]any); !ok || len(items) != 0 {
		t.Errorf("empty JSON feed items = %#v", doc["items"])
	}
	r = s.get("/feeds/search.atom?q=zeppelin")
	if err := xml.Unmarshal([]byte(r.body), new(struct{})); err != nil {
		t.Errorf("empty Atom feed is not XML: %v", err)
	}
}

// TestSearchFeedsServedLikeEveryFeed: a search feed comes with what every
// other feed has (gzip when asked, Last-Modified, a Link header, a place
// in the feed request metrics), and the same search within a minute is
// served again without searching.
func TestSearchFeedsServedLikeEveryFeed(t *testing.T) {
	s := newSite(t)
	requests := func(status string) float64 {
		mfs, err := s.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "herald_feed_requests_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "status" && l.GetValue() == status {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}
	const path = "/feeds/search.atom?q=trafficking"
	r := s.get(path, "Accept-Encoding", "gzip")
	wantStatus(t, r, 200)
	if r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("Content-Encoding %q, Vary %q: want a gzip copy", r.Header.Get("Content-Encoding"), r.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !strings.Contains(string(plain), "human trafficking") {
		t.Errorf("the gzip copy does not hold the feed: %v", err)
	}
	if _, err := http.ParseTime(r.Header.Get("Last-Modified")); err != nil {
		t.Errorf("Last-Modified %q: %v", r.Header.Get("Last-Modified"), err)
	}
	if want := `<http://news.example.org/feeds/search.atom?q=trafficking>; rel="self"`; r.Header.Get("Link") != want {
		t.Errorf("Link %q, want %q", r.Header.Get("Link"), want)
	}
	if got := requests("200"); got != 1 {
		t.Errorf("feed requests served: %v, want 1", got)
	}
	again := s.get(path, "If-Modified-Since", r.Header.Get("Last-Modified"))
	wantStatus(t, again, 304)
	if got := requests("304"); got != 1 {
		t.Errorf("feed requests not modified: %v, want 1", got)
	}

	// Kept per normalised query: a release stored now is not in the feed
	// until the kept one is a minute old; the same query written in
	// another order is the same feed.
	src, err := s.db.SourceByName(context.Background(), "home-office-news")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ApplyPull(context.Background(), src.ID, []store.Entry{{GUID: "late", Title: "Late news on trafficking",
		Link: "https://www.example.gov/late", Published: s.now}}, store.PullOptions{Topics: &rules.Topics{}, Alert: rules.AlertNew(0), Realert: rules.Realert}); err != nil {
		t.Fatal(err)
	}
	if body := s.get(path).body; strings.Contains(body, "Late news") {
		t.Error("a search feed served within the minute was searched again")
	}
	if body := s.get("/feeds/search.atom?q=trafficking&page=3").body; strings.Contains(body, "Late news") {
		t.Error("the same search with a parameter that does not count was searched again")
	}
}

func TestSearchFeedsStripWhatXMLForbids(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	src, _ := s.db.SourceByName(ctx, "treasury-news")
	_, err := s.db.ApplyPull(ctx, src.ID, []store.Entry{{GUID: "ctl", Link: "https://treasury.example.org/ctl",
		Title: "Budget\x01 control\x0b characters \u200f\U0001F4B7", Summary: "<p>a\x01b</p>", Body: "<p>]]> end\x1f</p>", Published: s.now}},
		store.PullOptions{Topics: &rules.Topics{}, Alert: rules.AlertNew(0), Realert: rules.Realert})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"atom", "rss"} {
		r := s.get("/feeds/search." + format + "?q=budget")
		wantStatus(t, r, 200)
		dec := xml.NewDecoder(strings.NewReader(r.body))
		for {
			_, err := dec.Token()
			if err != nil {
				if err.Error() != "EOF" {
					t.Errorf("%s feed is not well-formed XML: %v", format, err)
				}
				break
			}
		}
		f, err := gofeed.NewParser().ParseString(r.body)
		if err != nil || len(f.Items) != 1 || f.Items[0].Title != "Budget control characters \u200f\U0001F4B7" {
			t.Errorf("%s: %v %+v", format, err, f)
		}
	}
}

// The feeds package's handler mounts beside the search feeds without a
// route conflict, and each answers its own paths.
func TestMountsTheFeedsHandler(t *testing.T) {
	s := newSite(t, withMounts(func(t *testing.T, db *store.DB, d *web.Deps, _ string) {
		pub, err := publish.NewPublisher(db, publish.Config{BaseURL: "http://news.example.org"}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		d.Feeds = pub
	}))
	r := s.get("/feeds/search.atom?q=passports")
	wantStatus(t, r, 200)
	if !strings.Contains(r.body, "search for “passports”") {
		t.Errorf("search feed = %s", excerptBody(r.body))
	}
	r = s.get("/feeds/nothing-here.atom")
	wantStatus(t, r, 404)
	if strings.Contains(r.body, "<html") {
		t.Error("the feeds handler's 404 was answered by the page router")
	}
}

// loosePolicy is a mounted handler that sets a weaker policy of its own.
type loosePolicy struct{}

func (loosePolicy) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /loose", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "")
		w.Write([]byte("<p>hello</p>"))
	})
}

func TestMountedHandlersKeepTheSitePolicy(t *testing.T) {
	s := newSite(t, withDeps(func(d *web.Deps) { d.Feeds = loosePolicy{} }))
	r := s.get("/loose")
	wantStatus(t, r, 200)
	if got := r.Header.Get("Content-Security-Policy"); !strings.HasPrefix(got, "default-src 'self'; ") {
		t.Errorf("Content-Security-Policy = %q", got)
	}
	if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", got)
	}
}

func TestIncomingRequestIDs(t *testing.T) {
	s := newSite(t)
	fresh := regexp.MustCompile(`^[0-9a-f]{16}$`)
	for _, tc := range []struct {
		incoming string
		kept     bool
	}{
		{"Proxy_id.2026-abc", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"a/b", false},
		{"id\u00e9", false},
		{"a b", false},
		{"", false},
	} {
		var r response
		if tc.incoming == "" {
			r = s.get("/feeds/nothing.atom")
		} else {
			r = s.get("/feeds/nothing.atom", "X-Request-Id", tc.incoming)
		}
		got := r.Header.Get("X-Request-Id")
		if tc.kept && got != tc.incoming || !tc.kept && !fresh.MatchString(got) {
			t.Errorf("incoming %q: X-Request-Id %q, kept %v", tc.incoming, got, tc.kept)
		}
	}
}
