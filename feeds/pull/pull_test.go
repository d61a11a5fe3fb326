package pull_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"

	"herald/feeds/pull"
	"herald/feeds/rules"
	"herald/store"
	"herald/store/storetest"
)

// pullEnv is a real store in a temporary directory and a Puller writing to
// it, both on a clock the test controls.
type pullEnv struct {
	t      *testing.T
	db     *store.DB
	cfg    pull.Config
	puller *pull.Puller
	clk    *storetest.Clock
}

func newPullEnv(t *testing.T, cfg pull.Config, reg prometheus.Registerer) *pullEnv {
	t.Helper()
	// The test publishers are on loopback; pulling from them needs the
	// opt-in a real deployment leaves off (fetch_test.go tests the refusal).
	cfg.Guard.AllowPrivate = true
	return newGuardedPullEnv(t, cfg, reg)
}

// newGuardedPullEnv is newPullEnv with cfg.Guard as given: by default,
// pulls reach public addresses only.
func newGuardedPullEnv(t *testing.T, cfg pull.Config, reg prometheus.Registerer) *pullEnv {
	t.Helper()
	e := &pullEnv{t: t, clk: storetest.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))}
	db, err := store.Open(context.Background(), storetest.Database(t), store.WithClock(e.clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db, e.cfg = db, cfg
	e.puller = pull.NewPuller(db, cfg, reg)
	e.puller.Now = e.clock
	ctx := context.Background()
	for _, d := range []store.Department{{Slug: "coastal", Name: "Department for Coastal Resilience"}, {Slug: "broadband", Name: "Office for Rural Broadband"}} {
		if _, err := db.UpsertDepartment(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	_, err = db.UpsertTopic(ctx, store.Topic{Slug: "harbours", Title: "Harbours and ports",
		Rule: store.Rule{Keywords: []string{"harbour", "ferry"}, Categories: []string{"harbours"}}}, &rules.Topics{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *pullEnv) clock() time.Time { return e.clk.Now() }

func (e *pullEnv) advance(d time.Duration) { e.clk.Add(d) }

func (e *pullEnv) addSource(name, url, format string) store.Source {
	e.t.Helper()
	s, err := e.db.UpsertSource(context.Background(), store.Source{Name: name, URL: url, DepartmentSlug: "coastal", Format: format, Enabled: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// editSourceURL makes the puller see url as the source's address, as if
// the stored row had been edited by hand past the store's checks, which
// refuse such an edit. Failures are still recorded in the real store.
func (e *pullEnv) editSourceURL(name, url string) {
	e.puller = pull.NewPuller(handEditedStore{Store: e.db, name: name, url: url}, e.cfg, nil)
	e.puller.Now = e.clock
}

// handEditedStore is a store whose source listing shows url as the
// address of the source called name.
type handEditedStore struct {
	pull.Store
	name, url string
}

func (s handEditedStore) Sources(ctx context.Context) ([]store.Source, error) {
	all, err := s.Store.Sources(ctx)
	for i := range all {
		if all[i].Name == s.name {
			all[i].URL = s.url
		}
	}
	return all, err
}

func (e *pullEnv) source(name string) store.Source {
	e.t.Helper()
	s, err := e.db.SourceByName(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// pull runs one Pull and returns its reports by source name.
func (e *pullEnv) pull(req pull.Request) map[string]pull.SourceReport {
	e.t.Helper()
	reports, err := e.puller.Pull(context.Background(), req)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]pull.SourceReport{}
	for _, r := range reports {
		if _, dup := out[r.Source]; dup {
			e.t.Fatalf("source %s reported twice", r.Source)
		}
		out[r.Source] = r
	}
	return out
}

func (e *pullEnv) releases(source string) []store.Release {
	e.t.Helper()
	all, err := e.db.Releases(context.Background(), store.ReleaseFilter{Limit: 10000, WithTopics: true})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []store.Release
	for _, r := range all {
		if r.Source == source {
			out = append(out, r)
		}
	}
	return out
}

// pullPublisher serves fixtures the way a well-behaved publisher does:
// with an ETag and Last-Modified, answering conditional requests with 304
// unless told to ignore them. It counts requests per path.
type pullPublisher struct {
	*httptest.Server
	ignoreValidators atomic.Bool
	mu               sync.Mutex
	docs             map[string]pullDoc
	hits             map[string]int
	lastHeader       map[string]http.Header
}

type pullDoc struct {
	body        []byte
	contentType string
}

func newPullPublisher(t *testing.T) *pullPublisher {
	p := &pullPublisher{docs: map[string]pullDoc{}, hits: map[string]int{}, lastHeader: map[string]http.Header{}}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *pullPublisher) set(path string, body []byte, contentType string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.docs[path] = pullDoc{body, contentType}
	return p.URL + path
}

func (p *pullPublisher) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	doc, ok := p.docs[r.URL.Path]
	p.hits[r.URL.Path]++
	p.lastHeader[r.URL.Path] = r.Header.Clone()
	p.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", doc.contentType)
	if p.ignoreValidators.Load() {
		w.Write(doc.body)
		return
	}
	w.Header().Set("ETag", fmt.Sprintf(`"%x"`, store.Entry{Body: string(doc.body)}.Hash()))
	http.ServeContent(w, r, "", time.Date(2026, 2, 27, 16, 0, 0, 0, time.UTC), strings.NewReader(string(doc.body)))
}

func (p *pullPublisher) hitCount(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits[path]
}

func (p *pullPublisher) header(path string) http.Header {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastHeader[path]
}

var pullFormatFixtures = []struct {
	name, file, contentType, format string
	items                           int
}{
	{"atom", "atom.xml", "application/atom+xml", store.FormatAuto, 3},
	{"rss2", "rss2.xml", "application/rss+xml; charset=utf-8", store.FormatAuto, 3},
	{"rss1", "rss1.rdf", "application/rdf+xml", store.FormatRSS, 2},
	{"jsonfeed", "jsonfeed.json", "application/feed+json", store.FormatAuto, 3},
	{"govuk", "govuk-search.json", "application/json", store.FormatGovUKSearch, 3},
	{"latin1", "latin1.xml", "text/xml", store.FormatAuto, 1},
}

func TestPullEveryFormatOnceThenNotModified(t *testing.T) {
	reg := prometheus.NewRegistry()
	env := newPullEnv(t, pull.Config{}, reg)
	pub := newPullPublisher(t)
	for _, f := range pullFormatFixtures {
		env.addSource(f.name, pub.set("/"+f.file, pullFixture(t, f.file), f.contentType), f.format)
	}

	first := env.pull(pull.Request{})
	total := 0
	for _, f := range pullFormatFixtures {
		r := first[f.name]
		if r.Status != pull.StatusNew || r.New != f.items || r.Err != "" || len(r.NewIDs) != f.items {
			t.Errorf("%s: first pull = %+v, want %d new", f.name, r, f.items)
		}
		if got := len(env.releases(f.name)); got != f.items {
			t.Errorf("%s: %d releases stored, want %d", f.name, got, f.items)
		}
		if !cmp.Equal(r.Feeds, []string{"all", "department:coastal"}, cmpopts.SortSlices(func(a, b string) bool { return a < b })) &&
			!cmp.Equal(r.Feeds, []string{"all", "department:coastal", "topic:harbours"}, cmpopts.SortSlices(func(a, b string) bool { return a < b })) {
			t.Errorf("%s: dirty feeds %v", f.name, r.Feeds)
		}
		total += f.items
	}
	// The topic was tagged in the same pull.
	atom := env.releases("atom")
	var tagged []string
	for _, r := range atom {
		if len(r.Topics) > 0 {
			tagged = append(tagged, r.GUID)
		}
	}
	if want := []string{"tag:coastal.example.org,2026:news/1042"}; !cmp.Equal(tagged, want) {
		t.Errorf("tagged with harbours: %v, want %v", tagged, want)
	}

	env.advance(5 * time.Minute)
	second := env.pull(pull.Request{})
	for _, f := range pullFormatFixtures {
		r := second[f.name]
		if r.Status != pull.StatusNotModified || r.New != 0 || r.Updated != 0 {
			t.Errorf("%s: second pull = %+v, want not-modified", f.name, r)
		}
		h := pub.header("/" + f.file)
		if h.Get("If-None-Match") == "" || h.Get("If-Modified-Since") != "Fri, 27 Feb 2026 16:00:00 GMT" {
			t.Errorf("%s: conditional headers not sent: %v", f.name, h)
		}
		if s := env.source(f.name); s.LastStatus != "not-modified" || s.FailureCount != 0 {
			t.Errorf("%s: stored status %q, failures %d", f.name, s.LastStatus, s.FailureCount)
		}
	}

	// A publisher that ignores validators sends everything again: nothing
	// new is stored.
	pub.ignoreValidators.Store(true)
	env.advance(5 * time.Minute)
	third := env.pull(pull.Request{})
	for _, f := range pullFormatFixtures {
		r := third[f.name]
		if r.Status != pull.StatusUnchanged || r.New != 0 || r.Updated != 0 || r.Unchanged != f.items || len(r.Feeds) != 0 {
			t.Errorf("%s: third pull = %+v, want %d unchanged", f.name, r, f.items)
		}
	}
	if n, _ := env.db.CountReleases(context.Background()); n != total {
		t.Errorf("%d releases stored after three pulls, want %d", n, total)
	}

	if got := pullCounter(t, reg, "herald_pulls_total", map[string]string{"source": "atom", "result": "not-modified"}); got != 1 {
		t.Errorf("herald_pulls_total{atom,not-modified} = %v, want 1", got)
	}
	if got := pullCounter(t, reg, "herald_releases_stored_total", map[string]string{"kind": "new"}); got != float64(total) {
		t.Errorf("herald_releases_stored_total{new} = %v, want %d", got, total)
	}
}

// pullCounter reads one counter from a registry.
func pullCounter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestPullEditUpdatesRelease(t *testing.T) {
	env := newPullEnv(t, pull.Config{}, nil)
	pub := newPullPublisher(t)
	good := pullFixture(t, "good.xml")
	env.addSource("coastal", pub.set("/feed", good, "application/rss+xml"), store.FormatAuto)
	if r := env.pull(pull.Request{})["coastal"]; r.Status != pull.StatusNew || r.New != 2 {
		t.Fatalf("first pull = %+v", r)
	}
	before := env.releases("coastal")

	env.advance(time.Hour)
	edited := strings.Replace(string(good), "Harbour dredging contract awarded", "Harbour dredging contract awarded to two firms", 1)
	pub.set("/feed", []byte(edited), "application/rss+xml")
	r := env.pull(pull.Request{})["coastal"]
	if r.Status != pull.StatusUpdated || r.Updated != 1 || r.Unchanged != 1 || r.New != 0 {
		t.Fatalf("pull after an edit = %+v, want 1 updated and 1 unchanged", r)
	}
	after := env.releases("coastal")
	for i := range before {
		b, a := before[i], after[i]
		if b.GUID != a.GUID || !a.Published.Equal(b.Published) {
			t.Fatalf("release %s moved: %+v -> %+v", b.GUID, b, a)
		}
		if b.GUID == "dcr-good-1" && (a.Title != "Harbour dredging contract awarded to two firms" || a.EditCount != 1 || !a.Updated.After(b.Updated)) {
			t.Errorf("edited release = %+v", a)
		}
		if b.GUID == "dcr-good-2" && !cmp.Equal(a, b) {
			t.Errorf("unedited release changed:\n%s", cmp.Diff(b, a))
		}
	}
}

// TestPullBadInput feeds one source a hostile or broken answer after a good
// pull. Each case ends in a clear per-source error or a best-effort
// release, and the releases stored before are never altered.
func TestPullBadInput(t *testing.T) {
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret.txt")
	if err := os.WriteFile(secret, []byte("HERALD-XXE-CANARY-51b2"), 0o600); err != nil {
		t.Fatal(err)
	}
	xxe := strings.ReplaceAll(string(pullFixture(t, "xxe.xml.tmpl")), "{{SECRET}}", secret)
	rssItem := func(title string) []byte {
		return []byte(`<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>c</title><link>https://coastal.example.org/</link>` +
			`<item><title>` + title + `</title><link>https://coastal.example.org/news/odd</link><guid>dcr-odd</guid>` +
			`<description>Body ` + title + `</description></item></channel></rss>`)
	}
	serve := func(ct string, body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			w.Write(body)
		}
	}

	cases := []struct {
		name    string
		timeout time.Duration
		handler http.HandlerFunc
		// setup runs after the good pull, before the bad one.
		setup   func(t *testing.T, env *pullEnv, srcURL string)
		wantErr string
		// check inspects a best-effort result (wantErr == "").
		check func(t *testing.T, r pull.SourceReport, added []store.Release)
	}{
		{name: "malformed XML", handler: serve("application/rss+xml", pullFixture(t, "malformed.xml")),
			wantErr: "malformed RSS feed: XML syntax error on line 11"},
		{name: "HTML error page served as a feed", handler: serve("text/html; charset=utf-8", pullFixture(t, "html-error.html")),
			wantErr: "not a feed: got an HTML page"},
		{name: "HTML error page with an error status", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write(pullFixture(t, "html-error.html"))
		}, wantErr: "HTTP 503 Service Unavailable"},
		{name: "truncated document", handler: serve("application/rss+xml", pullFixture(t, "truncated.xml")),
			wantErr: "XML syntax error on line 17: unexpected EOF"},
		{name: "connection closed mid-body", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "5000")
			w.Write(pullFixture(t, "good.xml")[:300])
		}, wantErr: "connection closed before the whole body arrived (truncated)"},
		{name: "billion laughs", handler: serve("application/rss+xml", pullFixture(t, "billion-laughs.xml")),
			check: func(t *testing.T, r pull.SourceReport, added []store.Release) {
				if len(added) != 1 || added[0].Title != "Entity expansion &lol9;" || len(added[0].Summary) > 100 {
					t.Fatalf("added %+v, want one release with the entity left literal", added)
				}
			}},
		{name: "external entity (XXE)", handler: serve("application/rss+xml", []byte(xxe)),
			check: func(t *testing.T, r pull.SourceReport, added []store.Release) {
				if len(added) != 1 || added[0].Title != "Leaked: &xxe;" {
					t.Fatalf("added %+v, want one release with the entity left literal", added)
				}
			}},
		{name: "invalid UTF-8", handler: serve("application/rss+xml; charset=utf-8", rssItem("Pier \xff\xfe reopens")),
			check: func(t *testing.T, r pull.SourceReport, added []store.Release) {
				if len(added) != 1 || added[0].Title != "Pier \uFFFD reopens" || added[0].Summary != "Body Pier \uFFFD reopens" {
					t.Fatalf("added %+v, want the bad bytes replaced", added)
				}
			}},
		{name: "control characters in titles", handler: serve("application/rss+xml", rssItem("Tide\x01 tables\x1b for &#x85;March\u0080\u009b &#x7f;\u200f")),
			check: func(t *testing.T, r pull.SourceReport, added []store.Release) {
				// &#x85; is an ellipsis in HTML's reading of numeric references.
				if len(added) != 1 || added[0].Title != "Tide tables for \u2026March \u200f" {
					t.Fatalf("added %+v, want controls stripped", added)
				}
			}},
		{name: "50 MB body, streamed", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/rss+xml")
			w.Write([]byte(`<?xml version="1.0"?><rss version="2.0"><channel><title>big</title>`))
			chunk := []byte(strings.Repeat("<item><title>Filler item</title><description>padding padding</description></item>\n", 800))
			for sent := 0; sent < 50<<20; sent += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, wantErr: "body larger than 10485760 bytes"},
		{name: "50 MB body, announced", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(50<<20))
			w.Write([]byte("<rss>"))
		}, wantErr: "body larger than 10485760 bytes (Content-Length 52428800)"},
		{name: "server stalls mid-body", timeout: 300 * time.Millisecond, handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/rss+xml")
			w.Write(pullFixture(t, "good.xml")[:400])
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}, wantErr: "timed out after 300ms (reading body)"},
		{name: "server never answers", timeout: 300 * time.Millisecond, handler: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}, wantErr: "timed out after 300ms (request)"},
		{name: "redirect loop", handler: func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/feed" {
				http.Redirect(w, r, "/moved", http.StatusFound)
				return
			}
			http.Redirect(w, r, "/feed", http.StatusMovedPermanently)
		}, wantErr: "redirect loop"},
		{name: "redirect chain longer than five", handler: func(w http.ResponseWriter, r *http.Request) {
			n := 0
			fmt.Sscanf(r.URL.Query().Get("n"), "%d", &n)
			http.Redirect(w, r, fmt.Sprintf("/feed?n=%d", n+1), http.StatusFound)
		}, wantErr: "too many redirects: gave up after 5"},
		{name: "duplicate ids within one feed", handler: serve("application/rss+xml", pullFixture(t, "duplicate-ids.xml")),
			check: func(t *testing.T, r pull.SourceReport, added []store.Release) {
				if r.New != 1 || len(added) != 1 || added[0].Title != "Ferry timetable changes (corrected)" {
					t.Fatalf("report %+v, added %+v: want only the first of the duplicates", r, added)
				}
			}},
		{name: "entries with no id, no date or no link", handler: serve("application/rss+xml", pullFixture(t, "missing-fields.xml")),
			check: func(t *testing.T, r pull.SourceReport, added []store.Release) {
				if r.New != 5 || len(added) != 5 {
					t.Fatalf("report %+v: want 5 new (the empty item dropped)", r)
				}
				byTitle := map[string]store.Release{}
				for _, a := range added {
					byTitle[a.Title] = a
				}
				firstSeen := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
				if a := byTitle["No guid, so the link keys it"]; a.GUID != "https://coastal.example.org/news/no-guid" {
					t.Errorf("no guid: %+v", a)
				}
				if a := byTitle["No guid and no link, but a date"]; !strings.HasPrefix(a.GUID, "herald:") || a.Link != "" {
					t.Errorf("no guid and no link: %+v", a)
				}
				if a := byTitle["No date at all"]; !a.Published.Equal(firstSeen) {
					t.Errorf("no date: published %v, want first seen %v", a.Published, firstSeen)
				}
				if a := byTitle["Dated far in the future"]; !a.Published.Equal(firstSeen) {
					t.Errorf("future date: published %v, want first seen %v", a.Published, firstSeen)
				}
				if a := byTitle["An untitled notice about tide tables for March."]; a.GUID != "dcr-untitled" {
					t.Errorf("untitled: %+v", a)
				}
			}},
		{name: "source URL that is not http(s)", handler: serve("application/rss+xml", pullFixture(t, "good.xml")),
			setup: func(t *testing.T, env *pullEnv, _ string) {
				// The store refuses such a URL; a row edited by hand must
				// still never make the puller read a local file.
				env.editSourceURL("coastal", "file://"+secret)
			}, wantErr: "must start with http:// or https://"},
		{name: "not found", handler: http.NotFound, wantErr: "HTTP 404 Not Found"},
		{name: "empty body", handler: serve("application/rss+xml", nil), wantErr: "not a feed: the body is empty"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newPullEnv(t, pull.Config{Timeout: tc.timeout}, nil)
			var bad atomic.Bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if bad.Load() {
					tc.handler(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/rss+xml")
				w.Write(pullFixture(t, "good.xml"))
			}))
			t.Cleanup(srv.Close)
			env.addSource("coastal", srv.URL+"/feed", store.FormatAuto)
			if r := env.pull(pull.Request{})["coastal"]; r.Status != pull.StatusNew || r.New != 2 {
				t.Fatalf("good pull = %+v", r)
			}
			before := env.releases("coastal")

			env.advance(time.Hour)
			bad.Store(true)
			if tc.setup != nil {
				tc.setup(t, env, srv.URL+"/feed")
			}
			r := env.pull(pull.Request{})["coastal"]
			after := env.releases("coastal")
			src := env.source("coastal")

			// What was stored before is intact, whatever happened.
			kept := map[string]store.Release{}
			var added []store.Release
			for _, a := range after {
				kept[a.GUID] = a
			}
			for _, b := range before {
				if diff := cmp.Diff(b, kept[b.GUID]); diff != "" {
					t.Errorf("stored release %s changed (-before +after):\n%s", b.GUID, diff)
				}
				delete(kept, b.GUID)
			}
			for _, a := range kept {
				added = append(added, a)
			}
			for _, a := range added {
				for _, s := range []string{a.Title, a.Summary, a.Body, a.Link, a.GUID} {
					if strings.Contains(s, "HERALD-XXE-CANARY") || !utf8.ValidString(s) {
						t.Errorf("unsafe stored text %q", s)
					}
				}
				if strings.IndexFunc(a.Title, unicode.IsControl) >= 0 {
					t.Errorf("control character in stored title %q", a.Title)
				}
			}

			if tc.wantErr != "" {
				if r.Status != pull.StatusFailed || !strings.Contains(r.Err, tc.wantErr) {
					t.Fatalf("report = %+v, want failed with %q", r, tc.wantErr)
				}
				if len(added) != 0 {
					t.Errorf("a failed pull stored %d releases", len(added))
				}
				if src.FailureCount != 1 || src.LastError != r.Err || src.LastStatus != pull.StatusFailed {
					t.Errorf("stored source: failures %d, status %q, error %q; want 1, failed, %q", src.FailureCount, src.LastStatus, src.LastError, r.Err)
				}
				if now := env.clock(); !src.NextPullAt.After(now.Add(4*time.Minute)) || src.NextPullAt.After(now.Add(6*time.Minute)) || !src.NextPullAt.Equal(r.NextPull) {
					t.Errorf("next pull %v (report %v), want about 5 minutes after %v", src.NextPullAt, r.NextPull, now)
				}
				if strings.Contains(r.Err, "HERALD-XXE-CANARY") {
					t.Errorf("error leaks the file: %q", r.Err)
				}
				return
			}
			if r.Status == pull.StatusFailed || r.Err != "" {
				t.Fatalf("report = %+v, want a best-effort success", r)
			}
			if src.FailureCount != 0 || src.LastError != "" {
				t.Errorf("stored source failures %d, error %q", src.FailureCount, src.LastError)
			}
			tc.check(t, r, added)
		})
	}
}

