package publish

import (
	"bytes"
	"encoding/json"

	gfeeds "github.com/gorilla/feeds"

	"herald/templates/text"
)

// gorilla/feeds' JSONFeed and JSONItem are filled directly; JSON Feed 1.1
// needs two things they omit when empty: "items" (required even for an
// empty feed) and an item's content (content_html or content_text must be
// present). The fields below shadow theirs without omitempty.

type renderJSONFeed struct {
	gfeeds.JSONFeed
	Items []*renderJSONItem `json:"items"`
}

type renderJSONItem struct {
	gfeeds.JSONItem
	ContentHTML string `json:"content_html"`
}

// renderJSON encodes a feed document as JSON Feed 1.1, and says where
// each item lies in it. The feed names no
// authors of its own: readers merge a feed's authors into every item's
// (Miniflux shows "Herald, Home Office"), and every item names its
// department.
func (p *Publisher) renderJSON(f *renderFeed) ([]byte, []renderSpan, error) {
	doc := &renderJSONFeed{
		JSONFeed: gfeeds.JSONFeed{
			Version:     "https://jsonfeed.org/version/1.1",
			Title:       f.title,
			Language:    text.ForXML(p.cfg.Language),
			HomePageUrl: f.htmlURL,
			FeedUrl:     p.renderSelf(f, "json"),
			Description: f.subtitle,
			Icon:        p.icons.large,
			Favicon:     p.icons.small,
		},
		Items: []*renderJSONItem{},
	}
	// next_url pages back through the archive: from the current feed to
	// the newest archive page, and from each page to the one before.
	if f.prevArchive > 0 {
		doc.NextUrl = p.renderArchiveURL(f, f.prevArchive, "json")
	}
	for _, h := range p.renderHubs(f) {
		doc.Hubs = append(doc.Hubs, &gfeeds.JSONHub{Type: "WebSub", Url: h})
	}
	if !f.ended.IsZero() {
		expired := true
		doc.Expired = &expired
	}
	head, err := renderJSONValue(doc, "")
	if err != nil {
		return nil, nil, err
	}
	return renderJSONSplice.splice(head, f.entries, renderJSONIndex, renderJSONItemJSON)
}

// renderJSONItemJSON encodes one item as it reads inside the items list.
func renderJSONItemJSON(e *renderEntry) ([]byte, error) {
	published, updated := e.published, e.updated
	it := &renderJSONItem{
		JSONItem: gfeeds.JSONItem{
			Id:            e.id,
			Url:           e.url,
			ExternalUrl:   e.related,
			Title:         e.title,
			Summary:       e.summaryText,
			PublishedDate: &published,
			ModifiedDate:  &updated,
			Authors:       []*gfeeds.JSONAuthor{{Name: e.author, Url: e.authorURL}},
			Tags:          e.categories,
		},
		ContentHTML: e.contentHTML,
	}
	if it.ContentHTML == "" {
		it.ContentHTML = e.summaryHTML
	}
	b, err := renderJSONValue(it, renderJSONItemIndent)
	if err != nil {
		return nil, err
	}
	// On its own line, and without the encoder's final newline.
	return append([]byte("\n"+renderJSONItemIndent), b[:len(b)-1]...), nil
}

// renderJSONItemIndent is the indentation of an item in the items list.
const renderJSONItemIndent = "    "

// renderJSONValue encodes v indented as the feed is, each line after the
// first starting with prefix, HTML characters left as they are.
func renderJSONValue(v any, prefix string) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(2 << 10)
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent(prefix, "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
