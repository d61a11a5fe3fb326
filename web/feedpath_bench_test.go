package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"herald/feeds/publish"
	"herald/feeds/rules"
	"herald/store"
	"herald/store/storetest"
	"herald/templates"
)

// BenchmarkFeedPath measures in process, without the network, what each
// layer of Herald's handler chain adds to a served feed (a 50-entry Atom
// feed, as a plain 200 and as a 304): the feeds handler on a bare mux of
// its routes, then the site's mux with every route, then body limit,
// security headers, and the outer layer (request id, latency histogram,
// access log at the default level). Compare the sub-benchmarks' ns/op and
// allocs/op to see what a layer costs; net/http's own share (reading the
// request, writing the header block, deadlines) is not here: see
// BenchmarkFeedServing in bench/ for the whole.
//
//	go test -run '^$' -bench FeedPath -benchmem ./web/
func BenchmarkFeedPath(b *testing.B) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	db, _ := storetest.Open(b, now)
	storetest.Department(b, db, "coastal", "Department for Coastal Affairs")
	src, err := db.CreateSource(ctx, store.Source{Name: "coastal", URL: "https://coastal.example.org/feed.rss", DepartmentSlug: "coastal", Format: "auto", Enabled: true})
	if err != nil {
		b.Fatal(err)
	}
	var entries []store.Entry
	for i := 1; i <= 50; i++ {
		entries = append(entries, store.Entry{GUID: fmt.Sprint("c-", i), Link: fmt.Sprint("https://coastal.example.org/", i),
			Title: fmt.Sprintf("Coastal notice %d", i), Summary: "<p>The programme will support coastal communities.</p>",
			Published: now.Add(-time.Duration(51-i) * time.Hour)})
	}
	if _, err := db.ApplyPull(ctx, src.ID, entries, store.PullOptions{Topics: &rules.Topics{}, Alert: rules.AlertNew(0), Realert: rules.Realert}); err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	pub, err := publish.NewPublisher(db, publish.Config{BaseURL: "http://news.example.org"}, reg, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pub.RenderAll(ctx); err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := New(db, Config{BaseURL: "http://news.example.org", AdminTokens: []string{"bench-token"}, TemplatesFS: templates.Embedded()},
		Deps{Feeds: pub, Metrics: reg}, log, reg)
	if err != nil {
		b.Fatal(err)
	}
	bare := http.NewServeMux()
	pub.Routes(bare)
	layers := []struct {
		name string
		h    http.Handler
	}{
		{"feeds-handler", bare},
		{"site-mux", s.mux},
		{"+limit-body", s.limitBody(s.mux)},
		{"+security-headers", s.secure(s.limitBody(s.mux))},
		{"+id-metrics-log", s.handler},
	}
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, httptest.NewRequest("GET", "/feeds/all.atom", nil))
	if rec.Code != http.StatusOK {
		b.Fatalf("GET /feeds/all.atom: %d", rec.Code)
	}
	etag := rec.Header().Get("ETag")
	for _, mode := range []struct {
		name   string
		header http.Header
		code   int
	}{
		{"200", http.Header{}, http.StatusOK},
		{"304", http.Header{"If-None-Match": {etag}}, http.StatusNotModified},
	} {
		for _, l := range layers {
			b.Run(mode.name+"/"+l.name, func(b *testing.B) {
				req := httptest.NewRequest("GET", "/feeds/all.atom", nil)
				req.Header = mode.header
				w := &discardWriter{h: http.Header{}}
				b.ReportAllocs()
				for b.Loop() {
					clear(w.h)
					w.code = 0
					l.h.ServeHTTP(w, req)
				}
				if w.code != mode.code {
					b.Fatalf("status %d, want %d", w.code, mode.code)
				}
			})
		}
	}
}

// discardWriter is a ResponseWriter that keeps the status and nothing
// else.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}
func (w *discardWriter) WriteHeader(code int) { w.code = code }
