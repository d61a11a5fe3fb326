package publish

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"herald/store"
	"herald/templates/text"
)

// renderFormats are the formats every current feed is rendered in.
var renderFormats = []string{"atom", "rss", "json"}

// renderKey renders the current documents of one feed in every format and
// any archive pages it newly filled. It returns the documents, the feed's
// new archive state, the paths of archive pages that no longer exist and
// what the next render of the feed can reuse (nil for none). prev is what
// the previous render left (nil for none).
func (p *Publisher) renderKey(ctx context.Context, key string, meta renderMeta, full bool, prev *renderedFeed) ([]store.FeedDoc, store.FeedArchive, []string, *renderedFeed, error) {
	f := p.renderHead(key, meta)
	// After a render of the feed, its releases are listed as heads, the
	// ones after the archive and the newest in one statement, and only
	// those the feed did not show as they are now are read in full.
	heads := prev != nil
	after := p.db.FeedReleasesAfter
	var newest []store.Release
	if heads {
		listed := false
		after = func(ctx context.Context, key string, afterID int64, limit int) ([]store.Release, error) {
			if listed {
				return p.db.FeedReleasesAfter(ctx, key, afterID, limit)
			}
			listed = true
			rs, n, err := p.db.FeedReleaseHeads(ctx, key, afterID, limit, p.cfg.Entries)
			newest = n
			if err == nil && len(rs) >= limit {
				// A page filled: it is rendered from the releases in full.
				return p.db.FeedReleasesAfter(ctx, key, afterID, limit)
			}
			return rs, err
		}
	}
	pages, arch, tail, removed, err := p.archiveUpdate(ctx, key, f, full, after)
	if err != nil {
		return nil, store.FeedArchive{}, nil, nil, err
	}
	docs := pages
	if f.ended.IsZero() {
		if !heads {
			if newest, err = p.db.FeedReleases(ctx, key, p.cfg.Entries); err != nil {
				return nil, store.FeedArchive{}, nil, nil, fmt.Errorf("feeds: render %s: %w", key, err)
			}
		}
		rs := renderCurrent(newest, tail, p.cfg.Entries)
		if heads {
			if rs, err = p.renderFill(ctx, rs, prev); err != nil {
				return nil, store.FeedArchive{}, nil, nil, fmt.Errorf("feeds: render %s: %w", key, err)
			}
		}
		f.entries = p.renderEntriesAfter(rs, prev)
	} else {
		f.entries = []renderEntry{p.renderEndEntry(key, f)}
	}
	f.updated = renderNewest(f.entries, f.fallback)
	f.prevArchive = arch.Pages
	var next *renderedFeed
	if f.ended.IsZero() {
		next = &renderedFeed{entries: make([]renderedEntry, len(f.entries))}
		for i, e := range f.entries {
			next.entries[i] = renderedEntry{release: e.release, hash: e.hash, dept: e.dept}
		}
	}
	// The formats are encoded and compressed side by side: a change
	// renders few feeds, and this spreads them over the cores.
	type encoded struct {
		doc   store.FeedDoc
		spans []renderSpan
		err   error
	}
	out := make([]encoded, len(renderFormats))
	var wg sync.WaitGroup
	for i, format := range renderFormats {
		wg.Go(func() {
			body, spans, err := p.renderFormat(format, f)
			if err != nil {
				out[i].err = fmt.Errorf("feeds: render %s as %s: %w", key, format, err)
				return
			}
			out[i].doc, out[i].err = renderDoc(renderKeyPath(key)+"."+format, key, store.FeedKindCurrent, format, 0, body)
			out[i].spans = spans
		})
	}
	wg.Wait()
	for i, format := range renderFormats {
		if out[i].err != nil {
			return nil, store.FeedArchive{}, nil, nil, out[i].err
		}
		docs = append(docs, out[i].doc)
		if next != nil {
			fi := renderFormatIndex(format)
			next.bodies[fi] = out[i].doc.Body
			for j, sp := range out[i].spans {
				next.entries[j].spans[fi] = sp
			}
		}
	}
	return docs, arch, removed, next, nil
}

