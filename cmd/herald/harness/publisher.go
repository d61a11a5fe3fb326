package harness

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Item is one release a publisher offers.
type Item struct {
	GUID, Title, Summary string
	Body                 string // content:encoded; left out when empty
	Published            time.Time
}

// PublisherOptions set how a publisher behaves.
type PublisherOptions struct {
	// ETags gives each feed an ETag (a hash of its bytes) and answers a
	// request that holds the current one with 304 Not Modified.
	ETags bool
	// Pause makes a slow publisher: it writes half of each feed, waits
	// this long, then writes the rest.
	Pause time.Duration
}

// Publisher is an HTTP server on loopback standing in for publishers: it
// serves an RSS 2.0 feed of the items added under each name, at
// /feeds/NAME.rss, newest first, and any handler a test adds. It records
// when a feed first returned each item.
type Publisher struct {
	srv  *httptest.Server
	opts PublisherOptions

	mu     sync.Mutex
	items  map[string][]Item
	extra  map[string]http.HandlerFunc
	hook   func(event string)
	served map[string]time.Time
}

// NewPublisher starts a publisher, closed when the test ends.
func NewPublisher(tb testing.TB, opts PublisherOptions) *Publisher {
	p := &Publisher{opts: opts, items: map[string][]Item{}, extra: map[string]http.HandlerFunc{}, served: map[string]time.Time{}}
	p.srv = httptest.NewServer(p)
	tb.Cleanup(p.srv.Close)
	return p
}

// URL is the absolute URL of path on the publisher.
func (p *Publisher) URL(path string) string { return p.srv.URL + path }

// FeedURL is the URL of the feed called name.
func (p *Publisher) FeedURL(name string) string { return p.URL("/feeds/" + name + ".rss") }

// Add publishes items on the feed called name, creating the feed.
func (p *Publisher) Add(name string, items ...Item) {
	p.mu.Lock()
	p.items[name] = append(p.items[name], items...)
	p.mu.Unlock()
}

// Handle serves path with h instead of a feed.
func (p *Publisher) Handle(path string, h http.HandlerFunc) {
	p.mu.Lock()
	p.extra[path] = h
	p.mu.Unlock()
}

// SetHook calls h with "begin" as a feed's body starts and "end" once it
// is written, so that a test can act at those moments; nil removes it.
func (p *Publisher) SetHook(h func(event string)) {
	p.mu.Lock()
	p.hook = h
	p.mu.Unlock()
}

// FirstServed is when a feed first returned the item with guid whole.
func (p *Publisher) FirstServed(guid string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.served[guid]
	return t, ok
}

// ServeHTTP serves a feed, or the handler added for the path.
func (p *Publisher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	h := p.extra[r.URL.Path]
	name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/feeds/"), ".rss")
	items, known := p.items[name]
	items = slices.Clone(items)
	hook := p.hook
	p.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	if !known {
		http.NotFound(w, r)
		return
	}
	body := RSS(name, items)
	if p.opts.ETags {
		sum := sha256.Sum256(body)
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
	}
	w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
	if hook != nil {
		hook("begin")
	}
	half := len(body) / 2
	w.Write(body[:half])
	if p.opts.Pause > 0 {
		http.NewResponseController(w).Flush()
		select {
		case <-time.After(p.opts.Pause):
		case <-r.Context().Done():
			return
		}
	}
	w.Write(body[half:])
	if hook != nil {
		hook("end")
	}
	now := time.Now()
	p.mu.Lock()
	for _, it := range items {
		if _, ok := p.served[it.GUID]; !ok {
			p.served[it.GUID] = now
		}
	}
	p.mu.Unlock()
}

// RSS renders items, newest (last added) first, as an RSS 2.0 document
// of a site at https://coastal.example.org/.
func RSS(title string, items []Item) []byte {
	type rssItem struct {
		Title       string `xml:"title"`
		Link        string `xml:"link"`
		GUID        string `xml:"guid"`
		PubDate     string `xml:"pubDate"`
		Description string `xml:"description"`
		Content     string `xml:"http://purl.org/rss/1.0/modules/content/ encoded,omitempty"`
	}
	var doc struct {
		XMLName xml.Name  `xml:"rss"`
		Version string    `xml:"version,attr"`
		Title   string    `xml:"channel>title"`
		Link    string    `xml:"channel>link"`
		Desc    string    `xml:"channel>description"`
		Items   []rssItem `xml:"channel>item"`
	}
	doc.Version, doc.Title, doc.Link, doc.Desc = "2.0", title, "https://coastal.example.org/", "News"
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		doc.Items = append(doc.Items, rssItem{Title: it.Title, Link: "https://coastal.example.org/news/" + it.GUID,
			GUID: it.GUID, PubDate: it.Published.Format(time.RFC1123Z), Description: it.Summary, Content: it.Body})
	}
	body, err := xml.Marshal(doc)
	if err != nil {
		panic(err) // only a type xml cannot marshal does this, and these are strings
	}
	return append([]byte(xml.Header), body...)
}
