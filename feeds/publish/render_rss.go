package publish

import (
	"bytes"
	"encoding/xml"
	"strings"
	"time"

	gfeeds "github.com/gorilla/feeds"

	"herald/templates/text"
)

// gorilla/feeds' RssFeed and RssItem are filled directly and extended:
// its <rss> wrapper declares only the content namespace (atom:link needs
// the Atom one, dc:creator the Dublin Core one), a channel carries no
// atom:link for rel="self" and rel="hub", an item has one category and
// always writes <description>, even empty, after which content:encoded
// would have nothing to add to.

type renderRSSDoc struct {
	XMLName   xml.Name `xml:"rss"`
	Version   string   `xml:"version,attr"`
	NSContent string   `xml:"xmlns:content,attr"`
	NSAtom    string   `xml:"xmlns:atom,attr"`
	NSDC      string   `xml:"xmlns:dc,attr"`
	Channel   *renderRSSChannel
}

type renderRSSChannel struct {
	XMLName xml.Name `xml:"channel"`
	gfeeds.RssFeed
	AtomLinks []renderRSSAtomLink
	Items     []*renderRSSItem `xml:"item"`
}

type renderRSSAtomLink struct {
	XMLName xml.Name `xml:"atom:link"`
	Href    string   `xml:"href,attr"`
	Rel     string   `xml:"rel,attr"`
	Type    string   `xml:"type,attr,omitempty"`
}

type renderRSSItem struct {
	XMLName xml.Name `xml:"item"`
	// Description comes first so it precedes content:encoded.
	Description string `xml:"description,omitempty"`
	gfeeds.RssItem
	Categories []string `xml:"category"`
	Creator    string   `xml:"dc:creator,omitempty"`
}

func renderRSSTime(t time.Time) string { return t.UTC().Format(time.RFC1123Z) }

// renderRSSTitle makes plain text safe in an RSS title, category or
// creator, which readers may take for HTML: text that looks like markup is
// escaped once more.
func renderRSSTitle(s string) string {
	if strings.ContainsAny(s, "<>") {
		return renderEscapeHTML(s)
	}
	return s
}

// renderRSS encodes a feed document as RSS 2.0 and says where each item
// lies in it.
func (p *Publisher) renderRSS(f *renderFeed) ([]byte, []renderSpan, error) {
	ch := &renderRSSChannel{
		RssFeed: gfeeds.RssFeed{
			Title:         renderRSSTitle(f.title),
			Link:          f.htmlURL,
			Description:   f.subtitle,
			Language:      text.ForXML(p.cfg.Language),
			LastBuildDate: renderRSSTime(f.updated),
			Generator:     "Herald",
			Docs:          "https://www.rssboard.org/rss-specification",
		},
	}
	if ch.Description == "" {
		ch.Description = ch.Title
	}
	ch.Image = &gfeeds.RssImage{Url: p.icons.small, Title: ch.Title, Link: ch.Link, Width: p.icons.size, Height: p.icons.size}
	ch.AtomLinks = append(ch.AtomLinks, renderRSSAtomLink{Rel: "self", Href: p.renderSelf(f, "rss"), Type: "application/rss+xml"})
	for _, h := range p.renderHubs(f) {
		ch.AtomLinks = append(ch.AtomLinks, renderRSSAtomLink{Rel: "hub", Href: h})
	}
	doc := &renderRSSDoc{
		Version:   "2.0",
		NSContent: "http://purl.org/rss/1.0/modules/content/",
		NSAtom:    "http://www.w3.org/2005/Atom",
		NSDC:      "http://purl.org/dc/elements/1.1/",
		Channel:   ch,
	}
	head, err := renderXML(doc)
	if err != nil {
		return nil, nil, err
	}
	return renderRSSSplice.splice(renderRSSEntities(head), f.entries, renderRSSIndex, renderRSSItemXML)
}

// renderRSSItemXML encodes one RSS item as it reads inside <channel>,
// entities rewritten as renderRSSEntities does for the whole document.
func renderRSSItemXML(e *renderEntry) ([]byte, error) {
	it := &renderRSSItem{
		RssItem: gfeeds.RssItem{
			Title:   renderRSSTitle(e.title),
			Link:    e.url,
			Guid:    &gfeeds.RssGuid{Id: e.id, IsPermaLink: "false"},
			PubDate: renderRSSTime(e.published),
		},
		Creator: renderRSSTitle(e.author),
	}
	for _, c := range e.categories {
		it.Categories = append(it.Categories, renderRSSTitle(c))
	}
	it.Description = e.summaryHTML
	if e.contentHTML != "" {
		it.Content = &gfeeds.RssContent{Content: e.contentHTML}
	}
	b, err := renderXMLElement(it, 2)
	if err != nil {
		return nil, err
	}
	return renderRSSEntities(b), nil
}

// renderRSSEntities rewrites the named entities encoding/xml writes for
// "&", "<" and ">" in character data as hexadecimal references, outside
// CDATA sections. The RSS Best Practices Profile asks for this form: with
// it readers tell an escaped "<" in plain text from markup. Rewriting
// whole elements one by one gives the same bytes as rewriting the
// document they make up.
func renderRSSEntities(b []byte) []byte {
	const cdataOpen, cdataClose = "<![CDATA[", "]]>"
	out := make([]byte, 0, len(b)+len(b)/16)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '&')
		j := bytes.Index(b, []byte(cdataOpen))
		if i < 0 && j < 0 {
			out = append(out, b...)
			break
		}
		if j >= 0 && (i < 0 || j < i) {
			end := bytes.Index(b[j:], []byte(cdataClose))
			if end < 0 {
				out = append(out, b...)
				break
			}
			end += j + len(cdataClose)
			out = append(out, b[:end]...)
			b = b[end:]
			continue
		}
		out = append(out, b[:i]...)
		b = b[i:]
		switch {
		case bytes.HasPrefix(b, []byte("&amp;")):
			out = append(out, "&#x26;"...)
			b = b[len("&amp;"):]
		case bytes.HasPrefix(b, []byte("&lt;")):
			out = append(out, "&#x3C;"...)
			b = b[len("&lt;"):]
		case bytes.HasPrefix(b, []byte("&gt;")):
			out = append(out, "&#x3E;"...)
			b = b[len("&gt;"):]
		default:
			out = append(out, '&')
			b = b[1:]
		}
	}
	return out
}