func TestPullFailingSourceDoesNotStopOthers(t *testing.T) {
	env := newPullEnv(t, pull.Config{Concurrency: 2, Timeout: time.Second, MaxBackoff: 6 * time.Hour}, nil)
	pub := newPullPublisher(t)
	for _, f := range pullFormatFixtures[:4] {
		env.addSource(f.name, pub.set("/"+f.file, pullFixture(t, f.file), f.contentType), f.format)
	}
	var broken atomic.Bool
	broken.Store(true)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			http.Error(w, "database on fire", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/rss+xml")
		w.Write(pullFixture(t, "good.xml"))
	}))
	t.Cleanup(failing.Close)
	stalled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(stalled.Close)
	env.addSource("failing", failing.URL+"/feed", store.FormatAuto)
	env.addSource("stalled", stalled.URL+"/feed", store.FormatAuto)

	reports := env.pull(pull.Request{})
	for _, f := range pullFormatFixtures[:4] {
		if r := reports[f.name]; r.Status != pull.StatusNew || r.New != f.items {
			t.Errorf("%s = %+v, want %d new despite a failing neighbour", f.name, r, f.items)
		}
	}
	now := env.clock()
	for name, wantErr := range map[string]string{"failing": "HTTP 500 Internal Server Error", "stalled": "timed out after 1s"} {
		r := reports[name]
		src := env.source(name)
		if r.Status != pull.StatusFailed || !strings.Contains(r.Err, wantErr) {
			t.Errorf("%s = %+v, want failed with %q", name, r, wantErr)
		}
		if src.FailureCount != 1 || src.LastError != r.Err || !src.NextPullAt.After(now) {
			t.Errorf("%s stored: failures %d, error %q, next pull %v", name, src.FailureCount, src.LastError, src.NextPullAt)
		}
		if d := src.NextPullAt.Sub(now); d < 5*time.Minute || d > 5*time.Minute+30*time.Second {
			t.Errorf("%s backs off %v, want 5m plus at most a tenth", name, d)
		}
	}
	if !pull.AnyFailed([]pull.SourceReport{reports["atom"], reports["failing"]}) || pull.AnyFailed([]pull.SourceReport{reports["atom"]}) {
		t.Error("AnyFailed disagrees with the statuses")
	}

	// Within the backoff, a scheduled pull skips the failing sources.
	env.advance(time.Minute)
	reports = env.pull(pull.Request{})
	for _, name := range []string{"failing", "stalled"} {
		if r := reports[name]; r.Status != pull.StatusSkipped || !r.NextPull.Equal(env.source(name).NextPullAt) {
			t.Errorf("%s during backoff = %+v, want skipped", name, r)
		}
	}
	if got := pub.hitCount("/atom.xml"); got != 2 {
		t.Errorf("healthy source fetched %d times, want 2", got)
	}

	// Forced, it is tried again and backs off twice as long.
	reports = env.pull(pull.Request{Force: true, Sources: nil})
	now = env.clock()
	src := env.source("failing")
	if r := reports["failing"]; r.Status != pull.StatusFailed || src.FailureCount != 2 {
		t.Fatalf("forced pull = %+v, failures %d", r, src.FailureCount)
	}
	if d := src.NextPullAt.Sub(now); d < 10*time.Minute || d > 11*time.Minute {
		t.Errorf("second failure backs off %v, want 10m plus at most a tenth", d)
	}

	// Named explicitly it is pulled despite the backoff; once healthy its
	// failure count is cleared.
	broken.Store(false)
	reports = env.pull(pull.Request{Sources: []string{"failing"}})
	if len(reports) != 1 || reports["failing"].Status != pull.StatusNew {
		t.Fatalf("explicit pull = %+v", reports)
	}
	if src := env.source("failing"); src.FailureCount != 0 || src.LastError != "" || !src.NextPullAt.IsZero() {
		t.Errorf("recovered source: failures %d, error %q, next %v", src.FailureCount, src.LastError, src.NextPullAt)
	}
}

