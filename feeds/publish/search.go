package publish

import (
	"context"
	"net/http"
	"sync"
	"time"

	"herald/store"
)

// Search feeds are rendered on request, since there are as many as there
// are queries, and then served like every other feed (serveDoc: gzip,
// validators, Link, metrics). The documents are kept for searchCacheTTL
// per format and normalised query, so a feed reader polling a search, or
// many readers polling a popular one, cost one search a minute; past that
// the search runs again, and a result that did not change keeps its ETag
// and Last-Modified, so the poll still ends in a 304.

const (
	searchCacheTTL = time.Minute
	// searchCacheBytes caps the documents kept (plain and gzip copies).
	searchCacheBytes = 32 << 20
	// searchKind is the kind of a search feed document, which is never
	// stored.
	searchKind = "search"
)

// searchCache holds recently served search feeds by format and query.
type searchCache struct {
	mu    sync.Mutex
	docs  map[string]*searchCached
	bytes int
}

type searchCached struct {
	doc     *cacheDoc
	checked time.Time // when the search last ran
	// size is what the document may hold in memory: its body and, once a
	// request takes it, a gzip copy (a fifth of the body, as feeds go).
	size int
}

// ServeSearch answers a request for a search feed in format ("atom", "rss"
// or "json"): sf says which search (sf.Query is its normalised query
// string, the key it is kept under), and run finds its releases, newest
// first, when the kept document is older than a minute or missing. An
// error from run or from rendering is returned with nothing written.
func (p *Publisher) ServeSearch(w http.ResponseWriter, r *http.Request, format string, sf SearchFeed, run func(context.Context) ([]store.Release, error)) error {
	path := "/feeds/search." + format
	if sf.Query != "" {
		path += "?" + sf.Query
	}
	now := p.Now()
	c := &p.search
	c.mu.Lock()
	old := c.docs[path]
	c.mu.Unlock()
	if old != nil && now.Sub(old.checked) < searchCacheTTL && !now.Before(old.checked) {
		p.serveDoc(w, r, old.doc)
		return nil
	}
	rs, err := run(r.Context())
	if err != nil {
		return err
	}
	body, err := p.RenderSearch(format, sf, rs)
	if err != nil {
		return err
	}
	d, err := renderDoc(path, "search", searchKind, format, 0, body)
	if err != nil {
		return err
	}
	var doc *cacheDoc
	if old != nil && old.doc.etag == d.ETag {
		doc = old.doc
	} else {
		d.LastModified = now.UTC().Truncate(time.Second)
		if old != nil && !old.doc.lastModified.Before(d.LastModified) {
			d.LastModified = old.doc.lastModified.Add(time.Second)
		}
		doc = p.newCacheDoc(d)
	}
	c.put(path, &searchCached{doc: doc, checked: now, size: len(d.Body) + len(d.Body)/4})
	p.serveDoc(w, r, doc)
	return nil
}

// put keeps a document, dropping the least recently searched ones while
// the cache is over its size.
func (c *searchCache) put(path string, e *searchCached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.docs == nil {
		c.docs = map[string]*searchCached{}
	}
	if old := c.docs[path]; old != nil {
		c.bytes -= old.size
	}
	c.docs[path] = e
	c.bytes += e.size
	for c.bytes > searchCacheBytes && len(c.docs) > 1 {
		var oldest string
		for k, v := range c.docs {
			if k != path && (oldest == "" || v.checked.Before(c.docs[oldest].checked)) {
				oldest = k
			}
		}
		c.bytes -= c.docs[oldest].size
		delete(c.docs, oldest)
	}
}
