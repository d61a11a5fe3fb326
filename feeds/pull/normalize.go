package pull

import (
	"crypto/sha256"
	"encoding/hex"
	htmlstd "html"
	"net/url"
	"strings"
	"time"

	"herald/store"
	"herald/templates/text"
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
// sanitised once with Herald's one policy (text.Sanitizer), absolute
// links, UTC dates. It is safe for concurrent use.
type Normalizer struct {
	sanitizer *text.Sanitizer
}

// NewNormalizer returns a normalizer with the sanitising policy built.
func NewNormalizer() *Normalizer {
	return &Normalizer{sanitizer: text.NewSanitizer()}
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
	e.Summary, e.PlainSummary = n.normHTML(it.Summary, it.SummaryText, contentBase)
	e.Body, e.PlainBody = n.normHTML(it.Content, it.ContentText, contentBase)
	if e.Title == "" && e.Link == "" && e.Summary == "" && e.Body == "" {
		return store.Entry{}, false
	}
	// Feeds and emails need a headline; an untitled item (legal in RSS)
	// gets the start of its text, or its link.
	if e.Title == "" {
		for _, s := range []string{e.PlainSummary, e.PlainBody} {
			if t := text.Truncate(s, normFallbackTitle); t != "" {
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

	e.GUID = text.Clean(strings.TrimSpace(strings.ToValidUTF8(it.ID, "\uFFFD")))
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
	raw = strings.TrimSpace(text.Clean(raw))
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
	return text.Truncate(text.Plain(strings.ToValidUTF8(s, "\uFFFD")), limit)
}

// normHTML sanitises an HTML fragment (or escapes plain text) and makes its
// URLs absolute against base. It returns the HTML and the text Plain reads
// in it.
func (n *Normalizer) normHTML(s string, plain bool, base *url.URL) (html, plainText string) {
	s = strings.TrimSpace(text.Clean(strings.ToValidUTF8(s, "\uFFFD")))
	if s == "" {
		return "", ""
	}
	if plain {
		html = normTextToHTML(s)
		return html, text.Plain(html)
	}
	// Trimming the HTML leaves its text as Plain reads it: Plain trims too.
	html, plainText = n.sanitizer.SanitizeWithPlain(s, base)
	return strings.TrimSpace(html), plainText
}

// normTextToHTML escapes plain text, keeping its paragraphs.
func normTextToHTML(s string) string {
	paras := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n\n")
	var b strings.Builder
	kept := 0
	for _, p := range paras {
		p = text.Line(p)
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
