package publish

import (
	"bytes"
	"encoding/xml"
	"strings"
	"time"

	gfeeds "github.com/gorilla/feeds"

	"herald/templates/text"
)

// gorilla/feeds' AtomFeed and AtomEntry are filled directly and extended
// where RFC 4287 and RFC 5005 need more than they carry: AtomFeed has one
// link (a feed needs self, alternate, hub and archive links together), no
// xml:lang and no generator; AtomEntry has a single category written as
// text rather than a term attribute; titles cannot say type="html". The
// fields below shadow the embedded ones of the same XML name.

type renderAtomFeed struct {
	XMLName xml.Name `xml:"feed"`
	gfeeds.AtomFeed
	Lang      string              `xml:"xml:lang,attr"`
	NSHistory string              `xml:"xmlns:fh,attr,omitempty"`
	Title     renderAtomText      `xml:"title"`
	Subtitle  *renderAtomText     `xml:"subtitle,omitempty"`
	Links     []gfeeds.AtomLink   // self, alternate, hub, archive links
	Generator renderAtomGenerator `xml:"generator"`
	Archive   *struct{}           `xml:"fh:archive,omitempty"`
	Entries   []*renderAtomEntry  `xml:"entry"`
}

type renderAtomEntry struct {
	XMLName xml.Name `xml:"entry"`
	gfeeds.AtomEntry
	Title      renderAtomText       `xml:"title"`
	Categories []renderAtomCategory `xml:"category"`
}

// renderAtomText is an Atom text construct. Plain text that looks like
// markup is sent as escaped HTML, so no reader mistakes it for markup.
type renderAtomText struct {
	Type string `xml:"type,attr,omitempty"`
	Text string `xml:",chardata"`
}

type renderAtomCategory struct {
	Term string `xml:"term,attr"`
}

type renderAtomGenerator struct {
	URI  string `xml:"uri,attr,omitempty"`
	Text string `xml:",chardata"`
}

const renderNSHistory = "http://purl.org/syndication/history/1.0"

func renderText(s string) renderAtomText {
	if strings.ContainsAny(s, "<>&") {
		return renderAtomText{Type: "html", Text: renderEscapeHTML(s)}
	}
	return renderAtomText{Text: s}
}

func renderAtomTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// renderAtom encodes a feed document as Atom 1.0 and says where each
// entry lies in it.
func (p *Publisher) renderAtom(f *renderFeed) ([]byte, []renderSpan, error) {
	self := p.renderSelf(f, "atom")
	doc := &renderAtomFeed{
		AtomFeed: gfeeds.AtomFeed{
			Xmlns:   "http://www.w3.org/2005/Atom",
			Id:      f.id,
			Updated: renderAtomTime(f.updated),
			Icon:    p.icons.small,
			Logo:    p.icons.logo,
			Author: &gfeeds.AtomAuthor{AtomPerson: gfeeds.AtomPerson{
				Name: text.ForXML(p.cfg.Title), Uri: p.base + "/",
			}},
		},
		Lang:      text.ForXML(p.cfg.Language),
		NSHistory: renderNSHistory,
		Title:     renderText(f.title),
		// The generator names the software; Herald has no project page of
		// its own to point at, so no uri.
		Generator: renderAtomGenerator{Text: "Herald"},
	}
	if f.subtitle != "" {
		st := renderText(f.subtitle)
		doc.Subtitle = &st
	}
	doc.Links = append(doc.Links,
		gfeeds.AtomLink{Rel: "self", Href: self, Type: "application/atom+xml"},
		gfeeds.AtomLink{Rel: "alternate", Href: f.htmlURL, Type: "text/html"},
	)
	// Archive pages never change, so there is nothing to subscribe to.
	for _, h := range p.renderHubs(f) {
		doc.Links = append(doc.Links, gfeeds.AtomLink{Rel: "hub", Href: h})
	}
	if f.page > 0 {
		doc.Archive = &struct{}{}
		doc.Links = append(doc.Links, gfeeds.AtomLink{Rel: "current", Href: p.base + f.path + ".atom", Type: "application/atom+xml"})
	}
	if f.prevArchive > 0 {
		doc.Links = append(doc.Links, gfeeds.AtomLink{Rel: "prev-archive", Href: p.renderArchiveURL(f, f.prevArchive, "atom"), Type: "application/atom+xml"})
	}
	if f.nextArchive > 0 {
		doc.Links = append(doc.Links, gfeeds.AtomLink{Rel: "next-archive", Href: p.renderArchiveURL(f, f.nextArchive, "atom"), Type: "application/atom+xml"})
	}
	head, err := renderXML(doc)
	if err != nil {
		return nil, nil, err
	}
	return renderAtomSplice.splice(head, f.entries, renderAtomIndex, renderAtomEntryXML)
}

// renderAtomEntryXML encodes one Atom entry as it reads inside <feed>.
func renderAtomEntryXML(e *renderEntry) ([]byte, error) {
	ae := &renderAtomEntry{
		AtomEntry: gfeeds.AtomEntry{
			Id:        e.id,
			Updated:   renderAtomTime(e.updated),
			Published: renderAtomTime(e.published),
			Links:     []gfeeds.AtomLink{{Rel: "alternate", Href: e.url, Type: "text/html"}},
			Author: &gfeeds.AtomAuthor{AtomPerson: gfeeds.AtomPerson{
				Name: e.author, Uri: e.authorURL,
			}},
		},
		Title: renderText(e.title),
	}
	if e.related != "" {
		ae.Links = append(ae.Links, gfeeds.AtomLink{Rel: "related", Href: e.related, Type: "text/html"})
	}
	for _, c := range e.categories {
		ae.Categories = append(ae.Categories, renderAtomCategory{Term: c})
	}
	if e.summaryHTML != "" {
		ae.Summary = &gfeeds.AtomSummary{Type: "html", Content: e.summaryHTML}
	}
	if e.contentHTML != "" {
		ae.Content = &gfeeds.AtomContent{Type: "html", Content: e.contentHTML}
	}
	return renderXMLElement(ae, 1)
}

// renderXML encodes v as an indented XML document with its declaration.
func renderXML(v any) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(4 << 10)
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// renderXMLElement encodes v as renderXML would inside a document, as a
// child element at depth (the root element being at 0) after a sibling:
// on a new line, indented.
func renderXMLElement(v any, depth int) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(2 << 10)
	b.WriteByte('\n')
	enc := xml.NewEncoder(&b)
	enc.Indent(strings.Repeat("  ", depth), "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// hubs lists the WebSub hubs feeds advertise: Herald's own first.
func (p *Publisher) hubs() []string {
	return append([]string{p.hubURL}, p.cfg.WebSub.ExternalHubs...)
}
