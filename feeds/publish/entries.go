package publish

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"herald/store"
	"herald/templates/text"
)

// renderEntry is one release as every format shows it.
type renderEntry struct {
	id          string
	title       string
	url         string // the release's page on Herald
	related     string // the original article
	author      string
	authorURL   string
	published   time.Time
	updated     time.Time
	categories  []string
	summaryHTML string
	bodyHTML    string
	summaryText string
}

// renderEntries turns releases into entries; withBody false leaves the
// full text out (archive pages carry summaries and links).
func (p *Publisher) renderEntries(rs []store.Release, withBody bool) []renderEntry {
	out := make([]renderEntry, 0, len(rs))
	for i := range rs {
		r := &rs[i]
		c := p.memo.get(r, p.sanitizer)
		e := renderEntry{
			id:          p.renderID("release/" + strconv.FormatInt(r.ID, 10)),
			title:       c.title,
			url:         p.base + "/releases/" + strconv.FormatInt(r.ID, 10),
			related:     c.related,
			author:      c.author,
			authorURL:   p.base + "/departments/" + r.DepartmentSlug,
			published:   r.Published.UTC().Truncate(time.Second),
			updated:     r.Updated.UTC().Truncate(time.Second),
			categories:  c.categories,
			summaryHTML: c.summaryHTML,
			summaryText: c.summaryText,
		}
		if withBody {
			e.bodyHTML = c.bodyHTML
		}
		if e.updated.Before(e.published) {
			e.updated = e.published
		}
		out = append(out, e)
	}
	return out
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

func (m *renderMemo) get(r *store.Release, san *text.Sanitizer) *renderCached {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.cur[r.ID]; c != nil && c.hash == r.ContentHash && c.dept == r.DepartmentName {
		return c
	}
	c := m.old[r.ID]
	if c == nil || c.hash != r.ContentHash || c.dept != r.DepartmentName {
		c = renderDerive(r, san)
	}
	if m.cur == nil || len(m.cur) >= renderMemoSize {
		m.old, m.cur = m.cur, make(map[int64]*renderCached, 1024)
	}
	m.cur[r.ID] = c
	return c
}

// renderDerive cleans one release's strings for every format: characters
// XML 1.0 forbids are dropped, HTML is sanitised and reduced to the
// elements feed readers show, with absolute links.
func renderDerive(r *store.Release, san *text.Sanitizer) *renderCached {
	c := &renderCached{hash: r.ContentHash, dept: r.DepartmentName}
	c.title = strings.TrimSpace(renderClean(r.Title))
	if c.title == "" {
		c.title = "Untitled release"
	}
	c.author = strings.TrimSpace(renderClean(r.DepartmentName))
	// Relative references in the HTML are resolved against the original
	// article; without one they cannot be resolved and are dropped.
	var htmlBase *url.URL
	if u := renderURL(r.Link); u != nil {
		c.related = u.String()
		htmlBase = u
	}
	for _, cat := range r.Categories {
		if cat = strings.TrimSpace(renderClean(cat)); cat != "" && !slices.Contains(c.categories, cat) {
			c.categories = append(c.categories, cat)
		}
	}
	c.summaryHTML, c.summaryText = renderHTML(san, r.Summary, htmlBase)
	var bodyText string
	c.bodyHTML, bodyText = renderHTML(san, r.Body, htmlBase)
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

// renderClean drops what XML 1.0 forbids or discourages (see text.Clean)
// and U+FFFD, the mark of an earlier decoding error, which validators flag.
func renderClean(s string) string {
	s = text.Clean(s)
	if strings.Contains(s, "\uFFFD") {
		s = strings.ReplaceAll(s, "\uFFFD", "")
	}
	return s
}

// renderEscapeHTML escapes text for HTML.
func renderEscapeHTML(s string) string { return html.EscapeString(s) }

// renderHTMLAllowed lists the elements feed readers show, with the
// attributes each may carry besides lang, dir and title. Anything else that
// the sanitising policy left is unwrapped (its text kept).
var renderHTMLAllowed = map[atom.Atom][]string{
	atom.A: {"href", "hreflang"}, atom.Abbr: nil, atom.Acronym: nil, atom.Address: nil, atom.Article: nil,
	atom.Aside: nil, atom.B: nil, atom.Bdi: nil, atom.Blockquote: {"cite"}, atom.Br: nil, atom.Caption: nil,
	atom.Cite: nil, atom.Code: nil, atom.Col: {"span"}, atom.Colgroup: {"span"}, atom.Dd: nil,
	atom.Del: {"cite", "datetime"}, atom.Details: nil, atom.Dfn: nil, atom.Div: nil, atom.Dl: nil, atom.Dt: nil,
	atom.Em: nil, atom.Figcaption: nil, atom.Figure: nil, atom.Footer: nil, atom.H1: nil, atom.H2: nil,
	atom.H3: nil, atom.H4: nil, atom.H5: nil, atom.H6: nil, atom.Header: nil, atom.Hr: nil, atom.I: nil,
	atom.Img: {"src", "alt", "width", "height"}, atom.Ins: {"cite", "datetime"}, atom.Kbd: nil, atom.Li: {"value"},
	atom.Main: nil, atom.Mark: nil, atom.Nav: nil, atom.Ol: {"start", "reversed", "type"}, atom.P: nil,
	atom.Pre: nil, atom.Q: {"cite"}, atom.Rp: nil, atom.Rt: nil, atom.Ruby: nil, atom.S: nil, atom.Samp: nil,
	atom.Section: nil, atom.Small: nil, atom.Span: nil, atom.Strike: nil, atom.Strong: nil, atom.Sub: nil,
	atom.Summary: nil, atom.Sup: nil, atom.Table: nil, atom.Tbody: nil,
	atom.Td: {"colspan", "rowspan", "headers"}, atom.Tfoot: nil, atom.Th: {"colspan", "rowspan", "headers", "scope", "abbr"},
	atom.Thead: nil, atom.Time: {"datetime"}, atom.Tr: nil, atom.Tt: nil, atom.U: nil, atom.Ul: nil,
	atom.Var: nil, atom.Wbr: nil,
}

var renderHTMLVoid = map[atom.Atom]bool{atom.Br: true, atom.Hr: true, atom.Img: true, atom.Wbr: true, atom.Col: true}

var renderHTMLNumeric = map[string]bool{"width": true, "height": true, "colspan": true, "rowspan": true,
	"span": true, "start": true, "value": true}

// renderHTML makes stored HTML fit for a feed: sanitised with the one
// policy (HTML came through it on the way in; this keeps a feed safe and
// valid whatever else reached the store), then parsed and written back so
// that it is well-formed, with only the elements and attributes feed
// readers show, links and images made absolute against base, and nothing
// XML 1.0 forbids. It also returns the fragment's text.
func renderHTML(san *text.Sanitizer, s string, base *url.URL) (frag, plain string) {
	s = renderClean(s)
	if strings.TrimSpace(s) == "" {
		return "", ""
	}
	s = san.Sanitize(s, base)
	ctx := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	nodes, err := html.ParseFragment(strings.NewReader(s), ctx)
	if err != nil {
		return renderEscapeHTML(s), text.Plain(s)
	}
	var b strings.Builder
	for _, n := range nodes {
		renderHTMLNode(&b, n, base)
	}
	frag = strings.TrimSpace(b.String())
	plain = text.Plain(frag)
	if plain == "" && !strings.Contains(frag, "<img") {
		// Markup around nothing (<p> </p>, <div><br></div>) says nothing.
		return "", ""
	}
	return frag, plain
}

func renderHTMLNode(b *strings.Builder, n *html.Node, base *url.URL) {
	switch n.Type {
	case html.TextNode:
		b.WriteString(renderEscapeHTML(n.Data))
		return
	case html.ElementNode:
	default:
		return
	}
	attrs, ok := renderHTMLAllowed[n.DataAtom]
	if !ok || n.DataAtom == 0 || n.Namespace != "" {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			renderHTMLNode(b, c, base)
		}
		return
	}
	var kept []html.Attribute
	for _, a := range n.Attr {
		if a.Namespace != "" {
			continue
		}
		name := strings.ToLower(a.Key)
		if name != "lang" && name != "dir" && name != "title" && !slices.Contains(attrs, name) {
			continue
		}
		val := strings.TrimSpace(a.Val)
		switch {
		case name == "href" || name == "src" || name == "cite":
			val = renderAbsURL(val, base, name == "href")
			if val == "" {
				continue
			}
		case name == "dir":
			if val = strings.ToLower(val); val != "ltr" && val != "rtl" && val != "auto" {
				continue
			}
		case renderHTMLNumeric[name]:
			if _, err := strconv.ParseUint(val, 10, 32); err != nil {
				continue
			}
		}
		kept = append(kept, html.Attribute{Key: name, Val: val})
	}
	if n.DataAtom == atom.Img && !slices.ContainsFunc(kept, func(a html.Attribute) bool { return a.Key == "src" }) {
		return
	}
	b.WriteByte('<')
	b.WriteString(n.Data)
	for _, a := range kept {
		b.WriteByte(' ')
		b.WriteString(a.Key)
		b.WriteString(`="`)
		b.WriteString(renderEscapeHTML(a.Val))
		b.WriteByte('"')
	}
	b.WriteByte('>')
	if renderHTMLVoid[n.DataAtom] {
		return
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		renderHTMLNode(b, c, base)
	}
	b.WriteString("</")
	b.WriteString(n.Data)
	b.WriteByte('>')
}
