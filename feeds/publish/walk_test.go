package publish_test

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"herald/feeds/publish"
	"herald/store"
)

// walkClient fetches Herald's feeds over HTTP as a feed reader would,
// following the absolute links the documents carry.
type walkClient struct {
	t   *testing.T
	srv *httptest.Server
	// fetched counts GETs per path, to show every link was followed.
	fetched map[string]int
}

func newWalkClient(t *testing.T, e *renderEnv) *walkClient {
	srv := httptest.NewServer(e.mux)
	t.Cleanup(srv.Close)
	return &walkClient{t: t, srv: srv, fetched: map[string]int{}}
}

// get fetches an absolute URL below renderBase and fails unless it is a
// 200.
func (c *walkClient) get(link string) []byte {
	c.t.Helper()
	path, ok := strings.CutPrefix(link, renderBase)
	if !ok {
		c.t.Fatalf("link %q is not below %s", link, renderBase)
	}
	resp, err := c.srv.Client().Get(c.srv.URL + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s: %d (a link that does not resolve)", link, resp.StatusCode)
	}
	c.fetched[path]++
	return body
}

// walkEntry is an entry as a walk met it: where, and its content.
type walkEntry struct {
	id, content string
}

// walkPage is one document met on a walk.
type walkPage struct {
	url     string
	entries []walkEntry
	prev    string // the next older page
	next    string // the next newer page (Atom only)
	current string // Atom only
}

func (c *walkClient) atom(link string) walkPage {
	c.t.Helper()
	var d struct {
		Links   []archiveLink `xml:"link"`
		Entries []struct {
			ID      string `xml:"id"`
			Content string `xml:"content"`
		} `xml:"entry"`
	}
	if err := xml.Unmarshal(c.get(link), &d); err != nil {
		c.t.Fatalf("%s: %v", link, err)
	}
	p := walkPage{url: link}
	for _, l := range d.Links {
		switch l.Rel {
		case "prev-archive":
			p.prev = l.Href
		case "next-archive":
			p.next = l.Href
		case "current":
			p.current = l.Href
		}
	}
	for _, en := range d.Entries {
		p.entries = append(p.entries, walkEntry{en.ID, en.Content})
	}
	return p
}

