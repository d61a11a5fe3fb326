package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"herald/cmd/herald/harness"
	"herald/store"
)

// testPublisherFaults serves every kind of bad publisher at once (the bad
// inputs of ingest) while readers poll the feeds: the good sources must
// keep updating, every feed must keep serving, the bad sources must fail
// with an error or yield only clean releases, and memory must stay flat.
func testPublisherFaults(t *testing.T, bin string, fig *figures) {
	pub := harness.NewPublisher(t, harness.PublisherOptions{ETags: true})
	in := harness.NewInstance(t, bin, t.TempDir())
	secretPath := filepath.Join(t.TempDir(), "secret.txt")
	const marker = "XXE-MARKER-7f3a9c"
	if err := os.WriteFile(secretPath, []byte(marker), 0o600); err != nil {
		t.Fatal(err)
	}
	pubDate := time.Now().UTC().Add(-time.Hour).Format(time.RFC1123Z)
	fixture := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "reliability", name))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("SECRET_PATH"), []byte(secretPath))
		return bytes.ReplaceAll(b, []byte("PUBDATE"), []byte(pubDate))
	}
	serveBytes := func(ctype string, body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Write(body)
		}
	}
	good := harness.RSS("good", []harness.Item{{GUID: "g1", Title: "Tide tables for the spring", Summary: "<p>Published.</p>",
		Published: time.Now().UTC().Add(-2 * time.Hour)}})
	// Must fail: nothing can be read from them.
	mustFail := map[string]http.HandlerFunc{
		"malformed": serveBytes("application/rss+xml", fixture("malformed.xml")),
		"html-page": serveBytes("text/html; charset=utf-8", fixture("page.html")),
		"truncated": serveBytes("application/rss+xml", good[:len(good)*2/3]),
		"huge": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/rss+xml")
			io.WriteString(w, `<?xml version="1.0"?><rss version="2.0"><channel><title>Huge</title>`)
			chunk := []byte(strings.Repeat("<item><title>Filler entry</title><description>"+strings.Repeat("x", 900)+"</description></item>", 64))
			for sent := 0; sent < 50<<20; sent += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		},
		"stall": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/rss+xml")
			w.Write(good[:200])
			http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(time.Minute):
			}
		},
		"redirect-loop": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.Path+"?again="+strconv.Itoa(len(r.URL.RawQuery)), http.StatusFound)
		},
	}
	// May yield releases, which must then be clean.
	bestEffort := map[string]http.HandlerFunc{
		"billion-laughs": serveBytes("application/rss+xml", fixture("billion-laughs.xml")),
		"xxe":            serveBytes("application/rss+xml", fixture("xxe.xml")),
		"duplicate-ids":  serveBytes("application/rss+xml", fixture("duplicate-ids.xml")),
		"missing-fields": serveBytes("application/rss+xml", fixture("missing-fields.xml")),
		"invalid-utf8": serveBytes("application/rss+xml", []byte(`<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>`+
			`<title>Bytes</title><item><title>Pier `+"\xff\xfe"+` repairs</title><guid>u1</guid><pubDate>`+pubDate+`</pubDate>`+
			`<description>Caf`+"\xe9"+` reopens</description></item></channel></rss>`)),
		"control-chars": serveBytes("application/rss+xml", []byte(`<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>`+
			`<title>Controls</title><item><title>Buoy `+"\x01\x07\x1b[31m"+` relaid</title><guid>c1</guid><pubDate>`+pubDate+`</pubDate>`+
			`<description>Line`+"\x0b"+`feed</description></item></channel></rss>`)),
	}
	depts := []map[string]any{{"slug": "good-a", "name": "Good Office A"}, {"slug": "good-b", "name": "Good Office B"},
		{"slug": "hostile", "name": "Hostile Publishers"}}
	sources := []map[string]any{
		{"name": "good-a", "url": pub.FeedURL("good-a"), "department": "good-a", "format": "rss"},
		{"name": "good-b", "url": pub.FeedURL("good-b"), "department": "good-b", "format": "rss"},
	}
	var names []string
	for name := range mustFail {
		names = append(names, name)
	}
	for name := range bestEffort {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		h := mustFail[name]
		if h == nil {
			h = bestEffort[name]
		}
		pub.Handle("/bad/"+name, h)
		sources = append(sources, map[string]any{"name": name, "url": pub.URL("/bad/" + name), "department": "hostile", "format": "auto"})
	}
	in.Config["departments"], in.Config["sources"] = depts, sources
	in.Config["schedule"] = map[string]any{"pull": "@every 1s", "daily_digest": "0 0 1 1 *", "weekly_digest": "0 0 1 1 *"}
	in.Config["pull"] = map[string]any{"allow_private": true, "timeout": "3s", "max_body": 1 << 20, "concurrency": 4}
	in.WriteConfig()
	seq := 0
	addGood := func() {
		seq++
		for _, src := range []string{"good-a", "good-b"} {
			pub.Add(src, harness.Item{GUID: fmt.Sprintf("%s-%d", src, seq), Title: fmt.Sprintf("%s update %d on the harbour", src, seq),
				Summary: "<p>Routine update.</p>", Published: time.Now().UTC().Add(-time.Minute).Truncate(time.Second)})
		}
	}
	addGood()

	s := in.Serve()
	s.WaitReady(t, time.Minute)

	// Readers poll every feed meanwhile.
	urls := []string{"/feeds/all", "/feeds/departments/good-a", "/feeds/departments/good-b", "/feeds/departments/hostile"}
	var requests, failures atomic.Int64
	var failMu sync.Mutex
	var firstFailure string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			etags := map[string]string{}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				u := urls[(c+i)%len(urls)] + []string{".atom", ".rss", ".json"}[i%3]
				req, _ := http.NewRequest("GET", in.Base()+u, nil)
				if e := etags[u]; e != "" && i%2 == 0 {
					req.Header.Set("If-None-Match", e)
				}
				resp, err := in.Client.Do(req)
				requests.Add(1)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					etags[u] = resp.Header.Get("ETag")
				}
				if err != nil || (resp.StatusCode != 200 && resp.StatusCode != 304) {
					failures.Add(1)
					failMu.Lock()
					if firstFailure == "" {
						firstFailure = fmt.Sprintf("%s: %v %v", u, err, resp)
					}
					failMu.Unlock()
				}
			}
		}()
	}

	var slowest time.Duration
	const rounds = 3
	for range rounds {
		addGood()
		added := time.Now()
		want := fmt.Sprintf("update %d on the harbour", seq)
		for _, src := range []string{"good-a", "good-b"} {
			for {
				if bytes.Contains(in.Get("/feeds/departments/"+src+".atom"), []byte(want)) {
					break
				}
				if time.Since(added) > 20*time.Second {
					t.Fatalf("%s's new release is not in its feed 20s after it was published, with the hostile publishers failing", src)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		slowest = max(slowest, time.Since(added))
		time.Sleep(time.Second)
	}
	close(stop)
	wg.Wait()
	if failures.Load() > 0 {
		t.Errorf("%d of %d feed requests failed, first: %s", failures.Load(), requests.Load(), firstFailure)
	}

	code, raw := in.API("GET", "/api/v1/sources", nil)
	var srcs []store.Source
	if code != 200 || json.Unmarshal(raw, &srcs) != nil {
		t.Fatalf("GET /api/v1/sources: %d %s", code, raw)
	}
	var failedNames, examples []string
	for _, src := range srcs {
		switch {
		case mustFail[src.Name] != nil:
			if src.LastStatus != "failed" || src.LastError == "" || src.FailureCount < 1 {
				t.Errorf("source %s: status %q, error %q, failures %d; want a recorded failure", src.Name, src.LastStatus, src.LastError, src.FailureCount)
			}
			failedNames = append(failedNames, src.Name)
			if len(examples) < 3 {
				examples = append(examples, fmt.Sprintf("%s: %q", src.Name, harness.Tail(src.LastError, 80)))
			}
		case src.Name == "good-a" || src.Name == "good-b":
			if src.FailureCount != 0 || src.LastError != "" {
				t.Errorf("good source %s: %d failures, %q", src.Name, src.FailureCount, src.LastError)
			}
		default:
			if src.LastStatus == "failed" {
				failedNames = append(failedNames, src.Name)
			}
		}
	}
	// What was stored is clean.
	rels := in.QueryStrings(`SELECT s.name, r.guid, r.title, r.summary, r.body FROM releases r JOIN sources s ON s.id = r.source_id`)
	bestEffortStored := 0
	for _, r := range rels {
		name := r[0]
		if mustFail[name] != nil {
			t.Errorf("source %s stored release %q", name, r[1])
		}
		if bestEffort[name] != nil {
			bestEffortStored++
		}
		for i, field := range r[2:] {
			if !utf8.ValidString(field) {
				t.Errorf("release %s/%s: field %d is not valid UTF-8", name, r[1], i)
			}
			if strings.Contains(field, marker) {
				t.Errorf("release %s/%s holds the content of a local file (XXE)", name, r[1])
			}
			if strings.Contains(field, "lollollollollol") || len(field) > 1<<20 {
				t.Errorf("release %s/%s holds an expanded entity or a %d-byte field", name, r[1], len(field))
			}
			for _, c := range field {
				if c != '\n' && c != '\t' && c != '\r' && (unicode.IsControl(c) || c == 0xFFFE || c == 0xFFFF) {
					t.Errorf("release %s/%s: field %d holds control character %U", name, r[1], i, c)
					break
				}
			}
		}
	}
	dupGUIDs := in.QueryInt(`SELECT count(*) FROM (SELECT 1 FROM releases GROUP BY source_id, guid HAVING count(*) > 1) AS dup`)
	if dupGUIDs > 0 {
		t.Errorf("%d releases stored twice", dupGUIDs)
	}
	feedDocs := 0
	for _, key := range []string{"all", "department:good-a", "department:good-b", "department:hostile"} {
		_, docs := feedTitles(t, in, key)
		feedDocs += docs
	}
	rss := s.PeakRSS()
	if rss > 300<<20 {
		t.Errorf("peak RSS %d MB while refusing a 50 MB body", rss>>20)
	}
	if problems := logProblems(in, false); len(problems) > 0 {
		t.Errorf("the logs report %d problems, first: %s", len(problems), problems[0])
	}
	s.Stop(t)
	sort.Strings(failedNames)
	fig.add(t, "publisher faults: %d sources at once, 2 good and %d hostile (%s); %d feed requests meanwhile, %d failed; "+
		"good sources updated %d of %d times, in their feeds within %s; failed with a recorded error: %s (%s); "+
		"%d releases kept from best-effort sources, all clean; %d feed documents valid; peak RSS %d MB",
		len(srcs), len(names), strings.Join(names, ", "), requests.Load(), failures.Load(), rounds, rounds,
		slowest.Round(10*time.Millisecond), strings.Join(failedNames, ", "), strings.Join(examples, "; "),
		bestEffortStored, feedDocs, rss>>20)
}
