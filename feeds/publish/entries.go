package publish

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/html"

	"herald/store"
	"herald/templates/text"
)

// renderEntry is one release as every format shows it.
type renderEntry struct {
	id    string
	title string
	// url is the entry's link (feeds.entry_link): the release's page on
	// Herald or the original article; related is the other one, "" when
	// the release has no original.
	url         string
	related     string
	author      string
	authorURL   string
	published   time.Time
	updated     time.Time
	categories  []string
	summaryHTML string
	// contentHTML is the full text, or the summary when there is none,
	// ending with a link to the original; "" for a release with neither
	// full text nor original.
	contentHTML string
	summaryText string

	// release, hash and dept are the release the entry shows, its content
	// hash and its department's name: what the entry is made from.
	release    int64
	hash, dept string
	// encoded holds, by format index, the entry as a previous document of
	// the same feed encoded it; nil ones are encoded afresh. An entry
	// taken whole from a previous document has only the fields above and
	// its times.
	encoded [renderFormatCount][]byte
}

// Entry links: which page an entry links to (feeds.entry_link).
const (
	EntryLinkHerald   = "herald"
	EntryLinkOriginal = "original"
)

// renderEntries turns releases into entries, the same wherever they
// appear: current feeds, archive pages and search feeds.
func (p *Publisher) renderEntries(rs []store.Release) []renderEntry {
	return p.renderEntriesAfter(rs, nil)
}

// renderEntriesAfter is renderEntries for a feed whose previous documents
// prev (nil for none) describes: an entry prev holds, made from the same
// content, is taken as prev encoded it.
func (p *Publisher) renderEntriesAfter(rs []store.Release, prev *renderedFeed) []renderEntry {
	known := prev.byRelease()
	out := make([]renderEntry, 0, len(rs))
	for i := range rs {
		r := &rs[i]
		if k := prev.reusable(known, r); k != nil {
			e := renderEntry{release: r.ID, hash: r.ContentHash, dept: r.DepartmentName}
			e.published, e.updated = renderTimes(r)
			for f := range renderFormatCount {
				e.encoded[f] = prev.bodies[f][k.spans[f].start:k.spans[f].end:k.spans[f].end]
			}
			out = append(out, e)
			continue
		}
		out = append(out, p.renderEntry(r))
	}
	return out
}

// renderTimes are an entry's published and updated times: to the second,
// updated never before published.
func renderTimes(r *store.Release) (published, updated time.Time) {
	published, updated = r.Published.UTC().Truncate(time.Second), r.Updated.UTC().Truncate(time.Second)
	if updated.Before(published) {
		updated = published
	}
	return published, updated
}

// renderEntry turns one release into an entry.
func (p *Publisher) renderEntry(r *store.Release) renderEntry {
	c := p.memo.get(r, p.sanitizer, p.untitled)
	page := p.base + "/releases/" + strconv.FormatInt(r.ID, 10)
	e := renderEntry{
		id:          p.renderID("release/" + strconv.FormatInt(r.ID, 10)),
		title:       c.title,
		url:         page,
		related:     c.related,
		author:      c.author,
		authorURL:   p.base + "/departments/" + r.DepartmentSlug,
		categories:  c.categories,
		summaryHTML: c.summaryHTML,
		contentHTML: c.bodyHTML,
		summaryText: c.summaryText,
		release:     r.ID,
		hash:        r.ContentHash,
		dept:        r.DepartmentName,
	}
	e.published, e.updated = renderTimes(r)
	if c.related != "" {
		if p.cfg.EntryLink == EntryLinkOriginal {
			e.url, e.related = c.related, page
		}
		if e.contentHTML == "" {
			e.contentHTML = c.summaryHTML
		}
		e.contentHTML += p.renderFooter(c.related, page)
	}
	return e
}

// renderCached is what the renderer derives from one release's stored
// text, kept between renders: most renders show the same releases again.
type renderCached struct {
	hash, dept  string // what it was derived from
	title       string
	related     string
	author      string
	categories  []string
	summaryHTML string
	bodyHTML    string
	summaryText string
}

// renderMemo keeps renderCached values for recently rendered releases in
// two generations: when the newer one fills up, the older is dropped.
type renderMemo struct {
	mu       sync.Mutex
	cur, old map[int64]*renderCached
}

const renderMemoSize = 20000

func (m *renderMemo) get(r *store.Release, san *text.Sanitizer, untitled string) *renderCached {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.cur[r.ID]; c != nil && c.hash == r.ContentHash && c.dept == r.DepartmentName {
		return c
	}
	c := m.old[r.ID]
	if c == nil || c.hash != r.ContentHash || c.dept != r.DepartmentName {
		c = renderDerive(r, san, untitled)
	}
	if m.cur == nil || len(m.cur) >= renderMemoSize {
		m.old, m.cur = m.cur, make(map[int64]*renderCached, 1024)
	}
	m.cur[r.ID] = c
	return c
}

// renderDerive cleans one release's strings for every format: characters
// XML 1.0 forbids are dropped, HTML is sanitised and reduced to the
// elements feed readers show, with absolute links. A release without a
// title gets untitled.
func renderDerive(r *store.Release, san *text.Sanitizer, untitled string) *renderCached {
	c := &renderCached{hash: r.ContentHash, dept: r.DepartmentName}
	c.title = strings.TrimSpace(text.ForXML(r.Title))
	if c.title == "" {
		c.title = strings.TrimSpace(text.ForXML(untitled))
	}
	c.author = strings.TrimSpace(text.ForXML(r.DepartmentName))
	// Relative references in the HTML are resolved against the original
	// article; without one they cannot be resolved and are dropped.
	var htmlBase *url.URL
	if u := text.FeedURL(r.Link); u != nil {
		c.related = u.String()
		htmlBase = u
	}
	for _, cat := range r.Categories {
		if cat = strings.TrimSpace(text.ForXML(cat)); cat != "" && !slices.Contains(c.categories, cat) {
			c.categories = append(c.categories, cat)
		}
	}
	c.summaryHTML, c.summaryText = san.ForFeed(r.Summary, htmlBase)
	var bodyText string
	c.bodyHTML, bodyText = san.ForFeed(r.Body, htmlBase)
	// Every entry gets a summary, as readers and validators expect: the
	// start of the text when upstream gave none, or else a line saying who
	// published it when.
	if c.summaryHTML == "" {
		c.summaryText = text.Excerpt(bodyText, 280)
		if c.summaryText == "" {
			c.summaryText = c.author + " published this release on " + r.Published.UTC().Format("2 January 2006") + "."
		}
		c.summaryHTML = "<p>" + renderEscapeHTML(c.summaryText) + "</p>"
	}
	return c
}

// renderFooter ends an entry's content with a link to the original
// article, which readers that show only the entry's own link would
// otherwise hide; when that link is the original, the footer names the
// release's page on Herald too.
func (p *Publisher) renderFooter(original, page string) string {
	f := `<p><a href="` + renderEscapeHTML(original) + `">Read the original</a>`
	if p.cfg.EntryLink == EntryLinkOriginal {
		f += ` · <a href="` + renderEscapeHTML(page) + `">` + renderEscapeHTML("On "+text.ForXML(p.cfg.Title)) + `</a>`
	}
	return f + "</p>"
}

// renderEscapeHTML escapes text for HTML.
func renderEscapeHTML(s string) string { return html.EscapeString(s) }
