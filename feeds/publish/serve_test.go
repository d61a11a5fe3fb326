package publish_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/feeds/publish"
	"herald/store"
)

func TestServeHeaders(t *testing.T) {
	e := renderDemo(t)
	for _, tc := range []struct {
		path, contentType string
	}{
		{"/feeds/all.atom", "application/atom+xml; charset=utf-8"},
		{"/feeds/all.rss", "application/rss+xml; charset=utf-8"},
		{"/feeds/all.json", "application/feed+json; charset=utf-8"},
		{"/feeds/departments/home-office.atom", "application/atom+xml; charset=utf-8"},
		{"/feeds/topics/budget.json", "application/feed+json; charset=utf-8"},
		{"/feeds.opml", "text/x-opml; charset=utf-8"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			w := e.get("GET", tc.path)
			h := w.Header()
			if w.Code != http.StatusOK {
				t.Fatalf("status %d", w.Code)
			}
			want := map[string]string{
				"Content-Type":                tc.contentType,
				"Cache-Control":               "public, max-age=300",
				"Access-Control-Allow-Origin": "*",
				"Vary":                        "Accept-Encoding",
				"Content-Length":              strconv.Itoa(w.Body.Len()),
			}
			for k, v := range want {
				if got := h.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			etag := h.Get("ETag")
			if len(etag) != 34 || etag[0] != '"' || strings.HasPrefix(etag, "W/") {
				t.Errorf("ETag %q is not a strong hash", etag)
			}
			if _, err := http.ParseTime(h.Get("Last-Modified")); err != nil {
				t.Errorf("Last-Modified %q: %v", h.Get("Last-Modified"), err)
			}
			link := h.Get("Link")
			if !strings.Contains(link, "<"+renderBase+tc.path+`>; rel="self"`) {
				t.Errorf("Link %q has no self", link)
			}
			if tc.path != "/feeds.opml" && !strings.Contains(link, "<"+renderBase+`/websub>; rel="hub"`) {
				t.Errorf("Link %q has no hub", link)
			}
		})
	}
}

func TestServeConditional(t *testing.T) {
	e := renderDemo(t)
	const path = "/feeds/departments/home-office.rss"
	first := e.get("GET", path)
	etag, lastMod := first.Header().Get("ETag"), first.Header().Get("Last-Modified")
	lm, _ := http.ParseTime(lastMod)
	for _, tc := range []struct {
		name   string
		header []string
		want   int
	}{
		{"matching If-None-Match", []string{"If-None-Match", etag}, 304},
		{"weak form of the tag", []string{"If-None-Match", "W/" + etag}, 304},
		{"tag in a list", []string{"If-None-Match", `"abc", ` + etag + `, "def"`}, 304},
		{"star", []string{"If-None-Match", "*"}, 304},
		{"other tag", []string{"If-None-Match", `"0123"`}, 200},
		{"If-None-Match wins over a matching If-Modified-Since", []string{"If-None-Match", `"0123"`, "If-Modified-Since", lastMod}, 200},
		{"If-Modified-Since equal", []string{"If-Modified-Since", lastMod}, 304},
		{"If-Modified-Since later", []string{"If-Modified-Since", lm.Add(time.Hour).Format(http.TimeFormat)}, 304},
		{"If-Modified-Since earlier", []string{"If-Modified-Since", lm.Add(-time.Second).Format(http.TimeFormat)}, 200},
		{"If-Modified-Since garbage", []string{"If-Modified-Since", "yesterday"}, 200},
		{"gzip tag without gzip", []string{"If-None-Match", strings.TrimSuffix(etag, `"`) + `-gz"`}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := e.get("GET", path, tc.header...)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
			if tc.want == 304 {
				if w.Body.Len() != 0 {
					t.Error("304 with a body")
				}
				if w.Header().Get("ETag") != etag || w.Header().Get("Cache-Control") == "" || w.Header().Get("Vary") == "" {
					t.Errorf("304 headers %v", w.Header())
				}
			}
		})
	}
}

