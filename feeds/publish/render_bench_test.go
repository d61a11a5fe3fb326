package publish_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"herald/feeds/publish"
	"herald/feeds/rules"
	"herald/store"
	"herald/store/storetest"
)

// benchArchive builds an archive of n releases across 25 departments and
// 1,000 topics, each release tagged with one to three topics (by subject
// words in its title that the topics' rules match). Everything goes
// through the store; the releases are stored with one ApplyPull per
// source, thousands of entries in one transaction, with the clock at that
// source's newest release so no date counts as in the future.
func benchArchive(b *testing.B, n int, clock *time.Time) (*store.DB, []store.Source) {
	b.Helper()
	ctx := context.Background()
	*clock = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	db, err := store.Open(ctx, storetest.Database(b), store.WithClock(func() time.Time { return *clock }))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	start := *clock
	var sources []store.Source
	for i := range 25 {
		slug := fmt.Sprintf("department-%02d", i)
		if _, err := db.UpsertDepartment(ctx, store.Department{Slug: slug, Name: fmt.Sprintf("Department %02d", i)}); err != nil {
			b.Fatal(err)
		}
		src, err := db.UpsertSource(ctx, store.Source{Name: slug, URL: "https://news.example.org/" + slug + ".atom",
			DepartmentSlug: slug, Format: "auto", Enabled: true})
		if err != nil {
			b.Fatal(err)
		}
		sources = append(sources, src)
	}
	for i := range 1000 {
		if _, err := db.UpsertTopic(ctx, store.Topic{Slug: fmt.Sprintf("topic-%04d", i), Title: fmt.Sprintf("Subject %04d", i),
			Rule: store.Rule{Keywords: []string{fmt.Sprintf("subject%04d", i)}}}, &rules.Topics{}); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	body := "<p>" + strings.Repeat("The department announced a further change to the way it works with partners. ", 12) + "</p>"
	entries := make([][]store.Entry, len(sources))
	for id := 1; id <= n; id++ {
		src := rng.IntN(len(sources))
		pub := start.Add(time.Duration(id) * 10 * time.Minute)
		topics := []int{rng.IntN(1000), rng.IntN(1000), rng.IntN(1000)}[:1+rng.IntN(3)]
		var words []string
		for _, t := range topics {
			words = append(words, fmt.Sprintf("subject%04d", t))
		}
		title := fmt.Sprintf("Release %d on %s", id, strings.Join(words, " and "))
		entries[src] = append(entries[src], store.Entry{GUID: fmt.Sprintf("bench-%d", id),
			Link: fmt.Sprintf("https://news.example.org/releases/%d", id), Title: title,
			Summary: "<p>" + title + ".</p>", PlainSummary: title + ".", Body: body,
			Categories: []string{"News"}, Published: pub})
	}
	for i, es := range entries {
		if len(es) == 0 {
			continue
		}
		*clock = es[len(es)-1].Published
		if _, err := db.ApplyPull(ctx, sources[i].ID, es, store.PullOptions{Topics: &rules.Topics{}}); err != nil {
			b.Fatal(err)
		}
	}
	return db, sources
}

// BenchmarkNewReleaseVisible measures making one new release visible in
// its feeds: store it (ApplyPull, which tags it and marks its feeds
// dirty), then RenderDirty, which renders those feeds in three formats
// and stores them; the iteration ends when the department's feed, served
// over the handler gzipped as feed readers ask for it (its gzip copy made
// on this first request), holds the release. The archive already holds
// 10,000 or 100,000 releases and 1,000 topics, all rendered. Besides the
// time, it reports the process's CPU time per release (cpu-ms/op), which
// a busy machine disturbs less; on PostgreSQL the server's is not in it.
//
//	go test -run x -bench NewReleaseVisible -benchtime 20x ./feeds/publish/
func BenchmarkNewReleaseVisible(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("releases=%d", n), func(b *testing.B) {
			var now time.Time
			t0 := time.Now()
			db, sources := benchArchive(b, n, &now)
			b.Logf("%d releases: building the archive took %v", n, time.Since(t0).Round(time.Millisecond))
			ctx := context.Background()
			now = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			pub, err := publish.NewPublisher(db, publish.Config{BaseURL: "https://herald.example.org"}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			pub.Now = db.Now
			t0 = time.Now()
			if _, err := pub.RenderAll(ctx); err != nil {
				b.Fatal(err)
			}
			b.Logf("%d releases: first full render took %v", n, time.Since(t0).Round(time.Millisecond))
			mux := http.NewServeMux()
			pub.Routes(mux)
			// One compiled topic set across iterations, as a running
			// Herald's puller keeps one until topics change.
			topics := &rules.Topics{}
			// The garbage of building and rendering the archive is
			// collected now, not in the first timed iterations.
			runtime.GC()
			b.ResetTimer()
			cpu0 := storetest.ProcessCPU()
			for i := 0; b.Loop(); i++ {
				now = now.Add(time.Minute)
				src := sources[i%len(sources)]
				title := fmt.Sprintf("Visible release %d on subject%04d", i, (i*37)%1000)
				if _, err := db.ApplyPull(ctx, src.ID, []store.Entry{{GUID: fmt.Sprintf("new-%d", i),
					Link: fmt.Sprintf("https://news.example.org/new/%d", i), Title: title,
					Summary: "<p>" + title + ".</p>", Published: now}}, store.PullOptions{Topics: topics, Alert: rules.AlertNew(0), Realert: rules.Realert}); err != nil {
					b.Fatal(err)
				}
				if _, err := pub.RenderDirty(ctx); err != nil {
					b.Fatal(err)
				}
				w := httptest.NewRecorder()
				req := httptest.NewRequest("GET", "/feeds/departments/"+src.Name+".atom", nil)
				req.Header.Set("Accept-Encoding", "gzip")
				mux.ServeHTTP(w, req)
				zr, err := gzip.NewReader(w.Body)
				if err != nil {
					b.Fatal(err)
				}
				body, err := io.ReadAll(zr)
				if err != nil {
					b.Fatal(err)
				}
				if !bytes.Contains(body, []byte(title)) {
					b.Fatalf("release %d is not in its department's feed", i)
				}
			}
			cpu := storetest.ProcessCPU() - cpu0
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
			}
		})
	}
}
