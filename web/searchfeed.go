package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/feeds"

	"herald/store"
)

// searchFeedSize is how many results a search feed carries.
const searchFeedSize = 50

// searchFeed serves /feeds/search.{atom,rss,json}: the newest results of a
// search as a feed. Each request renders afresh (searches are too many to
// cache), and the bytes' hash is the ETag so an unchanged poll costs a 304.
func (s *Server) searchFeed(format string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := parseSearch(r)
		res, err := s.runSearch(r.Context(), p, searchFeedSize, 0)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		title := s.cfg.SiteName + ": all news"
		if p.active() {
			title = s.cfg.SiteName + ": search"
			if p.Q != "" {
				title += " for “" + p.Q + "”"
			}
			if p.Department != "" {
				title += " in " + p.Department
			}
			if p.Topic != "" {
				title += " about " + p.Topic
			}
		}
		f := searchFeedMeta{
			Title:    title,
			Self:     s.abs("/feeds/search." + format),
			Alt:      s.abs("/search"),
			Language: s.cfg.Language,
			Author:   s.cfg.SiteName,
		}
		if q := p.query(); q != "" {
			f.Self += "?" + q
			f.Alt += "?" + q
		}
		var body []byte
		var ctype string
		switch format {
		case "atom":
			body, err = s.atomFeed(f, res.Releases)
			ctype = "application/atom+xml; charset=utf-8"
		case "rss":
			body, err = s.rssFeed(f, res.Releases)
			ctype = "application/rss+xml; charset=utf-8"
		default:
			body, err = s.jsonFeed(f, res.Releases)
			ctype = "application/feed+json; charset=utf-8"
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		sum := sha256.Sum256(body)
		etag := `"` + hex.EncodeToString(sum[:16]) + `"`
		h := w.Header()
		h.Set("ETag", etag)
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("Vary", "Accept-Encoding")
		if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", ctype)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	}
}

func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

type searchFeedMeta struct {
	Title, Self, Alt, Language, Author string
}

// feedUpdated is the newest entry's update time: a feed's date comes from
// its content, never from the clock, so its bytes (and ETag) change only
// when its entries do. An empty feed is dated at the Unix epoch.
func feedUpdated(rs []store.Release) time.Time {
	var t time.Time
	for _, r := range rs {
		if u := entryUpdated(r); u.After(t) {
			t = u
		}
	}
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t
}

func entryUpdated(r store.Release) time.Time {
	if r.Updated.After(r.Published) {
		return r.Updated.UTC()
	}
	return r.Published.UTC()
}

// xmlText removes what XML 1.0 forbids (and discourages: C1 controls and
// non-characters), which encoding/xml would otherwise pass through into
// CDATA and character data.
func xmlText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r >= 0x7f && r <= 0x9f, r >= 0xd800 && r <= 0xdfff, r == 0xfffe, r == 0xffff, r > 0x10ffff:
			return -1
		}
		return r
	}, s)
}

type atomDoc struct {
	XMLName   xml.Name          `xml:"feed"`
	Xmlns     string            `xml:"xmlns,attr"`
	Lang      string            `xml:"xml:lang,attr"`
	Title     string            `xml:"title"`
	ID        string            `xml:"id"`
	Updated   string            `xml:"updated"`
	Links     []feeds.AtomLink  `xml:"link"`
	Author    *feeds.AtomAuthor `xml:"author"`
	Generator string            `xml:"generator"`
	Entries   []atomEntry       `xml:"entry"`
}

type atomEntry struct {
	Title      string             `xml:"title"`
	ID         string             `xml:"id"`
	Updated    string             `xml:"updated"`
	Published  string             `xml:"published"`
	Links      []feeds.AtomLink   `xml:"link"`
	Author     *feeds.AtomAuthor  `xml:"author"`
	Categories []atomCategory     `xml:"category"`
	Summary    *feeds.AtomSummary `xml:"summary"`
	Content    *feeds.AtomContent `xml:"content"`
}

type atomCategory struct {
	Term string `xml:"term,attr"`
}

func (s *Server) entryURL(r store.Release) string {
	return s.abs("/releases/" + strconv.FormatInt(r.ID, 10))
}

// tagHost is a host name a tag URI can carry.
var tagHost = regexp.MustCompile(`^[a-z0-9.-]+$`)

// entryID is a release's id in every feed Herald publishes (the feeds
// package makes the same): a tag URI on the site's host, or a URL below the
// base URL when the host cannot name a tag. A reader that follows a search
// feed and a topic feed sees one entry, not two.
func (s *Server) entryID(r store.Release) string {
	specific := "release/" + strconv.FormatInt(r.ID, 10)
	if host := strings.ToLower(s.base.Hostname()); tagHost.MatchString(host) {
		return "tag:" + host + ",2026:" + specific
	}
	return s.abs("/" + specific)
}