func TestServeGzip(t *testing.T) {
	e := renderDemo(t)
	const path = "/feeds/all.atom"
	plain := e.get("GET", path)
	for _, tc := range []struct {
		accept string
		gz     bool
	}{
		{"gzip", true},
		{"gzip, deflate, br", true},
		{"br;q=1.0, gzip;q=0.8", true},
		{"x-gzip", true},
		{"*", true},
		{"GZIP", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000, identity", false},
		{"deflate", false},
		{"", false},
	} {
		t.Run(tc.accept, func(t *testing.T) {
			w := e.get("GET", path, "Accept-Encoding", tc.accept)
			if w.Header().Get("Vary") != "Accept-Encoding" {
				t.Error("no Vary: Accept-Encoding")
			}
			got := w.Header().Get("Content-Encoding") == "gzip"
			if got != tc.gz {
				t.Fatalf("gzip %v, want %v", got, tc.gz)
			}
			if !tc.gz {
				if !bytes.Equal(w.Body.Bytes(), plain.Body.Bytes()) {
					t.Error("identity body differs")
				}
				return
			}
			if w.Header().Get("Content-Length") != strconv.Itoa(w.Body.Len()) {
				t.Errorf("Content-Length %s for %d bytes", w.Header().Get("Content-Length"), w.Body.Len())
			}
			zr, err := gzip.NewReader(bytes.NewReader(w.Body.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if body := readAll(t, zr); !bytes.Equal(body, plain.Body.Bytes()) {
				t.Error("gzip body does not decompress to the feed")
			}
			etag := w.Header().Get("ETag")
			if etag == plain.Header().Get("ETag") || !strings.HasSuffix(etag, `-gz"`) {
				t.Errorf("gzip ETag %q must differ from %q", etag, plain.Header().Get("ETag"))
			}
			if c := e.get("GET", path, "Accept-Encoding", tc.accept, "If-None-Match", etag).Code; c != 304 {
				t.Errorf("gzip revalidation: %d", c)
			}
			if c := e.get("GET", path, "Accept-Encoding", tc.accept, "If-None-Match", plain.Header().Get("ETag")).Code; c != 200 {
				t.Errorf("identity tag for the gzip variant: %d, want 200", c)
			}
		})
	}
}

// TestServeGzipOnFirstRequest: a render stores no gzip copy of a current
// feed; the first requests that take gzip, arriving together, all get one
// copy that decompresses to the feed, and revalidating it needs none.
// Archive pages are stored compressed, as they are kept in memory.
func TestServeGzipOnFirstRequest(t *testing.T) {
	e := newRenderEnv(t, renderSmallArchive)
	e.load("demo.json")
	if _, err := e.pub.RenderAll(e.ctx); err != nil {
		t.Fatal(err)
	}
	docs, err := e.db.FeedDocs(e.ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	archives := 0
	for _, d := range docs {
		if d.Kind == store.FeedKindArchive {
			archives++
			if len(d.Gzip) == 0 {
				t.Errorf("archive page %s stored without its gzip copy", d.Path)
			}
		} else if len(d.Gzip) != 0 {
			t.Errorf("%s stored with a gzip copy before any request", d.Path)
		}
	}
	if archives == 0 {
		t.Fatal("no archive pages rendered")
	}

	const path = "/feeds/departments/home-office.atom"
	plain := e.body(path)
	etag := e.get("GET", path).Header().Get("ETag")
	gzTag := strings.TrimSuffix(etag, `"`) + `-gz"`
	if c := e.get("GET", path, "Accept-Encoding", "gzip", "If-None-Match", gzTag).Code; c != 304 {
		t.Errorf("revalidating the gzip copy before it was made: %d, want 304", c)
	}
	const n = 8
	got := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i] = e.get("GET", path, "Accept-Encoding", "gzip") })
	}
	wg.Wait()
	for i, w := range got {
		if w.Code != 200 || w.Header().Get("Content-Encoding") != "gzip" || w.Header().Get("ETag") != gzTag {
			t.Fatalf("request %d: %d, encoding %q, ETag %q", i, w.Code, w.Header().Get("Content-Encoding"), w.Header().Get("ETag"))
		}
		if !bytes.Equal(w.Body.Bytes(), got[0].Body.Bytes()) {
			t.Errorf("request %d got other gzip bytes", i)
		}
	}
	zr, err := gzip.NewReader(bytes.NewReader(got[0].Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, zr), plain) {
		t.Error("the gzip copy does not decompress to the feed")
	}
}

func TestServeHeadAndErrors(t *testing.T) {
	e := renderDemo(t)
	get := e.get("GET", "/feeds/topics/budget.atom")
	head := e.get("HEAD", "/feeds/topics/budget.atom")
	if head.Code != 200 || head.Body.Len() != 0 {
		t.Errorf("HEAD: %d with %d bytes", head.Code, head.Body.Len())
	}
	for _, k := range []string{"Content-Type", "Content-Length", "ETag", "Last-Modified", "Cache-Control", "Link"} {
		if head.Header().Get(k) != get.Header().Get(k) {
			t.Errorf("HEAD %s %q, GET has %q", k, head.Header().Get(k), get.Header().Get(k))
		}
	}
	if c := e.get("HEAD", "/feeds/topics/budget.atom", "If-None-Match", get.Header().Get("ETag")).Code; c != 304 {
		t.Errorf("conditional HEAD: %d", c)
	}
	for _, path := range []string{
		"/feeds/departments/no-such-department.atom", "/feeds/topics/no-such-topic.rss", "/feeds/all.xml",
		"/feeds/departments/home-office", "/feeds/departments/home-office.atom.gz", "/feeds/other.atom",
		"/feeds/all/archive/1.atom", "/feeds/topics/budget/archive/9.atom", "/feeds/departments/home-office/archive/x.atom",
	} {
		if w := e.get("GET", path); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, w.Code)
		}
	}
	if w := e.get("POST", "/feeds/all.atom"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST a feed: %d, want 405", w.Code)
	}
}