func TestPullBackoffIsCapped(t *testing.T) {
	env := newPullEnv(t, pull.Config{MaxBackoff: time.Hour}, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "gone fishing", http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	env.addSource("coastal", srv.URL, store.FormatAuto)
	var last time.Duration
	for i := 0; i < 8; i++ {
		r := env.pull(pull.Request{Force: true})["coastal"]
		last = r.NextPull.Sub(env.clock())
	}
	if src := env.source("coastal"); src.FailureCount != 8 {
		t.Fatalf("failures = %d, want 8", src.FailureCount)
	}
	if last < time.Hour || last > time.Hour+6*time.Minute {
		t.Fatalf("eighth failure backs off %v, want the 1h cap plus at most a tenth", last)
	}
}

func TestPullRetryAfterIsHonoured(t *testing.T) {
	env := newPullEnv(t, pull.Config{}, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	env.addSource("coastal", srv.URL, store.FormatAuto)
	r := env.pull(pull.Request{})["coastal"]
	if d := r.NextPull.Sub(env.clock()); r.Status != pull.StatusFailed || d != time.Hour {
		t.Fatalf("report %+v: next pull in %v, want 1h as the publisher asked", r, d)
	}
}

func TestPullUnknownSourceIsAnError(t *testing.T) {
	env := newPullEnv(t, pull.Config{}, nil)
	env.addSource("coastal", "https://coastal.example.org/feed", store.FormatAuto)
	_, err := env.puller.Pull(context.Background(), pull.Request{Sources: []string{"coastal", "nowhere"}})
	if err == nil || !strings.Contains(err.Error(), `unknown source "nowhere"`) {
		t.Fatalf("err = %v, want it to name the unknown source", err)
	}
	if src := env.source("coastal"); !src.LastPullAt.IsZero() {
		t.Fatal("a request with an unknown source still pulled the others")
	}
}

func TestPullSkipsDisabledSourcesUnlessNamed(t *testing.T) {
	env := newPullEnv(t, pull.Config{}, nil)
	pub := newPullPublisher(t)
	env.addSource("coastal", pub.set("/good.xml", pullFixture(t, "good.xml"), "application/rss+xml"), store.FormatAuto)
	if err := env.db.SetSourceEnabled(context.Background(), "coastal", false); err != nil {
		t.Fatal(err)
	}
	if reports := env.pull(pull.Request{}); len(reports) != 0 {
		t.Fatalf("pulled disabled sources: %+v", reports)
	}
	if r := env.pull(pull.Request{Sources: []string{"coastal"}})["coastal"]; r.Status != pull.StatusNew {
		t.Fatalf("named disabled source = %+v", r)
	}
}

func TestPullCancelledDoesNotPenaliseSources(t *testing.T) {
	env := newPullEnv(t, pull.Config{}, nil)
	started := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	env.addSource("coastal", srv.URL, store.FormatAuto)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	reports, err := env.puller.Pull(ctx, pull.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || reports[0].Status != pull.StatusFailed || !strings.Contains(reports[0].Err, "cancelled") {
		t.Fatalf("reports = %+v", reports)
	}
	if src := env.source("coastal"); src.FailureCount != 0 || !src.NextPullAt.IsZero() {
		t.Fatalf("shutdown counted against the source: failures %d, next %v", src.FailureCount, src.NextPullAt)
	}
}

// TestPullGovUKLabelsReplaceStoredSlugs: releases an older Herald stored
// from the GOV.UK search API with raw document-type slugs as categories
// take the labels on the next pull, as an edit: updated in place, feeds
// re-rendered, and no one alerted again (the title and public_timestamp
// did not move), even for a topic that selects on the category.
func TestPullGovUKLabelsReplaceStoredSlugs(t *testing.T) {
	env := newPullEnv(t, pull.Config{}, nil)
	ctx := context.Background()
	if _, err := env.db.UpsertTopic(ctx, store.Topic{Slug: "press", Title: "Press releases",
		Rule: store.Rule{Categories: []string{"Press release"}}}, &rules.Topics{}); err != nil {
		t.Fatal(err)
	}
	pub := newPullPublisher(t)
	body := pullFixture(t, "govuk-search.json")
	feedURL := pub.set("/api/search.json", body, "application/json")
	src := env.addSource("govuk", feedURL, store.FormatGovUKSearch)

	// What an older Herald stored: the same entries with the slugs.
	pf, err := pull.ParseFeed(body, "application/json", store.FormatGovUKSearch, feedURL)
	if err != nil {
		t.Fatal(err)
	}
	n := pull.NewNormalizer()
	var old []store.Entry
	for _, it := range pf.Items {
		e, ok := n.Normalize(it, env.clock())
		if !ok {
			t.Fatalf("item %q dropped", it.Title)
		}
		e.Categories = []string{e.DocumentType}
		old = append(old, e)
	}
	if _, err := env.db.ApplyPull(ctx, src.ID, old, store.PullOptions{Topics: &rules.Topics{},
		Alert: rules.AlertNew(0), Realert: rules.Realert}); err != nil {
		t.Fatal(err)
	}

	env.advance(time.Hour)
	r := env.pull(pull.Request{})["govuk"]
	if r.Status != pull.StatusUpdated || r.Updated != 3 || r.New != 0 || r.Alerts != 0 {
		t.Fatalf("pull over stored slugs = %+v, want 3 updated and no alerts", r)
	}
	labels := map[string][]string{}
	for _, rel := range env.releases("govuk") {
		labels[rel.DocumentType] = rel.Categories
	}
	want := map[string][]string{
		"press_release": {"Press release", "Department for Tidy Streets", "waste-standards-agency"},
		"news_story":    {"News story", "department-for-tidy-streets"},
		"speech":        {"Speech"},
	}
	if d := cmp.Diff(want, labels); d != "" {
		t.Errorf("categories after the pull (-want +got):\n%s", d)
	}
	if r := env.pull(pull.Request{})["govuk"]; r.Updated != 0 || r.Alerts != 0 {
		t.Errorf("a second pull changed something: %+v", r)
	}
}
