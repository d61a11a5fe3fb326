package pull_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"

	"herald/feeds/netguard"
	"herald/feeds/pull"
	"herald/feeds/rules"
	"herald/store"
	"herald/store/storetest"
)

// pullBenchWords and pullBenchPlaces make the 200 subjects (place x
// word) that the generated releases and topics share.
var (
	pullBenchWords = []string{
		"harbour", "ferry", "flood", "coastline", "broadband", "voucher", "mast", "satellite", "archive", "census",
		"canal", "towpath", "reservoir", "lock", "recycling", "street lighting", "fly-tipping", "grant", "consultation", "apprenticeship",
		"school", "hospital", "railway", "bus", "cycling", "housing", "planning", "tax", "pension", "benefit",
		"border", "passport", "visa", "policing", "prison", "court", "fraud", "cyber", "defence", "veterans",
	}
	pullBenchPlaces = []string{"coastal", "rural", "urban", "northern", "island"}
)

// pullBenchFeed is an RSS 2.0 document of n releases shaped like a press
// office's: a headline, an HTML summary with a relative link, a longer
// body, two categories and a date each.
func pullBenchFeed(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>` +
		`<title>Department for Coastal Resilience</title><link>https://coastal.example.org/</link><description>News</description>` + "\n")
	start := time.Date(2026, 2, 28, 12, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		w1 := pullBenchWords[i%len(pullBenchWords)]
		place := pullBenchPlaces[(i/len(pullBenchWords))%len(pullBenchPlaces)]
		w2 := pullBenchWords[(i*7+3)%len(pullBenchWords)]
		fmt.Fprintf(&b, `<item><title>Minister announces new %s %s plan, with changes to %s, in region %d</title>`+
			`<link>https://coastal.example.org/news/release-%d</link><guid isPermaLink="false">dcr-%d</guid>`+
			`<pubDate>%s</pubDate><category>%s</category><category>Press release</category>`+
			`<description><![CDATA[<p>The department has set out how the <strong>%s %s</strong> programme will support communities, `+
			`with funding confirmed for the next three years. <a href="/news/release-%d/annex">Read the annex</a>.</p>]]></description>`+
			`<content:encoded><![CDATA[<p>Today the department published its plan for %s.</p>`+
			`<p>Local authorities will receive guidance in the spring, and a consultation on %s runs until the summer.</p>`+
			`<ul><li>Funding of £%d million</li><li>New advice for residents</li><li>A review after two years</li></ul>`+
			`<p>Notes to editors: <a href="https://coastal.example.org/press">press office</a> contacts are available.</p>]]></content:encoded></item>`+"\n",
			place, w1, w2, i%97, i, i, start.Add(-time.Duration(i)*time.Minute).Format(time.RFC1123Z), w1, place, w1, i, w1, w2, i%500+1)
	}
	b.WriteString("</channel></rss>\n")
	return b.Bytes()
}

// pullBenchTopics defines 200 topics, one per subject, like a national
// newsroom's list: keyword phrases, some limited to a department, some
// also selecting a category, some with exclusions.
func pullBenchTopics(ctx context.Context, db *store.DB) error {
	for i := 0; i < 200; i++ {
		place := pullBenchPlaces[i/len(pullBenchWords)]
		word := pullBenchWords[i%len(pullBenchWords)]
		r := store.Rule{Keywords: []string{place + " " + word, word + " strategy " + place}}
		switch i % 8 {
		case 1, 5:
			r.Departments = []string{"coastal"}
		case 2:
			r.Categories = []string{pullBenchWords[(i+5)%len(pullBenchWords)]}
		case 3, 7:
			r.Exclude = []string{"tax avoidance"}
		}
		if _, err := db.UpsertTopic(ctx, store.Topic{Slug: fmt.Sprintf("topic-%03d", i), Title: fmt.Sprintf("%s %s", place, word), Rule: r}, &rules.Topics{}); err != nil {
			return err
		}
	}
	return nil
}

