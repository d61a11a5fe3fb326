package publish_test

import (
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteStatic(t *testing.T) {
	e := newRenderEnv(t, renderSmallArchive)
	e.load("demo.json")
	if _, err := e.pub.RenderAll(e.ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := e.pub.WriteStatic(e.ctx, dir); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/feeds/all.atom", "/feeds/all.rss", "/feeds/all.json", "/feeds/departments/home-office.atom",
		"/feeds/topics/budget.json", "/feeds/all/archive/1.atom", "/feeds/departments/home-office/archive/1.atom", "/feeds.opml"} {
		name := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(path, "/feeds/")))
		if path == "/feeds.opml" {
			name = filepath.Join(dir, "feeds.opml")
		}
		w := e.get("GET", path)
		got, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if !bytes.Equal(got, w.Body.Bytes()) {
			t.Errorf("%s: file differs from what is served", name)
		}
		gz, err := os.ReadFile(name + ".gz")
		if err != nil {
			t.Fatal(err)
		}
		served := e.get("GET", path, "Accept-Encoding", "gzip").Body.Bytes()
		if !bytes.Equal(gz, served) {
			t.Errorf("%s.gz differs from the gzip served", name)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readAll(t, zr), got) {
			t.Errorf("%s.gz does not decompress to %s", name, name)
		}
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		lm, _ := http.ParseTime(w.Header().Get("Last-Modified"))
		if !st.ModTime().Truncate(time.Second).Equal(lm) {
			t.Errorf("%s dated %v, Last-Modified %v", name, st.ModTime(), lm)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*", ".herald-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestOPMLListsEveryFeed(t *testing.T) {
	e := renderDemo(t)
	var doc struct {
		Version string `xml:"version,attr"`
		Title   string `xml:"head>title"`
		Body    []struct {
			Text     string `xml:"text,attr"`
			Type     string `xml:"type,attr"`
			XMLURL   string `xml:"xmlUrl,attr"`
			Children []struct {
				Text    string `xml:"text,attr"`
				Type    string `xml:"type,attr"`
				XMLURL  string `xml:"xmlUrl,attr"`
				HTMLURL string `xml:"htmlUrl,attr"`
			} `xml:"outline"`
		} `xml:"body>outline"`
	}
	if err := xml.Unmarshal(e.body("/feeds.opml"), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != "2.0" || doc.Title == "" || len(doc.Body) != 3 {
		t.Fatalf("OPML %+v", doc)
	}
	if doc.Body[0].XMLURL != renderBase+"/feeds/all.atom" || doc.Body[0].Type != "rss" {
		t.Errorf("first outline %+v", doc.Body[0])
	}
	var urls []string
	for _, group := range doc.Body[1:] {
		for _, c := range group.Children {
			urls = append(urls, c.XMLURL)
			if w := e.get("GET", strings.TrimPrefix(c.XMLURL, renderBase)); w.Code != 200 {
				t.Errorf("%s: %d", c.XMLURL, w.Code)
			}
		}
	}
	want := []string{
		renderBase + "/feeds/departments/culture.atom", renderBase + "/feeds/departments/home-office.atom",
		renderBase + "/feeds/departments/treasury.atom",
		renderBase + "/feeds/topics/budget.atom", renderBase + "/feeds/topics/human-trafficking.atom",
	}
	if strings.Join(urls, " ") != strings.Join(want, " ") {
		t.Errorf("outlines %v, want %v (the retired topic left out)", urls, want)
	}
}
