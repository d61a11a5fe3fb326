package publish_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"herald/feeds/publish"
	"herald/feeds/rules"
	"herald/store"
	"herald/store/storetest"
)

var renderUpdate = flag.Bool("update", false, "rewrite testdata/golden from the current feed renderer")

// renderEnv is a store in a temporary SQLite file with a clock the test
// moves, and a publisher over it.
type renderEnv struct {
	t   testing.TB
	ctx context.Context
	db  *store.DB
	now time.Time
	// nowFn, when set, is the store's clock in place of now.
	nowFn   func() time.Time
	pub     *publish.Publisher
	mux     *http.ServeMux
	cfg     publish.Config
	sources map[string]store.Source
}

const renderBase = "https://herald.example.org"

func newRenderEnv(t testing.TB, cfg publish.Config) *renderEnv {
	t.Helper()
	e := &renderEnv{t: t, ctx: context.Background(), now: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC),
		sources: map[string]store.Source{}}
	clock := func() time.Time {
		if e.nowFn != nil {
			return e.nowFn()
		}
		return e.now
	}
	db, err := store.Open(e.ctx, storetest.Database(t), store.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	if cfg.BaseURL == "" {
		cfg.BaseURL = renderBase
	}
	e.cfg = cfg
	e.pub = e.publisher()
	return e
}

// publisher returns a new publisher over the env's store, as a restart
// would make.
func (e *renderEnv) publisher() *publish.Publisher {
	e.t.Helper()
	pub, err := publish.NewPublisher(e.db, e.cfg, nil, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	pub.Now = func() time.Time { return e.now }
	e.mux = http.NewServeMux()
	pub.Routes(e.mux)
	return pub
}

type renderFixture struct {
	Departments []store.Department `json:"departments"`
	Sources     []struct {
		Name, URL, Department string
	} `json:"sources"`
	Topics []struct {
		Slug, Title, Description string
		Match                    store.Rule
	} `json:"topics"`
	Pulls []struct {
		Source  string
		At      time.Time
		Entries []store.Entry
	} `json:"pulls"`
	Retire []struct {
		Slug string
		At   time.Time
	} `json:"retire"`
}

// load stores a fixture from testdata/render, moving the clock as it goes.
func (e *renderEnv) load(name string) {
	e.t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "render", name))
	if err != nil {
		e.t.Fatal(err)
	}
	var f renderFixture
	if err := json.Unmarshal(raw, &f); err != nil {
		e.t.Fatalf("%s: %v", name, err)
	}
	for _, d := range f.Departments {
		if _, err := e.db.UpsertDepartment(e.ctx, d); err != nil {
			e.t.Fatal(err)
		}
	}
	for _, s := range f.Sources {
		src, err := e.db.UpsertSource(e.ctx, store.Source{Name: s.Name, URL: s.URL, DepartmentSlug: s.Department, Format: "auto", Enabled: true})
		if err != nil {
			e.t.Fatal(err)
		}
		e.sources[s.Name] = src
	}
	for _, t := range f.Topics {
		if _, err := e.db.UpsertTopic(e.ctx, store.Topic{Slug: t.Slug, Title: t.Title, Description: t.Description, Rule: t.Match}, &rules.Topics{}); err != nil {
			e.t.Fatal(err)
		}
	}
	for _, p := range f.Pulls {
		e.now = p.At
		e.pull(p.Source, p.Entries...)
	}
	for _, r := range f.Retire {
		e.now = r.At
		if err := e.db.RetireTopic(e.ctx, r.Slug); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *renderEnv) pull(source string, entries ...store.Entry) store.PullResult {
	e.t.Helper()
	src, ok := e.sources[source]
	if !ok {
		e.t.Fatalf("no source %q", source)
	}
	res, err := e.db.ApplyPull(e.ctx, src.ID, entries, store.PullOptions{Topics: &rules.Topics{}, Alert: rules.AlertNew(0), Realert: rules.Realert})
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func (e *renderEnv) renderDirty() []string {
	e.t.Helper()
	changed, err := e.pub.RenderDirty(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return changed
}

// get requests path from the publisher's routes; header pairs follow.
func (e *renderEnv) get(method, path string, header ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, req)
	return w
}

// body returns the bytes served at path, failing unless they are a 200.
func (e *renderEnv) body(path string) []byte {
	e.t.Helper()
	w := e.get("GET", path)
	if w.Code != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
	}
	return w.Body.Bytes()
}

