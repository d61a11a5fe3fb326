package text

import (
	htmlstd "html"
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
func Plain(fragment string) string { return plain(fragment, false) }

// plain returns Plain(fragment). When sanitized says the fragment is
// Sanitize's output, it reads it with readSanitized, several times faster
// than the tokenizer, unless that finds it out of form.
func plain(fragment string, sanitized bool) string {
	if !strings.ContainsAny(fragment, "<&") {
		return Line(fragment)
	}
	var b strings.Builder
	b.Grow(len(fragment))
	// Line folds runs of white space and trims the ends, so a break next
	// to a break or at either end need not be written; without them the
	// text of most fragments is a line already, and Line returns it
	// without a copy.
	last := byte(' ')
	brk := func(breakKind) {
		if last != ' ' {
			b.WriteByte(' ')
			last = ' '
		}
	}
	text := func(t string) {
		if t != "" {
			b.WriteString(t)
			last = t[len(t)-1]
		}
	}
	if !sanitized || !readSanitized(fragment, text, brk) {
		b.Reset()
		last = ' '
		read(fragment, func(t []byte) {
			if len(t) > 0 {
				b.Write(t)
				last = t[len(t)-1]
			}
		}, brk)
	}
	return Line(strings.TrimSuffix(b.String(), " "))
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
			if k, ok := tagBreak(tagAtom(z.Raw()), tt, &hidden); ok {
				brk(k)
			}
		}
	}
}

// readSanitized reads HTML in the form Sanitize writes it as read would,
// calling text and brk alike, but by scanning for the brackets instead of
// running a tokenizer: in that form a tag is whole from '<' to the next
// '>' (attribute values are quoted and escaped), text holds neither
// bracket, and there are no comments and no elements whose content the
// tokenizer reads as raw text. Text holds no references but the escapes
// Sanitize writes, which the standard library decodes as the tokenizer
// does. It reports false, having stopped part way, at anything out of
// that form; the caller then reads the HTML with read.
func readSanitized(h string, text func(string), brk func(breakKind)) bool {
	hidden := 0
	for h != "" {
		t := h
		lt := strings.IndexByte(h, '<')
		if lt >= 0 {
			t = h[:lt]
		}
		if t != "" && hidden == 0 {
			if strings.IndexByte(t, '&') >= 0 {
				t = htmlstd.UnescapeString(t)
			}
			text(t)
		}
		if lt < 0 {
			return true
		}
		gt := strings.IndexByte(h[lt:], '>')
		if gt < 0 {
			return false
		}
		raw := h[lt : lt+gt+1]
		h = h[lt+gt+1:]
		tt, name := html.StartTagToken, raw[1:]
		if name[0] == '/' {
			tt, name = html.EndTagToken, name[1:]
		} else if strings.HasSuffix(raw, "/>") {
			tt = html.SelfClosingTagToken
		}
		if c := name[0] | 0x20; c < 'a' || c > 'z' {
			return false // a comment, a doctype, or a bracket the tokenizer reads as text
		}
		a := tagAtom(raw)
		if isRawText(a) {
			return false
		}
		if k, ok := tagBreak(a, tt, &hidden); ok {
			brk(k)
		}
	}
	return true
}

// tagBreak is the rule for what a tag of element a and token type tt does
// to the text around it, for both readers. It counts in hidden the hidden
// elements open, whose text is not read, and returns the break the tag
// makes, if it makes one.
func tagBreak(a atom.Atom, tt html.TokenType, hidden *int) (breakKind, bool) {
	switch {
	case isHidden(a):
		if tt == html.StartTagToken {
			*hidden++
		} else if tt == html.EndTagToken && *hidden > 0 {
			*hidden--
		}
	case *hidden > 0:
	case a == atom.Li && tt == html.StartTagToken:
		return itemStart, true
	case a == atom.Li || isBlock(a):
		return paragraphBreak, true
	case a == atom.Td || a == atom.Th || a == atom.Img:
		return wordBreak, true
	}
	return 0, false
}

// tagAtom reads the name of a tag from its raw bytes ("<P class=x>",
// "</li>"), as the tokenizer does, without the copy z.TagName makes: read
// runs over every tag of every release at each pull.
func tagAtom[T string | []byte](raw T) atom.Atom {
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

// isRawText reports the elements whose content the tokenizer reads as
// text up to their end tag, markup and all.
func isRawText(a atom.Atom) bool {
	switch a {
	case atom.Iframe, atom.Noembed, atom.Noframes, atom.Noscript, atom.Plaintext, atom.Script, atom.Style,
		atom.Textarea, atom.Title, atom.Xmp:
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