func (s *Server) atomFeed(f searchFeedMeta, rs []store.Release) ([]byte, error) {
	doc := atomDoc{
		Xmlns: "http://www.w3.org/2005/Atom", Lang: f.Language,
		Title: xmlText(f.Title), ID: f.Self, Updated: feedUpdated(rs).Format(time.RFC3339),
		Links: []feeds.AtomLink{
			{Href: f.Self, Rel: "self", Type: "application/atom+xml"},
			{Href: f.Alt, Rel: "alternate", Type: "text/html"},
		},
		Author:    &feeds.AtomAuthor{AtomPerson: feeds.AtomPerson{Name: xmlText(f.Author)}},
		Generator: "Herald",
	}
	for _, r := range rs {
		e := atomEntry{
			Title:     xmlText(r.Title),
			ID:        s.entryID(r),
			Updated:   entryUpdated(r).Format(time.RFC3339),
			Published: r.Published.UTC().Format(time.RFC3339),
			Links:     []feeds.AtomLink{{Href: s.entryURL(r), Rel: "alternate", Type: "text/html"}},
			Author:    &feeds.AtomAuthor{AtomPerson: feeds.AtomPerson{Name: xmlText(r.DepartmentName)}},
		}
		if r.Link != "" {
			e.Links = append(e.Links, feeds.AtomLink{Href: xmlText(r.Link), Rel: "related", Type: "text/html"})
		}
		for _, c := range r.Categories {
			if c = xmlText(strings.TrimSpace(c)); c != "" {
				e.Categories = append(e.Categories, atomCategory{Term: c})
			}
		}
		if r.Summary != "" {
			e.Summary = &feeds.AtomSummary{Content: xmlText(r.Summary), Type: "html"}
		}
		if r.Body != "" {
			e.Content = &feeds.AtomContent{Content: xmlText(r.Body), Type: "html"}
		}
		doc.Entries = append(doc.Entries, e)
	}
	return marshalXML(doc)
}

type rssDoc struct {
	XMLName xml.Name   `xml:"rss"`
	Version string     `xml:"version,attr"`
	Atom    string     `xml:"xmlns:atom,attr"`
	Content string     `xml:"xmlns:content,attr"`
	Channel rssChannel `xml:"channel"`
}

type rssChannel struct {
	Title         string    `xml:"title"`
	Link          string    `xml:"link"`
	Description   string    `xml:"description"`
	Language      string    `xml:"language"`
	LastBuildDate string    `xml:"lastBuildDate"`
	Generator     string    `xml:"generator"`
	Self          rssLink   `xml:"atom:link"`
	Items         []rssItem `xml:"item"`
}

type rssLink struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr"`
}

type rssItem struct {
	Title       string            `xml:"title"`
	Link        string            `xml:"link"`
	Description string            `xml:"description"`
	Content     *feeds.RssContent `xml:"content:encoded"`
	GUID        feeds.RssGuid     `xml:"guid"`
	PubDate     string            `xml:"pubDate"`
	Categories  []string          `xml:"category"`
}

func (s *Server) rssFeed(f searchFeedMeta, rs []store.Release) ([]byte, error) {
	doc := rssDoc{
		Version: "2.0", Atom: "http://www.w3.org/2005/Atom", Content: "http://purl.org/rss/1.0/modules/content/",
		Channel: rssChannel{
			Title: xmlText(f.Title), Link: f.Alt, Description: xmlText(f.Title), Language: f.Language,
			LastBuildDate: feedUpdated(rs).Format(time.RFC1123Z), Generator: "Herald",
			Self: rssLink{Href: f.Self, Rel: "self", Type: "application/rss+xml"},
		},
	}
	for _, r := range rs {
		it := rssItem{
			Title:       xmlText(r.Title),
			Link:        s.entryURL(r),
			Description: xmlText(r.Summary),
			GUID:        feeds.RssGuid{Id: s.entryID(r), IsPermaLink: "false"},
			PubDate:     r.Published.UTC().Format(time.RFC1123Z),
		}
		if r.Body != "" {
			it.Content = &feeds.RssContent{Content: xmlText(r.Body)}
		}
		for _, c := range r.Categories {
			if c = xmlText(strings.TrimSpace(c)); c != "" {
				it.Categories = append(it.Categories, c)
			}
		}
		doc.Channel.Items = append(doc.Channel.Items, it)
	}
	return marshalXML(doc)
}

func marshalXML(v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// jsonFeedDoc is a JSON Feed 1.1 document; gorilla/feeds' own leaves out
// an empty items array, which the format requires.
type jsonFeedDoc struct {
	Version     string              `json:"version"`
	Title       string              `json:"title"`
	HomePageURL string              `json:"home_page_url"`
	FeedURL     string              `json:"feed_url"`
	Description string              `json:"description,omitempty"`
	Language    string              `json:"language"`
	Authors     []*feeds.JSONAuthor `json:"authors"`
	Items       []*feeds.JSONItem   `json:"items"`
}

func (s *Server) jsonFeed(f searchFeedMeta, rs []store.Release) ([]byte, error) {
	doc := jsonFeedDoc{
		Version: "https://jsonfeed.org/version/1.1", Title: f.Title, HomePageURL: f.Alt, FeedURL: f.Self,
		Language: f.Language, Authors: []*feeds.JSONAuthor{{Name: f.Author}}, Items: []*feeds.JSONItem{},
	}
	for _, r := range rs {
		pub, upd := r.Published.UTC(), entryUpdated(r)
		it := &feeds.JSONItem{
			Id: s.entryID(r), Url: s.entryURL(r), ExternalUrl: r.Link, Title: r.Title,
			ContentHTML: r.Body, Summary: excerpt(plainText(r.Summary), 500),
			PublishedDate: &pub, ModifiedDate: &upd,
			Authors: []*feeds.JSONAuthor{{Name: r.DepartmentName}},
			Tags:    r.Categories,
		}
		if it.ContentHTML == "" {
			it.ContentHTML = r.Summary
		}
		if it.ContentHTML == "" {
			it.ContentText = r.Title
		}
		doc.Items = append(doc.Items, it)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