func (c *walkClient) json(link string) walkPage {
	c.t.Helper()
	body := c.get(link)
	renderCheckJSONFeed(c.t, body)
	var d struct {
		FeedURL string `json:"feed_url"`
		NextURL string `json:"next_url"`
		Items   []struct {
			ID          string `json:"id"`
			ContentHTML string `json:"content_html"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		c.t.Fatalf("%s: %v", link, err)
	}
	if d.FeedURL != link {
		c.t.Errorf("%s: feed_url %q", link, d.FeedURL)
	}
	p := walkPage{url: link, prev: d.NextURL}
	for _, it := range d.Items {
		p.entries = append(p.entries, walkEntry{it.ID, it.ContentHTML})
	}
	return p
}

// walk reads a feed's current document in format (atom or json) and
// follows its archive back to the first page, checking every link on the
// way, and returns the current document and the archive pages, newest
// first.
func (c *walkClient) walk(feedPath, format string) (walkPage, []walkPage) {
	c.t.Helper()
	read := c.atom
	if format == "json" {
		read = c.json
	}
	currentURL := renderBase + feedPath + "." + format
	cur := read(currentURL)
	var pages []walkPage
	seen := map[string]bool{}
	for link := cur.prev; link != ""; {
		if seen[link] {
			c.t.Fatalf("%s: the archive loops back to %s", currentURL, link)
		}
		seen[link] = true
		pg := read(link)
		if format == "atom" {
			if pg.current != currentURL {
				c.t.Errorf("%s: current %q, want %q", link, pg.current, currentURL)
			}
			c.get(pg.current)
			newer := cur.prev
			if len(pages) > 0 {
				newer = pages[len(pages)-1].url
			}
			switch {
			case len(pages) == 0 && pg.next != "":
				c.t.Errorf("%s: the newest page links next-archive %q", link, pg.next)
			case len(pages) > 0 && pg.next != newer:
				c.t.Errorf("%s: next-archive %q, want the page the walk came from, %q", link, pg.next, newer)
			}
			if pg.next != "" {
				if back := c.atom(pg.next); back.prev != link {
					c.t.Errorf("%s: next-archive %s links prev-archive %q back", link, pg.next, back.prev)
				}
			}
		}
		pages = append(pages, pg)
		link = pg.prev
	}
	return cur, pages
}

// walkCheck walks a feed in every format that has archives and checks what
// RFC 5005 and the configuration promise: the current document holds
// exactly Entries releases (or all of them); the archive pages together
// hold every other release, each on exactly one page; a release on a page
// and in the current document has the same content in both.
// Atom documents met are added to docs, keyed by stage and path, for
// feedparser to read.
func walkCheck(t *testing.T, e *renderEnv, c *walkClient, key, feedPath, stage string, docs map[string][]byte) {
	t.Helper()
	all, err := e.db.FeedReleasesAfter(e.ctx, key, 0, math.MaxInt32)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, r := range all {
		want = append(want, "tag:herald.example.org,2026:release/"+strconv.FormatInt(r.ID, 10))
	}
	slices.Sort(want)
	for _, format := range []string{"atom", "json"} {
		cur, pages := c.walk(feedPath, format)
		where := key + " (" + format + ")"
		if n := min(e.cfg.Entries, len(all)); len(cur.entries) != n {
			t.Errorf("%s: the current document holds %d entries, want %d", where, len(cur.entries), n)
		}
		if n := len(all) / e.cfg.ArchiveSize; len(pages) != n {
			t.Errorf("%s: %d archive pages, want %d", where, len(pages), n)
		}
		content := map[string]string{}
		for _, en := range cur.entries {
			content[en.id] = en.content
		}
		onPage := map[string]string{}
		for _, pg := range pages {
			if len(pg.entries) != e.cfg.ArchiveSize {
				t.Errorf("%s: %s holds %d entries, want %d", where, pg.url, len(pg.entries), e.cfg.ArchiveSize)
			}
			for _, en := range pg.entries {
				if other, dup := onPage[en.id]; dup {
					t.Errorf("%s: %s is on %s and on %s", where, en.id, other, pg.url)
				}
				onPage[en.id] = pg.url
				if c, ok := content[en.id]; ok && c != en.content {
					t.Errorf("%s: %s on %s has other content than in the current document:\n%s\n%s", where, en.id, pg.url, en.content, c)
				}
			}
		}
		var got []string
		for id := range onPage {
			got = append(got, id)
		}
		for id := range content {
			if _, ok := onPage[id]; !ok {
				got = append(got, id)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: the walk reached %v, want every release %v", where, got, want)
		}
		if format == "atom" {
			docs[stage+feedPath+".atom"] = c.get(renderBase + feedPath + ".atom")
			for _, pg := range pages {
				docs[stage+strings.TrimPrefix(pg.url, renderBase)] = c.get(pg.url)
			}
		}
	}
}

// TestArchiveWalk reads the archives over HTTP as a client that follows
// links would, after a first render and after more releases arrive, some
// of them dated before releases already stored, so that what is newest by
// date and what is newest in the archive differ.
func TestArchiveWalk(t *testing.T) {
	e := newRenderEnv(t, publish.Config{Entries: 4, ArchiveSize: 5})
	e.load("demo.json")
	if _, err := e.pub.RenderAll(e.ctx); err != nil {
		t.Fatal(err)
	}
	c := newWalkClient(t, e)
	feeds := []struct{ key, path string }{
		{"all", "/feeds/all"},
		{"department:home-office", "/feeds/departments/home-office"},
		{"department:treasury", "/feeds/departments/treasury"},
		{"topic:human-trafficking", "/feeds/topics/human-trafficking"},
	}
	docs := map[string][]byte{}
	check := func(stage string) {
		t.Run(stage, func(t *testing.T) {
			for _, f := range feeds {
				walkCheck(t, e, c, f.key, f.path, strings.ReplaceAll(stage, " ", "-"), docs)
			}
		})
	}
	check("demo")

	// Releases arrive in batches; every third is an old one published
	// late, which sorts among the oldest by date but the newest by id.
	n := 0
	for batch := range 5 {
		e.now = time.Date(2026, 3, 6+batch, 9, 0, 0, 0, time.UTC)
		for _, source := range []string{"home-office", "treasury"} {
			var entries []store.Entry
			for range 3 {
				n++
				published := e.now.Add(-time.Duration(n) * time.Minute)
				if n%3 == 0 {
					published = time.Date(2026, 1, n%28+1, 8, 0, 0, 0, time.UTC)
				}
				title := fmt.Sprintf("Release %d on spending", n)
				if source == "home-office" && n%2 == 0 {
					title = fmt.Sprintf("Release %d on human trafficking", n)
				}
				entries = append(entries, store.Entry{GUID: fmt.Sprintf("walk-%d", n), Title: title,
					Link:    fmt.Sprintf("https://news.example.org/walk/%d", n),
					Summary: "<p>Summary " + strconv.Itoa(n) + "</p>", Body: "<p>Body " + strconv.Itoa(n) + "</p>", Published: published})
			}
			e.pull(source, entries...)
		}
		e.renderDirty()
		check(fmt.Sprintf("after batch %d", batch+1))
	}
	renderFeedparser(t, docs)

	// A restart renders everything from scratch to the same documents.
	before := map[string][]byte{}
	for path := range c.fetched {
		before[path] = e.body(path)
	}
	if _, err := e.pub.RenderAll(e.ctx); err != nil {
		t.Fatal(err)
	}
	for path, body := range before {
		if got := e.body(path); string(got) != string(body) {
			t.Errorf("%s differs when rendered from scratch", path)
		}
	}
}
