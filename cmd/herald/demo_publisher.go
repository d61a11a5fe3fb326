package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed demodata/releases.txt
var demoReleasesText string

// demoDepartment is one sample publisher and the format its feed uses.
type demoDepartment struct {
	Slug, Name, Format, Path string
}

var demoDepartments = []demoDepartment{
	{"home-office", "Home Office", "atom", "/home-office.atom"},
	{"department-for-education", "Department for Education", "rss", "/department-for-education.rss"},
	{"environment-agency", "Environment Agency", "jsonfeed", "/environment-agency.json"},
	{"hm-treasury", "HM Treasury", "govuk-search", "/api/search.json"},
}

type demoItem struct {
	Dept       string
	N          int
	Categories []string
	Title      string
	Summary    string
	Published  time.Time
}

// demoItems spreads the sample releases over the eight weeks before start,
// on weekday working hours, and holds the newest release of two
// departments a few minutes into the future so a running demo sees new
// releases arrive and alerts go out.
func demoItems(start time.Time) []demoItem {
	var items []demoItem
	count := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(demoReleasesText))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.SplitN(line, "|", 4)
		if len(f) != 4 {
			continue
		}
		n := count[f[0]]
		count[f[0]]++
		items = append(items, demoItem{Dept: f[0], N: n, Categories: strings.Split(f[1], ";"), Title: f[2], Summary: f[3]})
	}
	base := start.UTC().Truncate(time.Hour)
	for i := range items {
		it := &items[i]
		switch {
		case it.N == 0 && it.Dept == "home-office":
			it.Published = start.Add(3 * time.Minute)
		case it.N == 0 && it.Dept == "environment-agency":
			it.Published = start.Add(7 * time.Minute)
		default:
			// Newest first: item n of a department is about n*2.8 days old.
			age := time.Duration(it.N)*67*time.Hour + time.Duration(len(it.Dept)*37)*time.Minute
			t := base.Add(-age)
			for t.Weekday() == time.Saturday || t.Weekday() == time.Sunday {
				t = t.Add(-24 * time.Hour)
			}
			if h := t.Hour(); h < 8 || h > 17 {
				t = t.Add(time.Duration(9-h) * time.Hour)
			}
			it.Published = t
		}
	}
	return items
}

// demoPublisher serves the sample departments' feeds the way real
// publishers do: Atom, RSS 2.0, JSON Feed and a search API, with ETag and
// Last-Modified validators, releasing held-back items when their time comes.
type demoPublisher struct {
	items []demoItem
	now   func() time.Time
	base  string
}

// startDemoPublisher serves the sample publishers on loopback, at
// preferAddr when it is free (the address of a previous run, so the links
// and ids of stored releases stay the same), else on any free port.
func startDemoPublisher(start time.Time, now func() time.Time, preferAddr string) (*demoPublisher, *http.Server, error) {
	var ln net.Listener
	var err error
	if preferAddr != "" {
		ln, err = net.Listen("tcp", preferAddr)
	}
	if ln == nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("demo publisher: %w", err)
	}
	p := &demoPublisher{items: demoItems(start), now: now, base: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	for _, d := range demoDepartments {
		mux.HandleFunc("GET "+d.Path, p.feed(d))
	}
	mux.HandleFunc("GET /news/{dept}/{n}", p.article)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return p, srv, nil
}

// addr is the publishers' host:port.
func (p *demoPublisher) addr() string {
	u, _ := url.Parse(p.base)
	return u.Host
}

func (p *demoPublisher) visible(dept string) []demoItem {
	now := p.now()
	var out []demoItem
	for _, it := range p.items {
		if it.Dept == dept && !it.Published.After(now) {
			out = append(out, it)
		}
	}
	return out
}

func (p *demoPublisher) link(it demoItem) string {
	return fmt.Sprintf("%s/news/%s/%d", p.base, it.Dept, it.N)
}

func demoBody(it demoItem) string {
	return "<p>" + xmlEscape(it.Summary) + "</p><p>Further details, including background notes for editors, are on the " +
		"<a href=\"/press-office\">press office page</a>.</p>"
}

func (p *demoPublisher) article(w http.ResponseWriter, r *http.Request) {
	for _, it := range p.items {
		if it.Dept == r.PathValue("dept") && fmt.Sprint(it.N) == r.PathValue("n") && !it.Published.After(p.now()) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, "<!doctype html><title>%s</title><h1>%s</h1>%s", xmlEscape(it.Title), xmlEscape(it.Title), demoBody(it))
			return
		}
	}
	http.NotFound(w, r)
}

