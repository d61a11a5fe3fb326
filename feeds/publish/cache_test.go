package publish_test

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"herald/feeds/publish"
	"herald/store"
)

// cacheSnapshot is every document the demo serves: bytes and validators.
type cacheSnapshot map[string]struct {
	body          []byte
	etag, lastMod string
}

var cacheAllPaths = append(slices.Clone(renderDemoPaths),
	"/feeds/departments/treasury.atom", "/feeds/departments/treasury.rss", "/feeds/departments/treasury.json",
	"/feeds/topics/human-trafficking.rss", "/feeds/topics/human-trafficking.json", "/feeds/topics/budget.atom")

func cacheSnap(e *renderEnv) cacheSnapshot {
	s := cacheSnapshot{}
	for _, p := range cacheAllPaths {
		w := e.get("GET", p)
		if w.Code != http.StatusOK {
			e.t.Fatalf("GET %s: %d", p, w.Code)
		}
		s[p] = struct {
			body          []byte
			etag, lastMod string
		}{w.Body.Bytes(), w.Header().Get("ETag"), w.Header().Get("Last-Modified")}
	}
	return s
}

// TestCacheETagFollowsBytes makes changes of every kind and checks, for
// every document, that its ETag changed exactly when its bytes did, and
// that only the feeds the change belongs to changed.
func TestCacheETagFollowsBytes(t *testing.T) {
	e := renderDemo(t)
	prev := cacheSnap(e)
	step := func(name string, wantChanged []string, change func()) {
		t.Helper()
		e.now = e.now.Add(time.Hour)
		change()
		changed := e.renderDirty()
		cur := cacheSnap(e)
		var docs []string
		for p, c := range cur {
			o := prev[p]
			sameBytes, sameTag := bytes.Equal(o.body, c.body), o.etag == c.etag
			if sameBytes != sameTag {
				t.Errorf("%s: %s: bytes same %v but ETag same %v", name, p, sameBytes, sameTag)
			}
			if !sameBytes {
				docs = append(docs, p)
				if o.lastMod == c.lastMod {
					t.Errorf("%s: %s changed but kept Last-Modified %s", name, p, c.lastMod)
				}
			} else if o.lastMod != c.lastMod {
				t.Errorf("%s: %s did not change but Last-Modified moved", name, p)
			}
		}
		slices.Sort(docs)
		slices.Sort(wantChanged)
		var keys []string
		for _, k := range changed {
			if k != "opml" {
				keys = append(keys, k)
			}
		}
		if !slices.Equal(keys, wantChanged) {
			t.Errorf("%s: changed keys %v, want %v (documents %v)", name, changed, wantChanged, docs)
		}
		prev = cur
	}
	step("nothing", nil, func() {})
	step("same pull again", nil, func() {
		e.pull("treasury", store.Entry{GUID: "tr-100", Link: "https://news.example.org/tr/spring-budget",
			Title:      "Spring budget sets out spending plans",
			Summary:    "<p>The spring budget sets out spending plans for the next three years.</p>",
			Body:       "<h2>Key points</h2><ul><li>Spending on schools rises</li><li>Fuel duty is frozen</li></ul>",
			Categories: []string{"Economy"}, Published: time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)})
	})
	step("new treasury release", []string{"all", "department:treasury", "topic:budget"}, func() {
		e.pull("treasury", store.Entry{GUID: "tr-102", Link: "https://news.example.org/tr/budget-2",
			Title: "Budget documents published", Published: e.now})
	})
	step("edit of a home office release", []string{"all", "department:home-office", "topic:human-trafficking"}, func() {
		e.pull("home-office", store.Entry{GUID: "https://news.example.org/ho/3", Link: "https://news.example.org/ho/modern-slavery-helpline",
			Title: "Modern slavery helpline extends its hours", Summary: "<p>The helpline now answers calls around the clock.</p>",
			Body: "<p>The helpline will answer calls around the clock, every day of the year.</p>", Categories: []string{"Crime"},
			Published: time.Date(2026, 3, 3, 6, 15, 0, 0, time.UTC)})
	})
	step("retire a topic", []string{"topic:budget"}, func() {
		if err := e.db.RetireTopic(e.ctx, "budget"); err != nil {
			t.Fatal(err)
		}
	})
	step("rename a department without releases", []string{"department:culture"}, func() {
		if _, err := e.db.UpdateDepartment(e.ctx, "culture", store.Department{Name: "Department for Culture and Sport"}); err != nil {
			t.Fatal(err)
		}
	})
	// The author of its releases changes in topic feeds too.
	step("rename a department", []string{"all", "department:home-office", "topic:human-trafficking"}, func() {
		if _, err := e.db.UpsertDepartment(e.ctx, store.Department{Slug: "home-office", Name: "Home Department"}); err != nil {
			t.Fatal(err)
		}
	})
}

// cacheCountingStore is the real store, counting the reads a render makes.
type cacheCountingStore struct {
	*store.DB
	reads int
}

func (s *cacheCountingStore) FeedReleases(ctx context.Context, key string, limit int) ([]store.Release, error) {
	s.reads++
	return s.DB.FeedReleases(ctx, key, limit)
}

func (s *cacheCountingStore) FeedReleaseHeads(ctx context.Context, key string, afterID int64, pageSize, limit int) (after, newest []store.Release, err error) {
	s.reads++
	return s.DB.FeedReleaseHeads(ctx, key, afterID, pageSize, limit)
}

// TestCacheSurvivesRestart: a new publisher over the same store serves the
// same bytes and validators without rendering, and without the store at
// all once loaded.
func TestCacheSurvivesRestart(t *testing.T) {
	e := renderDemo(t)
	before := cacheSnap(e)
	e.now = e.now.Add(24 * time.Hour)
	counting := &cacheCountingStore{DB: e.db}
	pub, err := publish.NewPublisher(counting, e.cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub.Now = func() time.Time { return e.now }
	if err := pub.Warm(e.ctx); err != nil {
		t.Fatal(err)
	}
	if counting.reads != 0 {
		t.Errorf("warming a current cache read %d feeds", counting.reads)
	}
	e.pub = pub
	e.mux = http.NewServeMux()
	pub.Routes(e.mux)
	e.db.Close() // serving needs no database
	after := cacheSnap(e)
	for _, p := range slices.Sorted(maps.Keys(before)) {
		b, a := before[p], after[p]
		if !bytes.Equal(b.body, a.body) || b.etag != a.etag || b.lastMod != a.lastMod {
			t.Errorf("%s differs after a restart", p)
		}
	}
}

// TestCacheConfigChangeRendersAgain: a cache rendered with another base URL
// is not served; Warm renders everything again.
func TestCacheConfigChangeRendersAgain(t *testing.T) {
	e := renderDemo(t)
	e.cfg.BaseURL = "https://news.example.net"
	pub := e.publisher()
	usable, err := pub.Load(e.ctx)
	if err != nil || usable {
		t.Fatalf("Load: usable %v, err %v; want a stale cache", usable, err)
	}
	if err := pub.Warm(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.pub = pub
	if body := e.body("/feeds/all.atom"); !bytes.Contains(body, []byte("https://news.example.net/feeds/all.atom")) ||
		bytes.Contains(body, []byte(renderBase)) {
		t.Error("feeds still carry the old base URL")
	}
}
