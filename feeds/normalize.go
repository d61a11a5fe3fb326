package feeds

import (
	"crypto/sha256"
	"encoding/hex"
	htmlstd "html"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"

	"herald/store"
)

// Limits on what one upstream entry may carry into the archive. Titles and
// categories are headlines and labels; anything longer is a broken feed.
const (
	normTitleMax      = 1000 // runes
	normCategoryMax   = 200  // runes
	normCategoriesMax = 100
	normDocTypeMax    = 100  // runes
	normGUIDMax       = 2048 // bytes; longer ids are hashed
	normFallbackTitle = 120  // runes taken from the text when there is no title
	normFutureSlack   = 24 * time.Hour
)

// RawItem is one upstream entry as a format parser read it, before cleaning.
type RawItem struct {
	ID    string // Atom id, RSS guid, JSON Feed id
	Link  string
	Links []string // other links, tried when Link is unusable
	Title string
	// Summary and Content are HTML unless marked as plain text.
	Summary      string
	SummaryText  bool
	Content      string
	ContentText  bool
	Published    time.Time // zero when the feed gave none
	Updated      time.Time
	Categories   []string
	DocumentType string
	// MajorVersionAt is a time upstream moves only when it publishes a
	// major change worth announcing again (GOV.UK's public_timestamp).
	MajorVersionAt time.Time
	// BaseURL resolves relative links when the entry has no absolute link
	// of its own: the feed's home page or the feed's URL.
	BaseURL string
}

// Normalizer turns RawItems into store entries: plain-text titles, HTML
// sanitised once with one shared policy, absolute links, UTC dates. It is
// safe for concurrent use.
type Normalizer struct {
	policy *bluemonday.Policy
}

// NewNormalizer builds the sanitising policy: bluemonday's policy for
// user-generated content, which keeps text formatting, links, lists, tables
// and images with http(s) sources, and drops scripts, styles, event
// handlers, iframes, objects and forms.
func NewNormalizer() *Normalizer {
	p := bluemonday.UGCPolicy()
	p.AllowURLSchemes("http", "https", "mailto")
	return &Normalizer{policy: p}
}

// Normalize cleans one item. It reports false for an item with nothing
// worth keeping (no title, link or content). now is when the item was seen;
// a date more than a day after it is treated as missing.
func (n *Normalizer) Normalize(it RawItem, now time.Time) (store.Entry, bool) {
	var base *url.URL
	if b, err := url.Parse(strings.TrimSpace(it.BaseURL)); err == nil && (b.Scheme == "http" || b.Scheme == "https") && b.Host != "" {
		base = b
	}
	e := store.Entry{Title: normText(it.Title, normTitleMax)}
	e.Link = normLink(it.Link, base)
	for _, l := range it.Links {
		if e.Link != "" {
			break
		}
		e.Link = normLink(l, base)
	}
	// Relative URLs in the content are relative to the article's page when
	// there is one, else to the feed.
	contentBase := base
	if e.Link != "" {
		contentBase, _ = url.Parse(e.Link)
	}
	e.Summary = n.normHTML(it.Summary, it.SummaryText, contentBase)
	e.Body = n.normHTML(it.Content, it.ContentText, contentBase)
	if e.Title == "" && e.Link == "" && e.Summary == "" && e.Body == "" {
		return store.Entry{}, false
	}
	// Feeds and emails need a headline; an untitled item (legal in RSS)
	// gets the start of its text, or its link.
	if e.Title == "" {
		for _, s := range []string{e.Summary, e.Body} {
			if t := normFold(store.StripTags(s), normFallbackTitle); t != "" {
				e.Title = t
				break
			}
		}
		if e.Title == "" {
			e.Title = e.Link
		}
	}

	e.Published = normDate(it.Published, now)
	e.Updated = normDate(it.Updated, now)
	e.MajorVersionAt = normDate(it.MajorVersionAt, now)
	e.Categories = normCategories(it.Categories)
	e.DocumentType = normText(it.DocumentType, normDocTypeMax)

	e.GUID = normStripControls(strings.TrimSpace(strings.ToValidUTF8(it.ID, "\uFFFD")))
	if len(e.GUID) > normGUIDMax {
		e.GUID = "sha256:" + normHash(e.GUID)
	}
	if e.GUID == "" {
		e.GUID = e.Link
	}
	if e.GUID == "" {
		// No id and no link: the title and the upstream date are what stays
		// put between pulls, so they key the release. The body is left out
		// because an edit must update the release, not add a second one;
		// the raw date is used, not the clamped one, because a future date
		// stops being clamped as time passes and would change the key.
		pub := ""
		if !it.Published.IsZero() {
			pub = it.Published.UTC().Format(time.RFC3339)
		}
		e.GUID = "herald:" + normHash(e.Title+"\x00"+pub)
	}
	return e, true
}

func normHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// normDate returns t in UTC, or zero when it is missing or more than a day
// in the future (a publisher's clock or time zone mistake); the store then
// uses the time the release was first seen.
func normDate(t, now time.Time) time.Time {
	if t.IsZero() || t.After(now.Add(normFutureSlack)) {
		return time.Time{}
	}
	return t.UTC()
}