// pullBenchServer serves feed as an RSS document until the benchmark
// ends.
func pullBenchServer(b *testing.B, feed []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/rss+xml")
		w.Write(feed)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// pullBenchStore opens a fresh store with the coastal department, the
// 200 topics and a source reading the feed at url.
func pullBenchStore(ctx context.Context, b *testing.B, url string) (*store.DB, store.Source) {
	db, err := store.Open(ctx, storetest.Database(b))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.UpsertDepartment(ctx, store.Department{Slug: "coastal", Name: "Department for Coastal Resilience"}); err != nil {
		b.Fatal(err)
	}
	if err := pullBenchTopics(ctx, db); err != nil {
		b.Fatal(err)
	}
	src, err := db.UpsertSource(ctx, store.Source{Name: "coastal", URL: url, DepartmentSlug: "coastal", Format: store.FormatAuto, Enabled: true})
	if err != nil {
		b.Fatal(err)
	}
	return db, src
}

// BenchmarkPull10k pulls a 10,000-entry feed end to end into a fresh
// database each iteration: HTTP fetch, parse, sanitise, hash, insert and
// tag with 200 topics.
//
// Between iterations, with the timer stopped, it also parses the same
// bytes with gofeed alone (as BenchmarkGofeed10k does) and reports the
// ratio of the two rates as x-gofeed: on a shared machine both halves of
// the ratio then see the same load. x-gofeed-cpu is the same ratio of the
// process's CPU time (user and system), which a busy machine disturbs
// less than elapsed time; on PostgreSQL it leaves out the server's work,
// so there only x-gofeed compares the two.
//
//	go test -run '^$' -bench Pull10k -benchtime=3x -cpu 1 ./feeds/pull/
func BenchmarkPull10k(b *testing.B) {
	const n = 10000
	feed := pullBenchFeed(n)
	srv := pullBenchServer(b, feed)
	ctx := context.Background()
	b.SetBytes(int64(len(feed)))
	b.ReportAllocs()
	var tags int
	var gofeedTime, gofeedCPU, pullCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db, _ := pullBenchStore(ctx, b, srv.URL)
		p := pull.NewPuller(db, pull.Config{MaxBody: 64 << 20, Timeout: 5 * time.Minute, Guard: netguard.Guard{AllowPrivate: true}}, nil)
		runtime.GC()
		t0, c0 := time.Now(), storetest.ProcessCPU()
		gofeedParse(b, feed, n)
		gofeedTime += time.Since(t0)
		gofeedCPU += storetest.ProcessCPU() - c0
		// The garbage of the setup and of the parse above is collected
		// now, not in the timed pull.
		runtime.GC()
		c0 = storetest.ProcessCPU()
		b.StartTimer()

		reports, err := p.Pull(ctx, pull.Request{})
		if err != nil {
			b.Fatal(err)
		}
		if len(reports) != 1 || reports[0].New != n {
			b.Fatalf("reports = %+v, want %d new", reports[0].Status+" "+reports[0].Err, n)
		}

		b.StopTimer()
		pullCPU += storetest.ProcessCPU() - c0
		stored, err := db.Releases(ctx, store.ReleaseFilter{Limit: n, WithTopics: true})
		if err != nil {
			b.Fatal(err)
		}
		tags = 0
		for _, r := range stored {
			tags += len(r.Topics)
		}
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
	// How many topics each release matched, so runs with different topic
	// sets are not compared blindly.
	b.ReportMetric(float64(tags)/n, "topics/entry")
	// Entries a second end to end over entries a second parsed by gofeed
	// alone, interleaved in this run.
	b.ReportMetric(gofeedTime.Seconds()/b.Elapsed().Seconds(), "x-gofeed")
	if pullCPU > 0 {
		b.ReportMetric(gofeedCPU.Seconds()/pullCPU.Seconds(), "x-gofeed-cpu")
	}
}

// BenchmarkGofeed10k parses the feed of BenchmarkPull10k with gofeed alone,
// as a program using it would (gofeed.NewParser with its defaults): the
// floor the ingest rate is compared with.
//
//	go test -run '^$' -bench 'Gofeed10k|Pull10k' -benchtime=3x -cpu 1 ./feeds/pull/
func BenchmarkGofeed10k(b *testing.B) {
	const n = 10000
	feed := pullBenchFeed(n)
	b.SetBytes(int64(len(feed)))
	b.ReportAllocs()
	for b.Loop() {
		gofeedParse(b, feed, n)
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
}

// gofeedParse parses feed with gofeed's default parser and checks it read
// n items.
func gofeedParse(b *testing.B, feed []byte, n int) {
	f, err := gofeed.NewParser().Parse(bytes.NewReader(feed))
	if err != nil {
		b.Fatal(err)
	}
	if len(f.Items) != n {
		b.Fatalf("gofeed read %d items, want %d", len(f.Items), n)
	}
}

// BenchmarkParseNormalize10k is the ingest side of BenchmarkPull10k alone
// (decode, parse, sanitise, normalise; no HTTP or store), to tell the two
// costs apart.
func BenchmarkParseNormalize10k(b *testing.B) {
	const n = 10000
	feed := pullBenchFeed(n)
	norm := pull.NewNormalizer()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	b.SetBytes(int64(len(feed)))
	b.ReportAllocs()
	for b.Loop() {
		pf, err := pull.ParseFeed(feed, "application/rss+xml", store.FormatAuto, "https://coastal.example.org/feed")
		if err != nil {
			b.Fatal(err)
		}
		kept := 0
		for _, it := range pf.Items {
			if _, ok := norm.Normalize(it, now); ok {
				kept++
			}
		}
		if kept != n {
			b.Fatalf("kept %d entries, want %d", kept, n)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
}