// renderDemo is the demo fixture rendered, as served.
func renderDemo(t testing.TB) *renderEnv {
	e := newRenderEnv(t, publish.Config{})
	e.load("demo.json")
	e.now = time.Date(2026, 3, 5, 9, 0, 0, 0, time.UTC)
	if _, err := e.pub.RenderAll(e.ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

// renderDemoPaths are the documents of the demo that have golden files.
var renderDemoPaths = []string{
	"/feeds/all.atom", "/feeds/all.rss", "/feeds/all.json",
	"/feeds/departments/home-office.atom", "/feeds/departments/home-office.rss", "/feeds/departments/home-office.json",
	"/feeds/departments/culture.atom", "/feeds/departments/culture.rss", "/feeds/departments/culture.json",
	"/feeds/topics/human-trafficking.atom", "/feeds/topics/budget.rss", "/feeds/topics/budget.json",
	"/feeds/topics/harbours.atom", "/feeds/topics/harbours.rss", "/feeds/topics/harbours.json",
	"/feeds.opml",
}

func renderGoldenName(path string) string {
	return strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", "_")
}

// renderGolden compares got with testdata/golden/name, or rewrites it
// with -update.
func renderGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", "golden", name)
	if *renderUpdate {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s differs from the golden file (-want +got):\n%s", name, d)
	}
}

func TestRenderGolden(t *testing.T) {
	e := renderDemo(t)
	for _, path := range renderDemoPaths {
		t.Run(path, func(t *testing.T) {
			renderGolden(t, renderGoldenName(path), e.body(path))
		})
	}
}

// TestRenderIsDeterministic renders the same store twice, from scratch and
// at other times, and expects the same bytes: nothing depends on the clock
// or on map order.
func TestRenderIsDeterministic(t *testing.T) {
	a := renderDemo(t)
	b := renderDemo(t)
	b.now = b.now.Add(72 * time.Hour)
	if _, err := b.pub.RenderAll(b.ctx); err != nil {
		t.Fatal(err)
	}
	for _, path := range renderDemoPaths {
		if !bytes.Equal(a.body(path), b.body(path)) {
			t.Errorf("%s: two renders of the same data differ", path)
		}
	}
}

// TestRenderFeedFacts checks what the golden files cannot say by
// themselves: ids, dates and links follow the rules readers rely on.
func TestRenderFeedFacts(t *testing.T) {
	e := renderDemo(t)
	type atomLink struct {
		Rel  string `xml:"rel,attr"`
		Href string `xml:"href,attr"`
	}
	type atomEntry struct {
		ID        string     `xml:"id"`
		Updated   string     `xml:"updated"`
		Published string     `xml:"published"`
		Title     string     `xml:"title"`
		Links     []atomLink `xml:"link"`
	}
	type atomFeed struct {
		ID      string      `xml:"id"`
		Updated string      `xml:"updated"`
		Lang    string      `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
		Links   []atomLink  `xml:"link"`
		Entries []atomEntry `xml:"entry"`
	}
	parse := func(path string) atomFeed {
		var f atomFeed
		if err := xml.Unmarshal(e.body(path), &f); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return f
	}
	rel := func(links []atomLink, rel string) string {
		for _, l := range links {
			if l.Rel == rel {
				return l.Href
			}
		}
		return ""
	}

	all := parse("/feeds/all.atom")
	if len(all.Entries) != 5 {
		t.Fatalf("all.atom has %d entries, want 5", len(all.Entries))
	}
	// The edited release moved its updated time; the feed's is the newest.
	if all.Updated != "2026-03-03T08:45:00Z" {
		t.Errorf("feed updated = %s, want the newest entry's 2026-03-03T08:45:00Z", all.Updated)
	}
	if all.Lang != "en" || all.ID != "tag:herald.example.org,2026:feed/all" {
		t.Errorf("feed lang %q id %q", all.Lang, all.ID)
	}
	if got := rel(all.Links, "self"); got != renderBase+"/feeds/all.atom" {
		t.Errorf("self link %q", got)
	}
	if got := rel(all.Links, "hub"); got != renderBase+"/websub" {
		t.Errorf("hub link %q", got)
	}
	if got := rel(all.Links, "alternate"); got != renderBase+"/" {
		t.Errorf("alternate link %q", got)
	}
	seen := map[string]bool{}
	for _, en := range all.Entries {
		if !strings.HasPrefix(en.ID, "tag:herald.example.org,2026:release/") || seen[en.ID] {
			t.Errorf("entry id %q is not a unique release tag", en.ID)
		}
		seen[en.ID] = true
		alt := rel(en.Links, "alternate")
		if !strings.HasPrefix(alt, renderBase+"/releases/") || strings.TrimPrefix(en.ID, "tag:herald.example.org,2026:release/") != strings.TrimPrefix(alt, renderBase+"/releases/") {
			t.Errorf("entry %s links %q as alternate", en.ID, alt)
		}
		if en.Published == "" || en.Updated < en.Published {
			t.Errorf("entry %s published %q updated %q", en.ID, en.Published, en.Updated)
		}
	}
	if got := rel(all.Entries[0].Links, "related"); got != "https://news.example.org/ho/modern-slavery-helpline" {
		t.Errorf("newest entry's related link %q", got)
	}

	// An empty department's feed is dated by the department, not the clock.
	culture := parse("/feeds/departments/culture.atom")
	if len(culture.Entries) != 0 || culture.Updated != "2026-03-01T08:00:00Z" {
		t.Errorf("empty feed: %d entries, updated %s", len(culture.Entries), culture.Updated)
	}

	// A retired topic ends with one entry, dated when it was retired.
	harbours := parse("/feeds/topics/harbours.atom")
	if len(harbours.Entries) != 1 || harbours.Entries[0].ID != "tag:herald.example.org,2026:feed/topics/harbours/ended" ||
		harbours.Entries[0].Updated != "2026-03-04T12:00:00Z" || harbours.Updated != "2026-03-04T12:00:00Z" {
		t.Errorf("retired topic feed: %+v (updated %s)", harbours.Entries, harbours.Updated)
	}

	var jf struct {
		Version string `json:"version"`
		FeedURL string `json:"feed_url"`
		Expired bool   `json:"expired"`
		Hubs    []struct {
			Type, URL string
		} `json:"hubs"`
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(e.body("/feeds/topics/harbours.json"), &jf); err != nil {
		t.Fatal(err)
	}
	if !jf.Expired || len(jf.Items) != 1 || jf.FeedURL != renderBase+"/feeds/topics/harbours.json" {
		t.Errorf("retired JSON feed: expired %v, %d items, feed_url %q", jf.Expired, len(jf.Items), jf.FeedURL)
	}
	if err := json.Unmarshal(e.body("/feeds/departments/culture.json"), &jf); err != nil {
		t.Fatal(err)
	}
	if jf.Items == nil || len(jf.Items) != 0 {
		t.Errorf("empty JSON feed must have an empty items array, got %v", jf.Items)
	}
}

// renderFeedparser runs Python's feedparser over every document and
// reports those it calls ill-formed (bozo). It skips the test when python3
// or feedparser is missing, unless HERALD_REQUIRE_TOOLS=1.
func renderFeedparser(t *testing.T, docs map[string][]byte) {
	t.Helper()
	python := ""
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import feedparser").Run() == nil {
			python = path
			break
		}
	}
	if python == "" {
		if os.Getenv("HERALD_REQUIRE_TOOLS") == "1" {
			t.Fatal("python3 with feedparser is required (apt-get install python3-feedparser)")
		}
		t.Skip("python3 with feedparser not found: apt-get install python3-feedparser (HERALD_REQUIRE_TOOLS=1 makes this fatal)")
	}
	dir := t.TempDir()
	var names []string
	for path, body := range docs {
		name := filepath.Join(dir, renderGoldenName(path))
		if err := os.WriteFile(name, body, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	const script = `
import json, os, sys, feedparser
types = {".atom": "application/atom+xml", ".rss": "application/rss+xml"}
out = {}
for name in sys.argv[1:]:
    ct = types[os.path.splitext(name)[1]]
    d = feedparser.parse(open(name, "rb").read(), response_headers={"content-type": ct})
    out[name] = {"bozo": int(d.bozo), "error": str(d.get("bozo_exception", "")), "version": d.version,
                 "entries": len(d.entries), "titles": [e.get("title", "") for e in d.entries]}
json.dump(out, sys.stdout)
`
	cmd := exec.Command(python, append([]string{"-c", script}, names...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("feedparser: %v", err)
	}
	var res map[string]struct {
		Bozo    int
		Error   string
		Version string
		Entries int
		Titles  []string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("feedparser output: %v\n%s", err, out)
	}
	for _, name := range names {
		r := res[name]
		if r.Bozo != 0 || r.Version == "" {
			t.Errorf("feedparser: %s: bozo=%d version=%q: %s", filepath.Base(name), r.Bozo, r.Version, r.Error)
		}
	}
}

// TestRenderFeedparser checks the Atom and RSS documents with feedparser
// (the packaged feedparser 6.0 reads no JSON Feed; renderCheckJSONFeed
// checks those against the JSON Feed 1.1 spec instead).
func TestRenderFeedparser(t *testing.T) {
	e := renderDemo(t)
	docs := map[string][]byte{}
	for _, path := range renderDemoPaths {
		if strings.HasSuffix(path, ".atom") || strings.HasSuffix(path, ".rss") {
			docs[path] = e.body(path)
		}
	}
	// Search feeds come from the same renderer.
	all, err := e.db.FeedReleases(e.ctx, "all", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"atom", "rss"} {
		body, err := e.pub.RenderSearch(format, publish.SearchFeed{Title: "Search for “trafficking”", PageURL: renderBase + "/search?q=trafficking", Query: "q=trafficking"}, all)
		if err != nil {
			t.Fatal(err)
		}
		docs["/feeds/search."+format] = body
	}
	renderFeedparser(t, docs)
}

func TestRenderJSONFeedSpec(t *testing.T) {
	e := renderDemo(t)
	for _, path := range renderDemoPaths {
		if strings.HasSuffix(path, ".json") {
			t.Run(path, func(t *testing.T) { renderCheckJSONFeed(t, e.body(path)) })
		}
	}
}

// renderCheckJSONFeed checks a document against JSON Feed 1.1
// (https://jsonfeed.org/version/1.1): required members, their types, and
// no member the spec does not define (extensions start with "_").
func renderCheckJSONFeed(t *testing.T, body []byte) {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		t.Fatalf("not a JSON object: %v", err)
	}
	known := func(obj map[string]json.RawMessage, where string, names ...string) {
		for k := range obj {
			if !strings.HasPrefix(k, "_") && !slices.Contains(names, k) {
				t.Errorf("%s: member %q is not in JSON Feed 1.1", where, k)
			}
		}
	}
	str := func(obj map[string]json.RawMessage, where, name string, required bool) string {
		raw, ok := obj[name]
		if !ok {
			if required {
				t.Errorf("%s: %q is required", where, name)
			}
			return ""
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Errorf("%s: %q must be a string: %s", where, name, raw)
		}
		return s
	}
	absURL := func(where, name, s string) {
		if u, err := url.Parse(s); s != "" && (err != nil || !u.IsAbs() || u.Host == "") {
			t.Errorf("%s: %q = %q is not an absolute URL", where, name, s)
		}
	}
	authors := func(obj map[string]json.RawMessage, where string) {
		raw, ok := obj["authors"]
		if !ok {
			return
		}
		var as []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &as); err != nil {
			t.Errorf("%s: authors must be an array of objects", where)
		}
		for _, a := range as {
			known(a, where+" author", "name", "url", "avatar")
			if str(a, where, "name", false) == "" && str(a, where, "url", false) == "" {
				t.Errorf("%s: an author needs a name, url or avatar", where)
			}
		}
	}
	known(top, "feed", "version", "title", "home_page_url", "feed_url", "description", "user_comment", "next_url",
		"icon", "favicon", "authors", "author", "language", "expired", "hubs", "items")
	if v := str(top, "feed", "version", true); v != "https://jsonfeed.org/version/1.1" {
		t.Errorf("version %q", v)
	}
	if strings.TrimSpace(str(top, "feed", "title", true)) == "" {
		t.Error("title is empty")
	}
	for _, name := range []string{"home_page_url", "feed_url"} {
		absURL("feed", name, str(top, "feed", name, true))
	}
	str(top, "feed", "description", false)
	str(top, "feed", "language", false)
	authors(top, "feed")
	if raw, ok := top["expired"]; ok {
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Errorf("expired must be a boolean: %s", raw)
		}
	}
	if raw, ok := top["hubs"]; ok {
		var hubs []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &hubs); err != nil {
			t.Errorf("hubs must be an array of objects")
		}
		for _, h := range hubs {
			known(h, "hub", "type", "url")
			str(h, "hub", "type", true)
			absURL("hub", "url", str(h, "hub", "url", true))
		}
	}
	raw, ok := top["items"]
	if !ok {
		t.Fatal("items is required, even when empty")
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		t.Fatalf("items must be an array: %s", raw)
	}
	ids := map[string]bool{}
	for i, it := range items {
		where := "item " + strconv.Itoa(i)
		known(it, where, "id", "url", "external_url", "title", "content_html", "content_text", "summary", "image",
			"banner_image", "date_published", "date_modified", "authors", "author", "tags", "language", "attachments")
		id := str(it, where, "id", true)
		if id == "" || ids[id] {
			t.Errorf("%s: id %q is empty or not unique", where, id)
		}
		ids[id] = true
		_, html := it["content_html"]
		_, text := it["content_text"]
		if !html && !text {
			t.Errorf("%s: content_html or content_text must be present", where)
		}
		str(it, where, "content_html", false)
		str(it, where, "content_text", false)
		str(it, where, "title", false)
		str(it, where, "summary", false)
		absURL(where, "url", str(it, where, "url", false))
		absURL(where, "external_url", str(it, where, "external_url", false))
		for _, name := range []string{"date_published", "date_modified"} {
			if s := str(it, where, name, false); s != "" {
				if _, err := time.Parse(time.RFC3339, s); err != nil {
					t.Errorf("%s: %s %q is not RFC 3339", where, name, s)
				}
			}
		}
		authors(it, where)
		if raw, ok := it["tags"]; ok {
			var tags []string
			if err := json.Unmarshal(raw, &tags); err != nil {
				t.Errorf("%s: tags must be an array of strings", where)
			}
		}
	}
}

// readAll reads a response body.
func readAll(t testing.TB, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRenderW3CValidator runs the W3C Feed Validation Service's own code
// (github.com/w3c/feedvalidator, its src/ directory named by
// HERALD_FEEDVALIDATOR; it needs python3-lxml, -html5lib and -rdflib)
// over every golden XML document, and fails on any error or warning. It
// skips when HERALD_FEEDVALIDATOR is unset.
func TestRenderW3CValidator(t *testing.T) {
	src := os.Getenv("HERALD_FEEDVALIDATOR")
	if src == "" {
		t.Skip("set HERALD_FEEDVALIDATOR to the src directory of a w3c/feedvalidator checkout to run it")
	}
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*"))
	if err != nil {
		t.Fatal(err)
	}
	const script = `
import os, sys, urllib.request
sys.path.insert(0, sys.argv[1])
import feedvalidator
from feedvalidator import compatibility
from feedvalidator.formatter.text_plain import Formatter
types = {".atom": "application/atom+xml; charset=utf-8", ".rss": "application/rss+xml; charset=utf-8",
         ".opml": "text/x-opml; charset=utf-8"}
bad = 0
for f in sys.argv[2:]:
    name = os.path.basename(f)
    ext = os.path.splitext(name)[1]
    if ext not in types:
        continue
    path = name[name.index("feeds"):]
    url = "https://herald.example.org/" + (path if path == "feeds.opml" else path.replace("_", "/"))
    try:
        events = feedvalidator.validateStream(open(f, "rb"), firstOccurrenceOnly=1, contentType=types[ext], base=url)["loggedEvents"]
    except feedvalidator.logging.ValidationFailure as vf:
        events = [vf.event]
    out = Formatter(compatibility.AA(events))
    if out:
        bad += 1
        print("%s:\n  %s" % (name, "\n  ".join(out)))
sys.exit(1 if bad else 0)
`
	python := "python3"
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		python = "/usr/bin/python3"
	}
	out, err := exec.Command(python, append([]string{"-c", script, src}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("W3C feed validator: %v\n%s", err, out)
	}
}

// TestRenderEntryLink: with feeds.entry_link "original" every format links
// entries to the publisher's article and carries Herald's page as the
// other link; with either setting, content ends with "Read the original".
func TestRenderEntryLink(t *testing.T) {
	const page, original = renderBase + "/releases/5", "https://news.example.org/ho/modern-slavery-helpline"
	for _, tc := range []struct {
		link          string
		first, second string // the entry's link and the other one
		footer        string
	}{
		{"", page, original, `<p><a href="` + original + `">Read the original</a></p>`},
		{publish.EntryLinkOriginal, original, page,
			`<p><a href="` + original + `">Read the original</a> · <a href="` + page + `">On Herald</a></p>`},
	} {
		t.Run("entry_link="+tc.link, func(t *testing.T) {
			e := newRenderEnv(t, publish.Config{EntryLink: tc.link})
			e.load("demo.json")
			if _, err := e.pub.RenderAll(e.ctx); err != nil {
				t.Fatal(err)
			}
			var atom struct {
				Entries []struct {
					Links []struct {
						Rel  string `xml:"rel,attr"`
						Href string `xml:"href,attr"`
					} `xml:"link"`
					Content string `xml:"content"`
				} `xml:"entry"`
			}
			if err := xml.Unmarshal(e.body("/feeds/all.atom"), &atom); err != nil {
				t.Fatal(err)
			}
			en := atom.Entries[0]
			if len(en.Links) != 2 || en.Links[0].Rel != "alternate" || en.Links[0].Href != tc.first ||
				en.Links[1].Rel != "related" || en.Links[1].Href != tc.second {
				t.Errorf("Atom links %+v, want alternate %s and related %s", en.Links, tc.first, tc.second)
			}
			if !strings.HasSuffix(en.Content, tc.footer) {
				t.Errorf("Atom content %q does not end with %q", en.Content, tc.footer)
			}
			var rss struct {
				Items []struct {
					Link    string `xml:"link"`
					GUID    string `xml:"guid"`
					Content string `xml:"http://purl.org/rss/1.0/modules/content/ encoded"`
				} `xml:"channel>item"`
			}
			if err := xml.Unmarshal(e.body("/feeds/all.rss"), &rss); err != nil {
				t.Fatal(err)
			}
			if it := rss.Items[0]; it.Link != tc.first || it.GUID != "tag:herald.example.org,2026:release/5" || !strings.HasSuffix(it.Content, tc.footer) {
				t.Errorf("RSS item link %q guid %q content %q", it.Link, it.GUID, it.Content)
			}
			var jf struct {
				Items []struct {
					URL         string `json:"url"`
					ExternalURL string `json:"external_url"`
					ContentHTML string `json:"content_html"`
				} `json:"items"`
			}
			if err := json.Unmarshal(e.body("/feeds/all.json"), &jf); err != nil {
				t.Fatal(err)
			}
			if it := jf.Items[0]; it.URL != tc.first || it.ExternalURL != tc.second || !strings.HasSuffix(it.ContentHTML, tc.footer) {
				t.Errorf("JSON item url %q external_url %q content %q", it.URL, it.ExternalURL, it.ContentHTML)
			}
			renderCheckJSONFeed(t, e.body("/feeds/all.json"))
			renderFeedparser(t, map[string][]byte{"/feeds/all.atom": e.body("/feeds/all.atom"), "/feeds/all.rss": e.body("/feeds/all.rss")})
		})
	}
	if _, err := publish.NewPublisher(nil, publish.Config{BaseURL: renderBase, EntryLink: "elsewhere"}, nil, nil); err == nil {
		t.Error("an unknown entry_link was accepted")
	}
}

// TestRenderIcon: feeds.icon replaces Herald's icons in every format.
func TestRenderIcon(t *testing.T) {
	e := newRenderEnv(t, publish.Config{Icon: "/crest.png"})
	e.load("demo.json")
	if _, err := e.pub.RenderAll(e.ctx); err != nil {
		t.Fatal(err)
	}
	const icon = renderBase + "/crest.png"
	atom := string(e.body("/feeds/all.atom"))
	if !strings.Contains(atom, "<icon>"+icon+"</icon>") || !strings.Contains(atom, "<logo>"+icon+"</logo>") {
		t.Errorf("Atom icon and logo are not %s", icon)
	}
	var rss struct {
		Image struct {
			URL   string `xml:"url"`
			Width string `xml:"width"`
		} `xml:"channel>image"`
	}
	if err := xml.Unmarshal(e.body("/feeds/all.rss"), &rss); err != nil {
		t.Fatal(err)
	}
	if rss.Image.URL != icon || rss.Image.Width != "" {
		t.Errorf("RSS image %+v, want %s of unknown size", rss.Image, icon)
	}
	var jf struct{ Icon, Favicon string }
	if err := json.Unmarshal(e.body("/feeds/all.json"), &jf); err != nil {
		t.Fatal(err)
	}
	if jf.Icon != icon || jf.Favicon != icon {
		t.Errorf("JSON icon %q favicon %q", jf.Icon, jf.Favicon)
	}
	for _, bad := range []string{"crest.png", "//cdn.example.org/crest.png", "ftp://cdn.example.org/crest.png"} {
		if _, err := publish.NewPublisher(nil, publish.Config{BaseURL: renderBase, Icon: bad}, nil, nil); err == nil {
			t.Errorf("icon %q was accepted", bad)
		}
	}
}
