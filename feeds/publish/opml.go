package publish

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"slices"
	"strings"

	"herald/store"
	"herald/templates/text"
)

// opmlPath is where the list of every feed is served.
const opmlPath = "/feeds.opml"

// OPML 2.0 (http://opml.org/spec2.opml): a subscription list whose
// outlines have type="rss" whatever the feed's format, as the spec says.

type opmlDoc struct {
	XMLName xml.Name    `xml:"opml"`
	Version string      `xml:"version,attr"`
	Head    opmlHead    `xml:"head"`
	Body    []opmlEntry `xml:"body>outline"`
}

type opmlHead struct {
	Title string `xml:"title"`
}

type opmlEntry struct {
	Text     string      `xml:"text,attr"`
	Title    string      `xml:"title,attr,omitempty"`
	Type     string      `xml:"type,attr,omitempty"`
	XMLURL   string      `xml:"xmlUrl,attr,omitempty"`
	HTMLURL  string      `xml:"htmlUrl,attr,omitempty"`
	Language string      `xml:"language,attr,omitempty"`
	Children []opmlEntry `xml:"outline"`
}

// renderOPMLSignature changes whenever the OPML list would.
func renderOPMLSignature(m renderMeta) string {
	h := sha256.New()
	for _, d := range m.deptList {
		h.Write([]byte(d.Slug + "\x00" + d.Name + "\x01"))
	}
	for _, t := range m.topicList {
		h.Write([]byte(t.Slug + "\x00" + t.Title + "\x00" + store.FormatTime(t.RetiredAt) + "\x01"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// renderOPML lists every feed: everything, each department and each topic
// still active, by their Atom URLs.
func (p *Publisher) renderOPML(m renderMeta) ([]byte, error) {
	lang := text.ForXML(p.cfg.Language)
	feed := func(key, label, htmlURL string) opmlEntry {
		// Outline text may hold HTML: text that looks like markup is
		// escaped once more, as in RSS titles.
		label = renderRSSTitle(text.ForXML(label))
		return opmlEntry{Text: label, Title: label, Type: "rss", XMLURL: p.FeedURL(key, "atom"), HTMLURL: htmlURL, Language: lang}
	}
	site := text.ForXML(p.cfg.Title)
	doc := opmlDoc{Version: "2.0", Head: opmlHead{Title: text.ForXML(p.msgs.Say("opml.title", "Site", site))}}
	doc.Body = append(doc.Body, feed("all", p.msgs.Say("opml.all", "Site", site), p.base+"/"))
	depts := opmlEntry{Text: text.ForXML(p.msgs.Say("opml.departments", "Site", site))}
	for _, d := range m.deptList {
		depts.Children = append(depts.Children, feed("department:"+d.Slug, d.Name, p.base+"/departments/"+d.Slug))
	}
	topics := opmlEntry{Text: text.ForXML(p.msgs.Say("opml.topics", "Site", site))}
	for _, t := range m.topicList {
		if !t.Retired() {
			topics.Children = append(topics.Children, feed("topic:"+t.Slug, t.Title, p.base+"/topics/"+t.Slug))
		}
	}
	for _, group := range []*opmlEntry{&depts, &topics} {
		slices.SortStableFunc(group.Children, func(a, b opmlEntry) int {
			return strings.Compare(strings.ToLower(a.Text), strings.ToLower(b.Text))
		})
		if len(group.Children) > 0 {
			doc.Body = append(doc.Body, *group)
		}
	}
	return renderXML(&doc)
}
