package text

import (
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Plain returns the text a reader sees in an HTML fragment, as one line
// (see Line): tags removed, character references decoded, and words kept
// apart where a block (a paragraph, a heading, a list item, a table cell,
// a line break, an image) begins or ends. Inline elements (a, strong, em,
// span...) separate nothing, so "<strong>slavery</strong>, with" reads
// "slavery, with". The content of elements that hold no text for a reader
// (scripts, styles, templates, document metadata, and the fallback content
// of frames, plugins and scripts) is left out. Any input is read as a
// browser would: unclosed tags, stray brackets and unknown elements do not
// lose the text around them.
func Plain(fragment string) string {
	if !strings.ContainsAny(fragment, "<&") {
		return Line(fragment)
	}
	var b strings.Builder
	b.Grow(len(fragment))
	read(fragment, func(t []byte) { b.Write(t) }, func(breakKind) { b.WriteByte(' ') })
	return Line(b.String())
}

// Paragraphs returns the text of an HTML fragment as Plain reads it, split
// into paragraphs where blocks begin and end, for plain-text email. A list
// item is a paragraph of its own and starts with "- ". Empty paragraphs are
// left out.
func Paragraphs(fragment string) []string {
	var paras []string
	var cur strings.Builder
	flush := func() {
		if p := Line(cur.String()); p != "" {
			paras = append(paras, p)
		}
		cur.Reset()
	}
	read(fragment, func(t []byte) { cur.Write(t) }, func(k breakKind) {
		switch k {
		case wordBreak:
			cur.WriteByte(' ')
		case paragraphBreak:
			flush()
		case itemStart:
			flush()
			cur.WriteString("- ")
		}
	})
	flush()
	return paras
}

// breakKind is what an element's tag does to the text around it.
type breakKind int

const (
	wordBreak      breakKind = iota // the words either side are apart
	paragraphBreak                  // a paragraph ends
	itemStart                       // a list item begins
)

// read tokenises fragment and calls text for each run of text a reader
// sees and brk where a tag separates words or paragraphs.
func read(fragment string, text func([]byte), brk func(breakKind)) {
	z := html.NewTokenizer(strings.NewReader(fragment))
	hidden := 0
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return
		case html.TextToken:
			if hidden == 0 {
				text(z.Text())
			}
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			a := tagAtom(z.Raw())
			switch {
			case isHidden(a):
				if tt == html.StartTagToken {
					hidden++
				} else if tt == html.EndTagToken && hidden > 0 {
					hidden--
				}
			case hidden > 0:
			case a == atom.Li && tt == html.StartTagToken:
				brk(itemStart)
			case a == atom.Li || isBlock(a):
				brk(paragraphBreak)
			case a == atom.Td || a == atom.Th || a == atom.Img:
				brk(wordBreak)
			}
		}
	}
}

// tagAtom reads the name of a tag from its raw bytes ("<P class=x>",
// "</li>"), as the tokenizer does, without the copy z.TagName makes: read
// runs over every tag of every release at each pull.
func tagAtom(raw []byte) atom.Atom {
	i := 1
	if i < len(raw) && raw[i] == '/' {
		i++
	}
	var name [16]byte // longer than any element read cares about
	n := 0
	for ; i < len(raw); i++ {
		c := raw[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == '/' || c == '>' {
			break
		}
		if n == len(name) {
			return 0
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		name[n] = c
		n++
	}
	return atom.Lookup(name[:n])
}

// isHidden reports the elements whose content is not text for a reader:
// code, styling, inert templates, document metadata, and what browsers
// show only without frames, plugins or scripts. They are the elements
// the sanitising policy drops with their content, and head and template.
func isHidden(a atom.Atom) bool {
	switch a {
	case atom.Script, atom.Style, atom.Template, atom.Head, atom.Title, atom.Noscript, atom.Noembed,
		atom.Noframes, atom.Iframe, atom.Frame, atom.Frameset, atom.Object:
		return true
	}
	return false
}

// isBlock reports the elements that begin and end a paragraph of text.
func isBlock(a atom.Atom) bool {
	switch a {
	case atom.Address, atom.Article, atom.Aside, atom.Blockquote, atom.Br, atom.Caption, atom.Dd, atom.Details,
		atom.Div, atom.Dl, atom.Dt, atom.Figcaption, atom.Figure, atom.Footer, atom.H1, atom.H2, atom.H3, atom.H4,
		atom.H5, atom.H6, atom.Header, atom.Hr, atom.Main, atom.Nav, atom.Ol, atom.P, atom.Pre, atom.Section,
		atom.Summary, atom.Table, atom.Tbody, atom.Tfoot, atom.Thead, atom.Tr, atom.Ul:
		return true
	}
	return false
}