func (p *demoPublisher) feed(d demoDepartment) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		items := p.visible(d.Slug)
		var body []byte
		var ctype string
		switch d.Format {
		case "atom":
			body, ctype = p.atom(d, items), "application/atom+xml; charset=utf-8"
		case "rss":
			body, ctype = p.rss(d, items), "application/rss+xml; charset=utf-8"
		case "jsonfeed":
			body, ctype = p.jsonFeed(d, items), "application/feed+json; charset=utf-8"
		default:
			body, ctype = p.search(items), "application/json; charset=utf-8"
		}
		sum := sha256.Sum256(body)
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		var newest time.Time
		for _, it := range items {
			if it.Published.After(newest) {
				newest = it.Published
			}
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", newest.UTC().Format(http.TimeFormat))
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", ctype)
		w.Write(body)
	}
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (p *demoPublisher) atom(d demoDepartment, items []demoItem) []byte {
	var b bytes.Buffer
	updated := time.Unix(0, 0).UTC()
	if len(items) > 0 {
		updated = items[0].Published
	}
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">
<id>%s%s</id><title>%s</title><updated>%s</updated>
<link rel="self" href="%s%s"/><author><name>%s</name></author>
`, p.base, d.Path, xmlEscape(d.Name), updated.Format(time.RFC3339), p.base, d.Path, xmlEscape(d.Name))
	for _, it := range items {
		fmt.Fprintf(&b, `<entry><id>tag:demo.herald.invalid,2026:%s/%d</id><title>%s</title>
<link rel="alternate" type="text/html" href="%s"/><published>%s</published><updated>%s</updated>
<summary type="html">%s</summary><content type="html">%s</content>
`, it.Dept, it.N, xmlEscape(it.Title), p.link(it), it.Published.Format(time.RFC3339), it.Published.Format(time.RFC3339),
			xmlEscape(it.Summary), xmlEscape(demoBody(it)))
		for _, c := range it.Categories {
			fmt.Fprintf(&b, `<category term="%s"/>`, xmlEscape(c))
		}
		b.WriteString("</entry>\n")
	}
	b.WriteString("</feed>\n")
	return b.Bytes()
}

func (p *demoPublisher) rss(d demoDepartment, items []demoItem) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>%s</title><link>%s</link><description>News from %s</description>
`, xmlEscape(d.Name), p.base+d.Path, xmlEscape(d.Name))
	for _, it := range items {
		fmt.Fprintf(&b, `<item><title>%s</title><link>%s</link><guid isPermaLink="true">%s</guid><pubDate>%s</pubDate><description>%s</description><content:encoded>%s</content:encoded>`,
			xmlEscape(it.Title), p.link(it), p.link(it), it.Published.Format(time.RFC1123Z), xmlEscape(it.Summary), xmlEscape(demoBody(it)))
		for _, c := range it.Categories {
			fmt.Fprintf(&b, `<category>%s</category>`, xmlEscape(c))
		}
		b.WriteString("</item>\n")
	}
	b.WriteString("</channel></rss>\n")
	return b.Bytes()
}

func (p *demoPublisher) jsonFeed(d demoDepartment, items []demoItem) []byte {
	type jitem struct {
		ID            string   `json:"id"`
		URL           string   `json:"url"`
		Title         string   `json:"title"`
		Summary       string   `json:"summary"`
		ContentHTML   string   `json:"content_html"`
		DatePublished string   `json:"date_published"`
		Tags          []string `json:"tags"`
	}
	feed := struct {
		Version string  `json:"version"`
		Title   string  `json:"title"`
		FeedURL string  `json:"feed_url"`
		Items   []jitem `json:"items"`
	}{Version: "https://jsonfeed.org/version/1.1", Title: d.Name, FeedURL: p.base + d.Path, Items: []jitem{}}
	for _, it := range items {
		feed.Items = append(feed.Items, jitem{ID: fmt.Sprintf("%s-%d", it.Dept, it.N), URL: p.link(it), Title: it.Title,
			Summary: it.Summary, ContentHTML: demoBody(it), DatePublished: it.Published.Format(time.RFC3339), Tags: it.Categories})
	}
	out, _ := json.MarshalIndent(feed, "", "  ")
	return out
}

// search answers in the shape of the GOV.UK search API: links relative to
// the site, organisations as slugs, and a document type.
func (p *demoPublisher) search(items []demoItem) []byte {
	type org struct {
		Slug string `json:"slug"`
	}
	type result struct {
		Title           string `json:"title"`
		Link            string `json:"link"`
		Description     string `json:"description"`
		PublicTimestamp string `json:"public_timestamp"`
		Organisations   []org  `json:"organisations"`
		DocumentType    string `json:"content_store_document_type"`
	}
	out := struct {
		Results []result `json:"results"`
		Total   int      `json:"total"`
	}{Results: []result{}}
	for _, it := range items {
		dt := strings.ToLower(strings.ReplaceAll(it.Categories[0], " ", "_"))
		out.Results = append(out.Results, result{Title: it.Title, Link: fmt.Sprintf("/government/news/%s-%d", it.Dept, it.N),
			Description: it.Summary, PublicTimestamp: it.Published.Format(time.RFC3339), Organisations: []org{{it.Dept}}, DocumentType: dt})
	}
	out.Total = len(out.Results)
	b, _ := json.MarshalIndent(out, "", "  ")
	return b
}
