package publish_test

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"herald/feeds/publish"
	"herald/feeds/rules"
	"herald/store"
)

type archiveLink struct {
	Rel  string `xml:"rel,attr"`
	Href string `xml:"href,attr"`
}

type archiveDoc struct {
	Archive *struct{}     `xml:"http://purl.org/syndication/history/1.0 archive"`
	Links   []archiveLink `xml:"link"`
	Entries []struct {
		ID string `xml:"id"`
	} `xml:"entry"`
}

func (d archiveDoc) link(rel string) string {
	for _, l := range d.Links {
		if l.Rel == rel {
			return l.Href
		}
	}
	return ""
}

func (d archiveDoc) ids() []string {
	var out []string
	for _, e := range d.Entries {
		out = append(out, e.ID)
	}
	return out
}

func archiveParse(t *testing.T, e *renderEnv, path string) archiveDoc {
	t.Helper()
	var d archiveDoc
	if err := xml.Unmarshal(e.body(path), &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return d
}

// archiveWalk follows prev-archive from the current Atom feed and returns
// every entry id met, and the archive pages in the order visited.
func archiveWalk(t *testing.T, e *renderEnv, key string) (ids, pages []string) {
	t.Helper()
	path := "/feeds/" + key + ".atom"
	seen := map[string]bool{}
	for path != "" {
		d := archiveParse(t, e, path)
		if path != "/feeds/"+key+".atom" {
			pages = append(pages, path)
			if d.Archive == nil {
				t.Errorf("%s: no fh:archive", path)
			}
			if d.link("current") != renderBase+"/feeds/"+key+".atom" {
				t.Errorf("%s: current link %q", path, d.link("current"))
			}
		}
		for _, id := range d.ids() {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		path = strings.TrimPrefix(d.link("prev-archive"), renderBase)
	}
	slices.Sort(ids)
	return ids, pages
}

func archiveIDs(n ...int) []string {
	var out []string
	for _, i := range n {
		out = append(out, fmt.Sprintf("tag:herald.example.org,2026:release/%d", i))
	}
	slices.Sort(out)
	return out
}

// renderSmallArchive makes the demo's five releases fill archive pages.
var renderSmallArchive = publish.Config{Entries: 2, ArchiveSize: 2}

func TestArchiveHoldsCompleteHistory(t *testing.T) {
	e := newRenderEnv(t, renderSmallArchive)
	e.load("demo.json")
	if _, err := e.pub.RenderAll(e.ctx); err != nil {
		t.Fatal(err)
	}
	// Five releases, pages of two in the order stored: page 1 holds 1 and
	// 2, page 2 holds 3 and 4; 5 waits in the current feed.
	ids, pages := archiveWalk(t, e, "all")
	if want := archiveIDs(1, 2, 3, 4, 5); !slices.Equal(ids, want) {
		t.Errorf("walking all: %v, want %v", ids, want)
	}
	if want := []string{"/feeds/all/archive/2.atom", "/feeds/all/archive/1.atom"}; !slices.Equal(pages, want) {
		t.Errorf("pages %v, want %v", pages, want)
	}
	p1 := archiveParse(t, e, "/feeds/all/archive/1.atom")
	if p1.link("prev-archive") != "" || p1.link("next-archive") != renderBase+"/feeds/all/archive/2.atom" {
		t.Errorf("page 1 links prev %q next %q", p1.link("prev-archive"), p1.link("next-archive"))
	}
	if got := p1.ids(); !slices.Equal(got, []string{"tag:herald.example.org,2026:release/2", "tag:herald.example.org,2026:release/1"}) {
		t.Errorf("page 1 entries %v", got)
	}
	ids, _ = archiveWalk(t, e, "departments/home-office")
	if want := archiveIDs(1, 2, 5); !slices.Equal(ids, want) {
		t.Errorf("walking home-office: %v, want %v", ids, want)
	}
	renderGolden(t, "archive_feeds_all_archive_1.atom", e.body("/feeds/all/archive/1.atom"))
	renderGolden(t, "archive_feeds_all.atom", e.body("/feeds/all.atom"))
	renderFeedparser(t, map[string][]byte{
		"/feeds/all/archive/1.atom": e.body("/feeds/all/archive/1.atom"),
		"/feeds/all.atom":           e.body("/feeds/all.atom"),
	})

	// Full pages never change, but for the newest gaining its next-archive
	// link when the next page fills (RFC 5005: no link to a page that does
	// not exist yet); a page that fills appears, and releases not yet on a
	// full page stay in the current feed.
	before := map[string]string{}
	for _, p := range []string{"/feeds/all/archive/1.atom", "/feeds/departments/home-office/archive/1.atom"} {
		before[p] = e.get("GET", p).Header().Get("ETag")
	}
	p2 := archiveParse(t, e, "/feeds/all/archive/2.atom")
	if p2.link("next-archive") != "" {
		t.Errorf("the newest page links next-archive %q before it exists", p2.link("next-archive"))
	}
	e.now = time.Date(2026, 3, 6, 9, 0, 0, 0, time.UTC)
	e.pull("treasury",
		store.Entry{GUID: "tr-200", Title: "Spending review timetable", Published: time.Date(2026, 3, 6, 8, 0, 0, 0, time.UTC)},
		store.Entry{GUID: "tr-201", Title: "Tax statistics", Published: time.Date(2026, 3, 6, 8, 30, 0, 0, time.UTC)})
	e.renderDirty()
	for p, etag := range before {
		if got := e.get("GET", p).Header().Get("ETag"); got != etag {
			t.Errorf("%s changed after new releases: %s -> %s", p, etag, got)
		}
	}
	if p2now := archiveParse(t, e, "/feeds/all/archive/2.atom"); !slices.Equal(p2now.ids(), p2.ids()) ||
		p2now.link("next-archive") != renderBase+"/feeds/all/archive/3.atom" {
		t.Errorf("page 2 after page 3 filled: entries %v (were %v), next-archive %q", p2now.ids(), p2.ids(), p2now.link("next-archive"))
	}
	ids, pages = archiveWalk(t, e, "all")
	if want := archiveIDs(1, 2, 3, 4, 5, 6, 7); !slices.Equal(ids, want) {
		t.Errorf("walking all after two more: %v, want %v", ids, want)
	}
	if len(pages) != 3 {
		t.Errorf("pages %v, want 3", pages)
	}
	if w := e.get("GET", "/feeds/all/archive/4.atom"); w.Code != http.StatusNotFound {
		t.Errorf("page 4 does not exist yet, got %d", w.Code)
	}
}

// TestArchiveTopicRuleChange: a topic's new rule re-tags old releases, so
// its pages no longer match and are rebuilt.
func TestArchiveTopicRuleChange(t *testing.T) {
	e := newRenderEnv(t, publish.Config{Entries: 1, ArchiveSize: 2})
	e.load("demo.json")
	if _, err := e.pub.RenderAll(e.ctx); err != nil {
		t.Fatal(err)
	}
	ids, _ := archiveWalk(t, e, "topics/human-trafficking")
	if want := archiveIDs(1, 5); !slices.Equal(ids, want) {
		t.Fatalf("human-trafficking: %v, want %v", ids, want)
	}
	e.now = e.now.Add(time.Hour)
	if _, err := e.db.UpsertTopic(e.ctx, store.Topic{Slug: "human-trafficking", Title: "Human trafficking and modern slavery",
		Rule: store.Rule{Keywords: []string{"ferry", "harbour", "helpline"}}}, &rules.Topics{}); err != nil {
		t.Fatal(err)
	}
	changed := e.renderDirty()
	if !slices.Contains(changed, "topic:human-trafficking") {
		t.Errorf("changed %v", changed)
	}
	ids, pages := archiveWalk(t, e, "topics/human-trafficking")
	if want := archiveIDs(1, 2, 5); !slices.Equal(ids, want) {
		t.Errorf("after the rule change: %v, want %v", ids, want)
	}
	if len(pages) != 1 {
		t.Errorf("pages %v, want one full page", pages)
	}
}