// TestServeArchivePage serves an archive page, kept in memory only as its
// gzip copy, to a client that does not take gzip.
func TestServeArchivePage(t *testing.T) {
	e := newRenderEnv(t, renderSmallArchive)
	e.load("demo.json")
	if _, err := e.pub.RenderAll(e.ctx); err != nil {
		t.Fatal(err)
	}
	const path = "/feeds/all/archive/1.atom"
	plain := e.get("GET", path)
	zipped := e.get("GET", path, "Accept-Encoding", "gzip")
	if plain.Code != 200 || zipped.Code != 200 {
		t.Fatalf("status %d / %d", plain.Code, zipped.Code)
	}
	if plain.Header().Get("Content-Length") != strconv.Itoa(plain.Body.Len()) || plain.Header().Get("Cache-Control") != "public, max-age=86400" {
		t.Errorf("headers %v", plain.Header())
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, zr), plain.Body.Bytes()) || !bytes.Contains(plain.Body.Bytes(), []byte("<fh:archive>")) {
		t.Error("archive page variants differ or are not an archive")
	}
	if c := e.get("GET", path, "If-None-Match", plain.Header().Get("ETag")).Code; c != 304 {
		t.Errorf("revalidating an archive page: %d", c)
	}
}

// BenchmarkServe measures the handler alone (no network): a 200 of the
// gzip copy and a 304, with their allocations.
//
//	go test -run x -bench Serve -benchmem ./feeds/publish/
func BenchmarkServe(b *testing.B) {
	e := renderDemo(b)
	etag := e.get("GET", "/feeds/all.atom", "Accept-Encoding", "gzip").Header().Get("ETag")
	for _, tc := range []struct {
		name   string
		header http.Header
	}{
		{"200-gzip", http.Header{"Accept-Encoding": {"gzip, deflate, br"}}},
		{"304", http.Header{"Accept-Encoding": {"gzip, deflate, br"}, "If-None-Match": {etag}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/feeds/all.atom", nil)
			req.Header = tc.header
			w := &benchWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				e.mux.ServeHTTP(w, req)
			}
		})
	}
}

// benchWriter is a ResponseWriter that keeps nothing.
type benchWriter struct {
	h    http.Header
	code int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *benchWriter) WriteHeader(code int)        { w.code = code }

// TestServeSearch: a search feed is kept a minute per query; after that
// the search runs again, and an unchanged result keeps its ETag and
// Last-Modified so that conditional polls still end in 304s.
func TestServeSearch(t *testing.T) {
	e := renderDemo(t)
	runs := 0
	var results []store.Release
	serve := func(query string, header ...string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest("GET", "/feeds/search.json?"+query, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		err := e.pub.ServeSearch(w, req, "json", publish.SearchFeed{Title: "Search", PageURL: renderBase + "/search?" + query, Query: query},
			func(context.Context) ([]store.Release, error) { runs++; return results, nil })
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	all, err := e.db.FeedReleases(e.ctx, "all", 10)
	if err != nil {
		t.Fatal(err)
	}
	results = all[1:]
	first := serve("q=a")
	if first.Code != 200 || runs != 1 || first.Header().Get("Link") != "<"+renderBase+`/feeds/search.json?q=a>; rel="self"` {
		t.Fatalf("first request: %d, %d searches, Link %q", first.Code, runs, first.Header().Get("Link"))
	}
	renderCheckJSONFeed(t, first.Body.Bytes())
	etag, lastMod := first.Header().Get("ETag"), first.Header().Get("Last-Modified")

	e.now = e.now.Add(30 * time.Second)
	if w := serve("q=a", "If-None-Match", etag); w.Code != 304 || runs != 1 {
		t.Errorf("within the minute: %d after %d searches, want a 304 without searching", w.Code, runs)
	}
	if serve("q=b"); runs != 2 {
		t.Errorf("another query did not search")
	}

	e.now = e.now.Add(time.Minute)
	if w := serve("q=a", "If-Modified-Since", lastMod); w.Code != 304 || runs != 3 {
		t.Errorf("a minute later, same results: %d after %d searches, want a 304 after searching again", w.Code, runs)
	}
	results = all
	e.now = e.now.Add(time.Minute)
	w := serve("q=a", "If-None-Match", etag)
	if w.Code != 200 || runs != 4 || w.Header().Get("ETag") == etag || w.Header().Get("Last-Modified") == lastMod {
		t.Errorf("new results: %d, ETag %s, Last-Modified %s", w.Code, w.Header().Get("ETag"), w.Header().Get("Last-Modified"))
	}
}
