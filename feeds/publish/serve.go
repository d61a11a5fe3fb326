package publish

import (
	"net/http"
	"strings"
	"time"
)

// Routes registers the feed, archive, OPML and WebSub hub routes on mux.
// A GET route answers HEAD too.
func (p *Publisher) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /feeds/{file}", p.serveFeed)
	mux.HandleFunc("GET /feeds/departments/{file}", p.serveFeed)
	mux.HandleFunc("GET /feeds/topics/{file}", p.serveFeed)
	mux.HandleFunc("GET /feeds/all/archive/{file}", p.serveFeed)
	mux.HandleFunc("GET /feeds/departments/{slug}/archive/{file}", p.serveFeed)
	mux.HandleFunc("GET /feeds/topics/{slug}/archive/{file}", p.serveFeed)
	mux.HandleFunc("GET /feeds.opml", p.serveFeed)
	mux.HandleFunc("POST /websub", p.hubServe)
}

// serveFeed answers from the in-memory cache: documents are found by their
// URL path, so "/feeds/departments/{file}" needs no parsing of the slug
// and extension; an unknown one is simply not in the cache.
func (p *Publisher) serveFeed(w http.ResponseWriter, r *http.Request) {
	d := p.cache.get(r.URL.Path)
	if d == nil {
		p.metrics.requests404.Inc()
		h := w.Header()
		h["Content-Type"] = serveTextPlain
		h["Cache-Control"] = serveCache404
		w.WriteHeader(http.StatusNotFound)
		w.Write(serveNotFoundBody)
		return
	}
	p.serveDoc(w, r, d)
}

// serveDoc answers a request with a rendered document: its gzip copy when
// the client takes gzip, a 304 when its validators match, and the headers
// computed when it was rendered. Every feed is served here, search feeds
// included, and counted in the feed request metrics.
func (p *Publisher) serveDoc(w http.ResponseWriter, r *http.Request, d *cacheDoc) {
	v := &d.plain
	gz := serveAcceptsGzip(r.Header["Accept-Encoding"])
	if gz {
		v = &d.gz
	}
	h := w.Header()
	if serveNotModified(r.Header, v, d.lastModified) {
		for _, kv := range v.hdr304 {
			h[kv.key] = kv.val
		}
		w.WriteHeader(http.StatusNotModified)
		p.metrics.requests304.Inc()
		return
	}
	if gz {
		v = d.gzipped()
	}
	for _, kv := range v.hdr {
		h[kv.key] = kv.val
	}
	w.WriteHeader(http.StatusOK)
	p.metrics.requests200.Inc()
	if r.Method == http.MethodHead {
		return
	}
	if v.body != nil {
		w.Write(v.body)
		return
	}
	cacheGunzip(w, d.gzipped().body)
}

var (
	serveTextPlain    = cacheVal("text/plain; charset=utf-8")
	serveCache404     = cacheVal("public, max-age=60")
	serveNotFoundBody = []byte("404 feed not found\n")
)

// serveAcceptsGzip reports whether Accept-Encoding allows gzip: it names
// gzip (or x-gzip, or *) without q=0.
func serveAcceptsGzip(values []string) bool {
	for _, v := range values {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ",")
			coding, params, _ := strings.Cut(part, ";")
			coding = strings.TrimSpace(coding)
			if !strings.EqualFold(coding, "gzip") && !strings.EqualFold(coding, "x-gzip") && coding != "*" {
				continue
			}
			return !serveQZero(params)
		}
	}
	return false
}

// serveQZero reports whether parameters say q=0 (q=0, q=0.0, q=0.000).
func serveQZero(params string) bool {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		name, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		val = strings.TrimSpace(val)
		if val == "" || val[0] != '0' {
			return false
		}
		return strings.Trim(val[1:], ".0") == ""
	}
	return false
}

// serveNotModified evaluates the request's validators against a variant
// (RFC 9110 section 13.2.2): If-None-Match when present, and only
// otherwise If-Modified-Since.
func serveNotModified(h http.Header, v *cacheVariant, lastModified time.Time) bool {
	if inm := h["If-None-Match"]; len(inm) > 0 {
		for _, list := range inm {
			if serveETagMatch(list, v.etag) {
				return true
			}
		}
		return false
	}
	ims := h["If-Modified-Since"]
	if len(ims) == 0 || ims[0] == "" {
		return false
	}
	if ims[0] == v.lastMod {
		return true
	}
	t, err := http.ParseTime(ims[0])
	if err != nil {
		return false
	}
	return !lastModified.Truncate(time.Second).After(t)
}

// serveETagMatch is the weak comparison If-None-Match uses: "*" or any
// listed tag equal to etag once a W/ prefix is ignored.
func serveETagMatch(list, etag string) bool {
	for list != "" {
		list = strings.TrimLeft(list, " \t,")
		if list == "" {
			break
		}
		if list[0] == '*' {
			return true
		}
		tag := list
		if strings.HasPrefix(tag, "W/") {
			tag = tag[2:]
		}
		if tag == "" || tag[0] != '"' {
			// Not a quoted tag: skip to the next comma.
			_, list, _ = strings.Cut(list, ",")
			continue
		}
		end := strings.IndexByte(tag[1:], '"')
		if end < 0 {
			return false
		}
		if tag[:end+2] == etag {
			return true
		}
		list = tag[end+2:]
	}
	return false
}
