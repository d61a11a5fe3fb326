package text

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// ForXML returns s without what XML 1.0 forbids or discourages (see
// Clean) and without U+FFFD, the mark of an earlier decoding error, which
// feed validators flag.
func ForXML(s string) string {
	s = Clean(s)
	if strings.Contains(s, "\uFFFD") {
		s = strings.ReplaceAll(s, "\uFFFD", "")
	}
	return s
}

// ForFeed makes stored HTML fit for a feed and returns it with its text
// (as Plain reads it). The HTML goes through the policy again (it came
// through it on the way in; this keeps a feed safe and valid whatever
// else reached the store), and is then parsed and written back so that it
// is well-formed XML: only the elements feed readers show are kept (any
// other is unwrapped, its text kept), with only their attributes, numeric
// ones checked; links and images are made absolute against base (which
// may be nil) and escaped as RFC 3986 requires; nothing XML 1.0 forbids
// remains. Markup around no text and no image gives "", "".
func (s *Sanitizer) ForFeed(fragment string, base *url.URL) (frag, plain string) {
	fragment = ForXML(fragment)
	if strings.TrimSpace(fragment) == "" {
		return "", ""
	}
	fragment = s.Sanitize(fragment, base)
	ctx := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	nodes, err := html.ParseFragment(strings.NewReader(fragment), ctx)
	if err != nil {
		return html.EscapeString(fragment), Plain(fragment)
	}
	var b strings.Builder
	for _, n := range nodes {
		writeFeedNode(&b, n, base)
	}
	frag = strings.TrimSpace(b.String())
	plain = Plain(frag)
	if plain == "" && !strings.Contains(frag, "<img") {
		// Markup around nothing (<p> </p>, <div><br></div>) says nothing.
		return "", ""
	}
	return frag, plain
}

// writeFeedNode writes n and what it holds as ForFeed keeps them.
func writeFeedNode(b *strings.Builder, n *html.Node, base *url.URL) {
	switch n.Type {
	case html.TextNode:
		b.WriteString(html.EscapeString(n.Data))
		return
	case html.ElementNode:
	default:
		return
	}
	if !feedElement(n.DataAtom) || n.Namespace != "" {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			writeFeedNode(b, c, base)
		}
		return
	}
	var kept []html.Attribute
	for _, a := range n.Attr {
		if a.Namespace != "" {
			continue
		}
		name := strings.ToLower(a.Key)
		if name != "lang" && name != "dir" && name != "title" && !feedAttr(n.DataAtom, name) {
			continue
		}
		val := strings.TrimSpace(a.Val)
		switch {
		case name == "href" || name == "src" || name == "cite":
			val = feedAbsURL(val, base, name == "href")
			if val == "" {
				continue
			}
		case name == "dir":
			if val = strings.ToLower(val); val != "ltr" && val != "rtl" && val != "auto" {
				continue
			}
		case feedNumeric(name):
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
		b.WriteString(html.EscapeString(a.Val))
		b.WriteByte('"')
	}
	b.WriteByte('>')
	if feedVoid(n.DataAtom) {
		return
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		writeFeedNode(b, c, base)
	}
	b.WriteString("</")
	b.WriteString(n.Data)
	b.WriteByte('>')
}

// feedElement reports whether a feed keeps element a: the elements feed
// readers show.
func feedElement(a atom.Atom) bool {
	switch a {
	case atom.A, atom.Abbr, atom.Acronym, atom.Address, atom.Article, atom.Aside, atom.B, atom.Bdi,
		atom.Blockquote, atom.Br, atom.Caption, atom.Cite, atom.Code, atom.Col, atom.Colgroup, atom.Dd,
		atom.Del, atom.Details, atom.Dfn, atom.Div, atom.Dl, atom.Dt, atom.Em, atom.Figcaption, atom.Figure,
		atom.Footer, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Header, atom.Hr, atom.I,
		atom.Img, atom.Ins, atom.Kbd, atom.Li, atom.Main, atom.Mark, atom.Nav, atom.Ol, atom.P, atom.Pre,
		atom.Q, atom.Rp, atom.Rt, atom.Ruby, atom.S, atom.Samp, atom.Section, atom.Small, atom.Span,
		atom.Strike, atom.Strong, atom.Sub, atom.Summary, atom.Sup, atom.Table, atom.Tbody, atom.Td,
		atom.Tfoot, atom.Th, atom.Thead, atom.Time, atom.Tr, atom.Tt, atom.U, atom.Ul, atom.Var, atom.Wbr:
		return true
	}
	return false
}

// feedAttr reports whether a feed keeps attribute name (lower case) on
// element a, besides lang, dir and title, which every kept element may
// carry.
func feedAttr(a atom.Atom, name string) bool {
	switch a {
	case atom.A:
		return name == "href" || name == "hreflang"
	case atom.Blockquote, atom.Q:
		return name == "cite"
	case atom.Col, atom.Colgroup:
		return name == "span"
	case atom.Del, atom.Ins:
		return name == "cite" || name == "datetime"
	case atom.Img:
		return name == "src" || name == "alt" || name == "width" || name == "height"
	case atom.Li:
		return name == "value"
	case atom.Ol:
		return name == "start" || name == "reversed" || name == "type"
	case atom.Td:
		return name == "colspan" || name == "rowspan" || name == "headers"
	case atom.Th:
		return name == "colspan" || name == "rowspan" || name == "headers" || name == "scope" || name == "abbr"
	case atom.Time:
		return name == "datetime"
	}
	return false
}

// feedVoid reports whether kept element a has no content or end tag.
func feedVoid(a atom.Atom) bool {
	return a == atom.Br || a == atom.Hr || a == atom.Img || a == atom.Wbr || a == atom.Col
}

// feedNumeric reports whether attribute name holds a non-negative integer.
func feedNumeric(name string) bool {
	switch name {
	case "width", "height", "colspan", "rowspan", "span", "start", "value":
		return true
	}
	return false
}

// FeedURL parses an absolute http(s) URL for a feed, escaping what a URI
// may not carry literally in its query (spaces, quotes, angle brackets,
// non-ASCII), or returns nil.
func FeedURL(raw string) *url.URL {
	u, err := url.Parse(strings.TrimSpace(ForXML(raw)))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil
	}
	u.RawQuery = escapeQuery(u.RawQuery)
	return u
}

// escapeQuery percent-encodes every byte of s that RFC 3986 does not
// allow in a query, leaving existing escapes alone.
func escapeQuery(s string) string {
	const hexDigits = "0123456789ABCDEF"
	ok := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("-._~!$&'()*+,;=:@/?%", c) >= 0
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; ok(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// feedAbsURL resolves ref against base (which may be nil) and keeps it
// only when it is an http(s) URL (or, for links, mailto:).
func feedAbsURL(ref string, base *url.URL, link bool) string {
	var u *url.URL
	var err error
	if base != nil {
		u, err = base.Parse(ref)
	} else {
		u, err = url.Parse(ref)
	}
	if err != nil {
		return ""
	}
	if u.Scheme == "http" || u.Scheme == "https" {
		if u = FeedURL(u.String()); u == nil {
			return ""
		}
		return u.String()
	}
	if u.Scheme == "mailto" && link {
		return u.String()
	}
	return ""
}
