package publish_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"herald/feeds/publish"
	"herald/feeds/rules"
	"herald/store"
)

// TestRenderAgainMatchesFullRender: a feed rendered again copies the
// entries it already showed from its previous documents and encodes only
// new or changed ones. After every kind of change, each current document
// must be, byte for byte, what a publisher rendering everything from
// scratch writes.
func TestRenderAgainMatchesFullRender(t *testing.T) {
	e := newRenderEnv(t, publish.Config{Entries: 4, ArchiveSize: 5})
	e.load("demo.json")
	e.now = time.Date(2026, 3, 5, 9, 0, 0, 0, time.UTC)
	if _, err := e.pub.RenderAll(e.ctx); err != nil {
		t.Fatal(err)
	}
	entry := func(guid, title, summary string, published time.Time) store.Entry {
		return store.Entry{GUID: guid, Link: "https://news.example.org/ho/" + guid, Title: title,
			Summary: "<p>" + summary + "</p>", PlainSummary: summary, Categories: []string{"Crime"}, Published: published}
	}
	steps := []struct {
		name string
		do   func()
	}{
		{"a new release", func() {
			e.pull("home-office", entry("n1", "Trafficking gangs disrupted", "Arrests at ferry ports.", e.now.Add(-time.Hour)))
		}},
		{"an edit of a release every feed shows", func() {
			e.pull("home-office", entry("n1", "Trafficking gangs disrupted", "Arrests at ferry ports & harbours.", e.now.Add(-2*time.Hour)))
		}},
		{"a backdated release", func() {
			e.pull("home-office", entry("n2", "Harbour trafficking report", "Published late.", e.now.Add(-30*24*time.Hour)))
		}},
		{"releases that fill archive pages", func() {
			var es []store.Entry
			for i := range 7 {
				es = append(es, entry(fmt.Sprintf("m%d", i), fmt.Sprintf("Modern slavery case %d", i), "Court news.", e.now.Add(-time.Duration(i)*time.Minute)))
			}
			e.pull("home-office", es...)
		}},
		{"an edit that leaves a topic", func() {
			e.pull("home-office", entry("m3", "Court case closed", "Court news.", e.now.Add(-3*time.Minute)))
		}},
		{"a department renamed", func() {
			if _, err := e.db.UpsertDepartment(e.ctx, store.Department{Slug: "home-office", Name: "The Home Office",
				URL: "https://news.example.org/home-office"}); err != nil {
				t.Fatal(err)
			}
		}},
		{"a topic retitled", func() {
			if _, err := e.db.UpsertTopic(e.ctx, store.Topic{Slug: "harbours", Title: "Harbours and ports",
				Rule: store.Rule{Keywords: []string{"harbour"}}}, &rules.Topics{}); err != nil {
				t.Fatal(err)
			}
		}},
		{"a topic retired", func() {
			if err := e.db.RetireTopic(e.ctx, "budget"); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, step := range steps {
		e.now = e.now.Add(time.Hour)
		step.do()
		e.renderDirty()
		fresh, err := publish.NewPublisher(e.db, e.cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		fresh.Now = func() time.Time { return e.now }
		if _, err := fresh.RenderAll(e.ctx); err != nil {
			t.Fatal(err)
		}
		freshMux := http.NewServeMux()
		fresh.Routes(freshMux)
		for _, path := range spliceCurrentPaths(t, e) {
			want := httptest.NewRecorder()
			freshMux.ServeHTTP(want, httptest.NewRequest("GET", path, nil))
			got := e.get("GET", path)
			if got.Code != http.StatusOK || want.Code != http.StatusOK {
				t.Fatalf("after %s: GET %s: %d, from scratch %d", step.name, path, got.Code, want.Code)
			}
			if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
				t.Errorf("after %s: %s differs from a render from scratch:\n%s\n--- from scratch:\n%s", step.name, path, got.Body, want.Body)
			}
		}
	}
}

// spliceCurrentPaths lists the current feed documents of the env's store.
func spliceCurrentPaths(t *testing.T, e *renderEnv) []string {
	t.Helper()
	depts, err := e.db.Departments(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	topics, err := e.db.FeedTopics(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	feeds := []string{"/feeds/all"}
	for _, d := range depts {
		feeds = append(feeds, "/feeds/departments/"+d.Slug)
	}
	for _, tp := range topics {
		feeds = append(feeds, "/feeds/topics/"+tp.Slug)
	}
	var out []string
	for _, f := range feeds {
		for _, ext := range []string{"atom", "rss", "json"} {
			out = append(out, f+"."+ext)
		}
	}
	return out
}
