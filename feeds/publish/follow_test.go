package publish_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"herald/feeds/publish"
	"herald/store"
	"herald/store/storetest"
)

// instanceEnv is one Herald instance on a shared database: its own store
// handle and publisher.
func instanceEnv(t *testing.T, database string) *renderEnv {
	t.Helper()
	e := &renderEnv{t: t, ctx: context.Background(), now: time.Date(2026, 3, 5, 9, 0, 0, 0, time.UTC),
		sources: map[string]store.Source{}, cfg: publish.Config{BaseURL: renderBase}}
	db, err := store.Open(e.ctx, database, store.WithClock(func() time.Time { return e.now }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	e.pub = e.publisher()
	return e
}

// follow runs the publisher's Follow until the test ends.
func follow(t *testing.T, e *renderEnv, every time.Duration) {
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.pub.Follow(ctx, every) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// TestFeedsServedAlikeByEveryInstance: a feed one instance renders is
// served by another, with the same bytes and ETag, within a second.
func TestFeedsServedAlikeByEveryInstance(t *testing.T) {
	database := storetest.Database(t)
	a := instanceEnv(t, database)
	a.load("demo.json")
	if _, err := a.pub.RenderAll(a.ctx); err != nil {
		t.Fatal(err)
	}
	if storetest.Engine() != store.Postgres {
		// One process per SQLite file: there is no one to follow.
		start := time.Now()
		if err := a.pub.Follow(a.ctx, time.Millisecond); err != nil || time.Since(start) > time.Second {
			t.Fatalf("Follow on SQLite: %v after %v", err, time.Since(start))
		}
		return
	}
	b := instanceEnv(t, database)
	if err := b.pub.Warm(b.ctx); err != nil {
		t.Fatal(err)
	}
	follow(t, a, 100*time.Millisecond)
	follow(t, b, 100*time.Millisecond)
	const path = "/feeds/departments/treasury.atom"
	etag := func(e *renderEnv) string { return e.get(http.MethodGet, path).Header().Get("ETag") }
	before := etag(a)
	if before == "" || etag(b) != before {
		t.Fatalf("at start: ETag %q on one instance, %q on the other", before, etag(b))
	}
	time.Sleep(200 * time.Millisecond) // both listening

	a.now = a.now.Add(time.Hour)
	a.pull("treasury", store.Entry{GUID: "tr-900", Link: "https://news.example.org/tr/tr-900", Title: "Tax statistics",
		Published: a.now})
	if changed := a.renderDirty(); len(changed) == 0 {
		t.Fatal("nothing rendered")
	}
	start := time.Now()
	after := etag(a)
	if after == before {
		t.Fatal("the renderer's ETag did not change")
	}
	for etag(b) != after {
		if time.Since(start) > time.Second {
			t.Fatalf("the other instance serves ETag %q a second after the render, want %q", etag(b), after)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the other instance served the new feed after %v", time.Since(start).Round(time.Millisecond))
	if string(b.body(path)) != string(a.body(path)) {
		t.Error("same ETag, different bytes")
	}
	// The gzip copy too.
	gz := func(e *renderEnv) string {
		return e.get(http.MethodGet, path, "Accept-Encoding", "gzip").Header().Get("ETag")
	}
	if gz(a) != gz(b) {
		t.Errorf("gzip ETags differ: %q and %q", gz(a), gz(b))
	}
}