// normCategories trims, cleans and de-duplicates (ignoring case) upstream
// categories, keeping the first spelling of each.
func normCategories(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for _, c := range in {
		c = normText(c, normCategoryMax)
		k := strings.ToLower(c)
		if c == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, c)
		if len(out) == normCategoriesMax {
			break
		}
	}
	return out
}

// normLink returns raw as an absolute http(s) URL, resolving it against
// base, or "" when it cannot be one.
func normLink(raw string, base *url.URL) string {
	raw = strings.TrimSpace(normStripControls(strings.ToValidUTF8(raw, "")))
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if !u.IsAbs() {
		if base == nil {
			return ""
		}
		u = base.ResolveReference(u)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return u.String()
}

// normText returns s as one line of plain text: tags removed, entities
// decoded, control and bidirectional-override characters removed, white
// space folded, cut after limit runes.
func normText(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.ContainsAny(s, "<&") {
		s = normHTMLToText(s)
	}
	return normFold(s, limit)
}

// normHTMLToText extracts the text of an HTML fragment, leaving out the
// contents of script and style elements.
func normHTMLToText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	b.Grow(len(s))
	skip := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			if skip == 0 {
				b.Write(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style":
				skip++
			case "br", "p", "div", "li", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6":
				b.WriteByte(' ')
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if (string(name) == "script" || string(name) == "style") && skip > 0 {
				skip--
			}
		}
	}
}

// normFold drops characters that have no place in a one-line label and
// folds runs of white space into single spaces. A text longer than limit
// runes is cut there and ends with an ellipsis; limit <= 0 means no limit.
func normFold(s string, limit int) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	n := 0
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case normDropRune(r):
			continue
		}
		if limit > 0 && n >= limit {
			return strings.TrimRightFunc(b.String(), unicode.IsSpace) + "…"
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// normDropRune reports control characters (C0 and C1, DEL), bidirectional
// overrides that can make a title read differently from what it says, the
// byte-order mark and non-characters.
func normDropRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7F && r <= 0x9F:
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0xFEFF, r == 0xFFFE, r == 0xFFFF:
		return true
	}
	return false
}

// normStripControls removes control characters other than tab and line
// breaks, which HTML and ids have no use for.
func normStripControls(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F || c == 0xC2 {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return r
		}
		if r < 0x20 || (r >= 0x7F && r <= 0x9F) || r == 0xFFFE || r == 0xFFFF {
			return -1
		}
		return r
	}, s)
}

// normHTML sanitises an HTML fragment (or escapes plain text) and makes its
// URLs absolute against base.
func (n *Normalizer) normHTML(s string, plain bool, base *url.URL) string {
	s = strings.TrimSpace(normStripControls(strings.ToValidUTF8(s, "\uFFFD")))
	if s == "" {
		return ""
	}
	if plain {
		return normTextToHTML(s)
	}
	// Text with no markup and no entities is already safe HTML.
	if !strings.ContainsAny(s, "<>&") {
		return s
	}
	out := n.policy.Sanitize(s)
	if base != nil && (strings.Contains(out, "href=") || strings.Contains(out, "src=") || strings.Contains(out, "cite=")) {
		out = normAbsolutize(out, base)
	}
	return strings.TrimSpace(out)
}

// normTextToHTML escapes plain text, keeping its paragraphs.
func normTextToHTML(s string) string {
	paras := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n\n")
	var b strings.Builder
	kept := 0
	for _, p := range paras {
		p = normFold(p, 0)
		if p == "" {
			continue
		}
		kept++
		b.WriteString("<p>")
		b.WriteString(htmlstd.EscapeString(p))
		b.WriteString("</p>")
	}
	if kept == 1 {
		out := b.String()
		return out[len("<p>") : len(out)-len("</p>")]
	}
	return b.String()
}

// normAbsolutize rewrites relative href, src and cite attributes of
// sanitised HTML into absolute URLs, dropping any that would not resolve to
// http(s) or mailto.
//
// It scans rather than re-parses: in bluemonday's output every attribute
// value is double-quoted with quotes inside it escaped, and text never
// holds a bare quote, so ` + "`" + `="` + "`" + ` only ever opens an attribute value.
func normAbsolutize(s string, base *url.URL) string {
	var b strings.Builder
	last := 0
	for i := 0; ; {
		k := strings.Index(s[i:], `="`)
		if k < 0 {
			break
		}
		k += i
		valStart := k + 2
		end := strings.IndexByte(s[valStart:], '"')
		if end < 0 {
			break
		}
		end += valStart
		i = end + 1
		nameStart := -1
		for _, name := range []string{" href", " src", " cite"} {
			if strings.HasSuffix(s[:k], name) {
				nameStart = k - len(name)
				break
			}
		}
		if nameStart < 0 {
			continue
		}
		raw := s[valStart:end]
		if strings.HasPrefix(raw, "https://") || strings.HasPrefix(raw, "http://") {
			continue // already absolute; bluemonday checked it parses
		}
		val := htmlstd.UnescapeString(raw)
		u, err := base.Parse(strings.TrimSpace(val))
		if b.Cap() == 0 {
			b.Grow(len(s) + 64)
		}
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "mailto") {
			b.WriteString(s[last:nameStart])
			last = end + 1
			continue
		}
		b.WriteString(s[last:valStart])
		b.WriteString(htmlstd.EscapeString(u.String()))
		last = end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}