// renderFill replaces the releases of rs that prev cannot supply, read
// without their text, with the releases in full; one removed in between
// is left out.
func (p *Publisher) renderFill(ctx context.Context, rs []store.Release, prev *renderedFeed) ([]store.Release, error) {
	known := prev.byRelease()
	var ids []int64
	for i := range rs {
		if prev.reusable(known, &rs[i]) == nil {
			ids = append(ids, rs[i].ID)
		}
	}
	if len(ids) == 0 {
		return rs, nil
	}
	full, err := p.db.ReleasesByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]*store.Release, len(full))
	for i := range full {
		byID[full[i].ID] = &full[i]
	}
	out := make([]store.Release, 0, len(rs))
	for i := range rs {
		if r := byID[rs[i].ID]; r != nil {
			out = append(out, *r)
		} else if prev.reusable(known, &rs[i]) != nil {
			out = append(out, rs[i])
		}
	}
	return out, nil
}

// renderFormat encodes f in format ("atom", "rss" or "json") and says
// where each entry lies in the document.
func (p *Publisher) renderFormat(format string, f *renderFeed) ([]byte, []renderSpan, error) {
	switch format {
	case "atom":
		return p.renderAtom(f)
	case "rss":
		return p.renderRSS(f)
	case "json":
		return p.renderJSON(f)
	}
	return nil, nil, fmt.Errorf("feeds: unknown format %q", format)
}

// renderNewest is the feed's updated time: its newest entry's, or the
// fallback for an empty feed. Never the clock.
func renderNewest(entries []renderEntry, fallback time.Time) time.Time {
	if len(entries) == 0 {
		return fallback
	}
	t := entries[0].updated
	for _, e := range entries[1:] {
		if e.updated.After(t) {
			t = e.updated
		}
	}
	return t
}

