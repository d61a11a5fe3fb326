package publish

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"herald/store"
)

// The in-memory feed cache. Serving a feed is a map lookup and copying
// header values computed when the document was rendered or loaded; nothing
// is rendered and the store is not asked. Documents are immutable: a
// change replaces the *cacheDoc under its path.

// cacheDoc is one servable document.
//
// A current feed's gzip copy is made on the first request that takes it,
// not when the feed is rendered: a new release changes nine documents at
// once (three feeds in three formats), and most of them are read far less
// often than they change. Until then gz has its validators and 304
// headers, which need no body, and gzOnce fills the rest. An archive
// page is the other way round: it keeps only its gzip copy, made when
// the page is rendered, and its plain variant has a nil body that is
// decompressed on the rare request for it.
type cacheDoc struct {
	path, key, kind, format string
	page                    int
	etag                    string
	lastModified            time.Time
	plain, gz               cacheVariant
	gzOnce                  sync.Once
	gzBuild                 func(gz []byte) // fills gz's body and 200 headers
}

// cacheVariant is one representation of a document: as rendered, or its
// gzip copy.
type cacheVariant struct {
	body    []byte
	etag    string
	lastMod string
	hdr     []cacheHeader // response headers of a 200
	hdr304  []cacheHeader // response headers of a 304
}

// cacheHeader is a canonical header name and its value, shared by every
// response (never modified; header slices have no spare capacity, so an
// Add by a middleware copies rather than writes into them).
type cacheHeader struct {
	key string
	val []string
}

func cacheVal(s string) []string { return []string{s}[:1:1] }

// newCacheDoc prepares a stored document for serving.
func (p *Publisher) newCacheDoc(d store.FeedDoc) *cacheDoc {
	c := &cacheDoc{path: d.Path, key: d.Key, kind: d.Kind, format: d.Format, page: d.Page,
		etag: d.ETag, lastModified: d.LastModified.UTC()}
	lastMod := c.lastModified.Format(http.TimeFormat)
	cacheControl := p.maxAgeHdr
	if d.Kind == store.FeedKindArchive {
		cacheControl = p.archiveHdr
	}
	links := []string{"<" + p.base + d.Path + `>; rel="self"`}
	if d.Kind == store.FeedKindCurrent {
		for _, h := range p.hubs() {
			links = append(links, "<"+h+`>; rel="hub"`)
		}
	}
	// A 304 repeats what a cache must update (RFC 9110, 15.4.5): ETag,
	// Cache-Control and Vary; with an ETag, Last-Modified is not needed.
	validators := func(v *cacheVariant, etag string) {
		v.etag, v.lastMod = etag, lastMod
		v.hdr304 = []cacheHeader{
			{"Etag", cacheVal(etag)},
			{"Cache-Control", cacheControl},
			{"Vary", cacheVal("Accept-Encoding")},
		}
	}
	content := func(v *cacheVariant, body []byte, size int, gz bool) {
		v.body = body
		v.hdr = append([]cacheHeader{
			{"Content-Type", cacheVal(renderContentType(d.Format))},
			{"Content-Length", cacheVal(strconv.Itoa(size))},
			{"Last-Modified", cacheVal(lastMod)},
			{"Access-Control-Allow-Origin", cacheVal("*")},
			{"Link", cacheVal(strings.Join(links, ", "))},
		}, v.hdr304...)
		if gz {
			v.hdr = append(v.hdr, cacheHeader{"Content-Encoding", cacheVal("gzip")})
		}
	}
	validators(&c.plain, d.ETag)
	content(&c.plain, d.Body, d.Size, false)
	validators(&c.gz, strings.TrimSuffix(d.ETag, `"`)+`-gz"`)
	c.gzBuild = func(gz []byte) { content(&c.gz, gz, len(gz), true) }
	if len(d.Gzip) > 0 {
		c.gzOnce.Do(func() { c.gzBuild(d.Gzip) })
	}
	if d.Kind == store.FeedKindArchive {
		c.plain.body = nil
	}
	return c
}

// gzipped returns the document's gzip copy, compressing it on the first
// call; requests that arrive meanwhile wait for the one compression. If
// compressing fails (it cannot, short of running out of memory), the
// plain variant stands in.
func (d *cacheDoc) gzipped() *cacheVariant {
	d.gzOnce.Do(func() {
		if d.plain.body == nil {
			return // an archive page's copy came with it; there is no other
		}
		if gz, err := cacheGzip(d.plain.body); err == nil {
			d.gzBuild(gz)
		}
	})
	if d.gz.body == nil {
		return &d.plain
	}
	return &d.gz
}

// cacheStore maps URL paths to documents.
type cacheStore struct {
	mu   sync.RWMutex
	docs map[string]*cacheDoc
}

func (c *cacheStore) get(path string) *cacheDoc {
	c.mu.RLock()
	d := c.docs[path]
	c.mu.RUnlock()
	return d
}

func (c *cacheStore) replace(m map[string]*cacheDoc) {
	c.mu.Lock()
	c.docs = m
	c.mu.Unlock()
}

func (c *cacheStore) apply(changed []*cacheDoc, removed []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range removed {
		delete(c.docs, p)
	}
	for _, d := range changed {
		c.docs[d.path] = d
	}
}

func (c *cacheStore) byKey(key string) []*cacheDoc {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*cacheDoc
	for _, d := range c.docs {
		if d.key == key {
			out = append(out, d)
		}
	}
	return out
}

func (c *cacheStore) all() []*cacheDoc {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*cacheDoc, 0, len(c.docs))
	for _, d := range c.docs {
		out = append(out, d)
	}
	return out
}

// cacheGzipLevel is where compression stops paying for its time: a
// changed feed is compressed again on its first request. On a
// 50-entry Atom feed of press-release text (89,638 bytes), level 4 takes
// 1.2 ms for 17,831 bytes, gzip's default level (6) 2.6 ms for 17,376
// and the best compression (9) 2.9 ms for 17,347: 2.8% larger for less
// than half the time.
const cacheGzipLevel = 4

var cacheGzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(io.Discard, cacheGzipLevel)
	return w
}}

// cacheGzip compresses a document with a writer from a pool. The output
// has no name or time in its header, so the same bytes always give the
// same gzip copy.
func cacheGzip(body []byte) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(len(body)/4 + 64)
	w := cacheGzipWriters.Get().(*gzip.Writer)
	defer cacheGzipWriters.Put(w)
	w.Reset(&b)
	if _, err := w.Write(body); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

var cacheGzipReaders sync.Pool

// cacheGunzip writes the decompressed gzip copy gz to w.
func cacheGunzip(w io.Writer, gz []byte) error {
	r, _ := cacheGzipReaders.Get().(*gzip.Reader)
	var err error
	if r == nil {
		r, err = gzip.NewReader(bytes.NewReader(gz))
	} else {
		err = r.Reset(bytes.NewReader(gz))
	}
	if err != nil {
		return err
	}
	defer cacheGzipReaders.Put(r)
	_, err = io.Copy(w, r)
	return err
}

// cacheBody returns a document's plain bytes, decompressing an archive
// page's gzip copy.
func (d *cacheDoc) cacheBody() ([]byte, error) {
	if d.plain.body != nil {
		return d.plain.body, nil
	}
	var b bytes.Buffer
	if err := cacheGunzip(&b, d.gzipped().body); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