// renderCurrent chooses the releases of a current feed: every release not
// yet on a full archive page (tail, which is nowhere else), then the
// newest others by publication date (newest) until there are n, newest
// first. Since the tail is shorter than an archive page and a page is at
// most n+1 long (NewPublisher checks), the feed holds exactly n releases,
// or all of them when there are fewer.
func renderCurrent(newest, tail []store.Release, n int) []store.Release {
	out := make([]store.Release, 0, max(n, len(tail)))
	in := make(map[int64]bool, len(tail))
	for _, r := range tail {
		out = append(out, r)
		in[r.ID] = true
	}
	for _, r := range newest {
		if len(out) >= n {
			break
		}
		if !in[r.ID] {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b store.Release) int {
		if c := b.Published.Compare(a.Published); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return out
}

// renderFeed is one feed document about to be encoded.
type renderFeed struct {
	key      string
	id       string // feed id (tag URI or URL)
	name     string // a topic feed's topic title
	title    string
	subtitle string
	htmlURL  string // the page the feed belongs to
	path     string // URL path without extension
	updated  time.Time
	fallback time.Time // updated of an empty feed
	ended    time.Time // a retired topic's end
	entries  []renderEntry

	// Archive pages (RFC 5005, JSON Feed next_url), by number, 0 for
	// none: page is the document's own (0 for a current feed);
	// prevArchive the next older page (a current feed's newest page);
	// nextArchive the next newer page.
	page        int
	prevArchive int
	nextArchive int

	// query is the encoded query string of a feed rendered on request (a
	// search); such a feed is not pushed, so it names no hub.
	query string
}

// SearchFeed describes a feed of search results, rendered on request.
type SearchFeed struct {
	Title    string
	Subtitle string
	// PageURL is the absolute URL of the results page.
	PageURL string
	// Query is the encoded query string of the search, without "?".
	Query string
}

// RenderSearch renders releases, newest first, as a search feed
// (/feeds/search.{ext}?Query) in format "atom", "rss" or "json", with the
// same entry ids, cleaning and validity as every other feed. It uses no
// cache and takes no lock, so it may run while feeds are being rendered.
func (p *Publisher) RenderSearch(format string, sf SearchFeed, rs []store.Release) ([]byte, error) {
	f := &renderFeed{
		key: "search", path: "/feeds/search", query: sf.Query, htmlURL: sf.PageURL,
		title: text.ForXML(sf.Title), subtitle: text.ForXML(sf.Subtitle), fallback: renderEpoch,
	}
	f.id = p.renderID("feed/search")
	if sf.Query != "" {
		f.id = p.base + "/feeds/search?" + sf.Query
	}
	f.entries = p.renderEntries(rs)
	f.updated = renderNewest(f.entries, f.fallback)
	body, _, err := p.renderFormat(format, f)
	return body, err
}

func (p *Publisher) renderHead(key string, meta renderMeta) *renderFeed {
	f := &renderFeed{key: key, path: renderKeyPath(key), fallback: renderEpoch}
	site := p.cfg.Title
	switch {
	case key == "all":
		f.title = site
		f.subtitle = p.msgs.Say("feed.subtitle.all", "Site", site)
		f.htmlURL = p.base + "/"
	case strings.HasPrefix(key, "department:"):
		d := meta.depts[strings.TrimPrefix(key, "department:")]
		f.title = p.msgs.Say("feed.title.department", "Department", d.Name, "Site", site)
		f.subtitle = p.msgs.Say("feed.subtitle.department", "Department", d.Name, "Site", site)
		f.htmlURL = p.base + "/departments/" + d.Slug
		f.fallback = d.CreatedAt.UTC().Truncate(time.Second)
	case strings.HasPrefix(key, "topic:"):
		t := meta.topics[strings.TrimPrefix(key, "topic:")]
		f.name = t.Title
		f.title = p.msgs.Say("feed.title.topic", "Topic", t.Title, "Site", site)
		f.subtitle = t.Description
		if strings.TrimSpace(f.subtitle) == "" {
			f.subtitle = p.msgs.Say("feed.subtitle.topic", "Topic", t.Title, "Site", site)
		}
		f.htmlURL = p.base + "/topics/" + t.Slug
		f.fallback = t.CreatedAt.UTC().Truncate(time.Second)
		if t.Retired() {
			f.ended = t.RetiredAt.UTC().Truncate(time.Second)
			f.fallback = f.ended
		}
	}
	f.id = p.renderID("feed" + strings.TrimPrefix(f.path, "/feeds"))
	f.title, f.subtitle = text.ForXML(f.title), text.ForXML(f.subtitle)
	return f
}

// renderEndEntry is the last entry of a retired topic's feed.
func (p *Publisher) renderEndEntry(key string, f *renderFeed) renderEntry {
	msg := text.ForXML(p.msgs.Say("feed.ended.summary", "Topic", f.name,
		"Date", f.ended.Format(p.msgs.Say("format.date")), "Site", p.cfg.Title))
	return renderEntry{
		id:          p.renderID("feed" + strings.TrimPrefix(f.path, "/feeds") + "/ended"),
		title:       text.ForXML(p.msgs.Say("feed.ended.title", "Topic", f.name, "Site", p.cfg.Title)),
		url:         f.htmlURL,
		author:      text.ForXML(p.cfg.Title),
		authorURL:   p.base + "/",
		published:   f.ended,
		updated:     f.ended,
		summaryHTML: "<p>" + renderEscapeHTML(msg) + "</p>",
		summaryText: msg,
	}
}

// renderDoc wraps rendered bytes as a cache document with its strong
// ETag. An archive page gets its gzip copy now, since it is kept in memory
// only compressed; other documents get theirs on first request (see
// cacheDoc).
func renderDoc(path, key, kind, format string, page int, body []byte) (store.FeedDoc, error) {
	var gz []byte
	if kind == store.FeedKindArchive {
		var err error
		if gz, err = cacheGzip(body); err != nil {
			return store.FeedDoc{}, fmt.Errorf("feeds: gzip %s: %w", path, err)
		}
	}
	sum := sha256.Sum256(body)
	return store.FeedDoc{
		Path: path, Key: key, Kind: kind, Format: format, Page: page,
		Body: body, Size: len(body), Gzip: gz,
		ETag: `"` + hex.EncodeToString(sum[:16]) + `"`,
	}, nil
}

// renderContentTypes are the media types of each format.
var renderContentTypes = map[string]string{
	"atom": "application/atom+xml; charset=utf-8",
	"rss":  "application/rss+xml; charset=utf-8",
	"json": "application/feed+json; charset=utf-8",
	"opml": "text/x-opml; charset=utf-8",
}

// renderContentType returns the Content-Type of a format.
func renderContentType(format string) string {
	if ct, ok := renderContentTypes[format]; ok {
		return ct
	}
	return http.DetectContentType(nil)
}
