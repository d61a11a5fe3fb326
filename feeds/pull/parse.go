package pull

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mmcdole/gofeed"
	"github.com/mmcdole/gofeed/atom"
	gofeedjson "github.com/mmcdole/gofeed/json"
	"github.com/mmcdole/gofeed/rss"
	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding/unicode"

	"herald/store"
)

// ParsedFeed is a publisher's feed as read, before its items are cleaned.
type ParsedFeed struct {
	// Format is what the document turned out to be: store.FormatAtom,
	// store.FormatRSS (2.0 and 1.0), store.FormatJSONFeed or
	// store.FormatGovUKSearch.
	Format string
	Title  string
	// Link is the publisher's home page, or the feed's own URL when it names
	// none; relative links in items are resolved against it.
	Link  string
	Items []RawItem
}

// ParseFeed reads one feed document. contentType is the response's Content-Type
// (its charset is honoured), format a source's declared format ("" or
// store.FormatAuto to sniff), and feedURL where the document came from.
// The body is decoded to UTF-8 first; an HTML page, an unknown document or
// one that does not parse is an error that says which.
func ParseFeed(body []byte, contentType, format, feedURL string) (*ParsedFeed, error) {
	body, err := ingestToUTF8(body, contentType)
	if err != nil {
		return nil, err
	}
	first := ingestFirstByte(body)
	if first == 0 {
		return nil, errors.New("not a feed: the body is empty")
	}
	switch format {
	case "", store.FormatAuto:
		switch first {
		case '<':
			return ingestXML(body, feedURL)
		case '{':
			return ingestJSON(body, feedURL)
		}
		return nil, fmt.Errorf("not a feed: the body is %s, neither XML nor JSON", ingestDescribe(body))
	case store.FormatAtom, store.FormatRSS:
		if first != '<' {
			return nil, fmt.Errorf("not a feed: expected %s XML, the body is %s", format, ingestDescribe(body))
		}
		return ingestXML(body, feedURL)
	case store.FormatJSONFeed:
		if first != '{' {
			return nil, fmt.Errorf("not a feed: expected a JSON Feed, the body is %s", ingestDescribe(body))
		}
		return ingestJSONFeed(body, feedURL)
	case store.FormatGovUKSearch:
		if first != '{' {
			return nil, fmt.Errorf("not a feed: expected GOV.UK search JSON, the body is %s", ingestDescribe(body))
		}
		return ingestGovUKSearch(body, feedURL)
	}
	return nil, fmt.Errorf("unknown feed format %q", format)
}

// ingestFirstByte returns the first byte that is not white space, or 0.
func ingestFirstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// ingestDescribe says what a body looks like (its sniffed media type and
// size) without quoting any of it: an error message is stored and shown,
// and a pull pointed at an internal service must not read it out.
func ingestDescribe(b []byte) string {
	kind, _, _ := strings.Cut(http.DetectContentType(b), ";")
	return fmt.Sprintf("%s (%d bytes)", kind, len(b))
}

// ingestError is a parse failure whose message keeps only where the
// document went wrong (a line or byte offset), never the document's own
// words, which the parsers' errors quote; the cause stays for errors.As.
type ingestError struct {
	msg string
	err error
}

func (e *ingestError) Error() string { return e.msg }
func (e *ingestError) Unwrap() error { return e.err }

// ingestFailed describes err from parsing a document of kind what.
func ingestFailed(what string, err error) error {
	msg := "malformed " + what + ": "
	var xe *xml.SyntaxError
	var je *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &xe):
		msg += fmt.Sprintf("XML syntax error on line %d", xe.Line)
		if xe.Msg == "unexpected EOF" {
			msg += ": unexpected EOF"
		}
	case errors.As(err, &je):
		msg += fmt.Sprintf("JSON syntax error at byte %d", je.Offset)
	case errors.As(err, &te):
		msg += fmt.Sprintf("a JSON %s where %s was expected, at byte %d", te.Value, te.Type, te.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		msg += "unexpected EOF"
	default:
		msg += "the parser gave up"
	}
	return &ingestError{msg: msg, err: err}
}

var (
	ingestUTF8BOM    = []byte{0xEF, 0xBB, 0xBF}
	ingestXMLDeclEnc = regexp.MustCompile(`^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([^"']*)["']`)
)

// ingestToUTF8 returns body as UTF-8, whatever the publisher declared.
//
// A body that is already valid UTF-8 is taken as such even if a header or
// the XML declaration names another charset: real feeds often declare
// ISO-8859-1 out of habit while sending UTF-8, and a Latin-1 text with
// accented letters is almost never valid UTF-8 by accident. Otherwise the
// first non-UTF-8 label from the Content-Type header (which RFC 7303 puts
// first) or the XML declaration decides; with no usable label the invalid
// bytes are replaced by U+FFFD so one bad byte does not lose a whole feed.
// The XML declaration is rewritten to say UTF-8 so the XML decoder does not
// convert a second time.
func ingestToUTF8(body []byte, contentType string) ([]byte, error) {
	switch {
	case bytes.HasPrefix(body, ingestUTF8BOM):
		return ingestFixDecl(bytes.ToValidUTF8(body[3:], []byte("\uFFFD"))), nil
	case bytes.HasPrefix(body, []byte{0xFE, 0xFF}), bytes.HasPrefix(body, []byte{0xFF, 0xFE}):
		out, err := unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder().Bytes(body)
		if err != nil {
			return nil, fmt.Errorf("decode UTF-16 body: %w", err)
		}
		return ingestFixDecl(out), nil
	}
	if utf8.Valid(body) {
		return ingestFixDecl(body), nil
	}
	var label string
	if _, params, err := mime.ParseMediaType(contentType); err == nil && !ingestIsUTF8(params["charset"]) {
		label = params["charset"]
	}
	if label == "" {
		if m := ingestXMLDeclEnc.FindSubmatch(ingestHead(body)); m != nil && !ingestIsUTF8(string(m[1])) {
			label = string(m[1])
		}
	}
	if label != "" {
		if enc, _ := charset.Lookup(label); enc != nil {
			out, err := enc.NewDecoder().Bytes(body)
			if err != nil {
				return nil, fmt.Errorf("decode %s body: %w", label, err)
			}
			return ingestFixDecl(bytes.ToValidUTF8(out, []byte("\uFFFD"))), nil
		}
	}
	return ingestFixDecl(bytes.ToValidUTF8(body, []byte("\uFFFD"))), nil
}

func ingestIsUTF8(label string) bool {
	l := strings.ToLower(strings.TrimSpace(label))
	return l == "" || l == "utf-8" || l == "utf8"
}

// ingestHead is the part of a body where an XML declaration can be.
func ingestHead(b []byte) []byte {
	if len(b) > 512 {
		return b[:512]
	}
	return b
}

// ingestFixDecl makes an XML declaration's encoding say UTF-8, in place of
// whatever it said before the body was decoded.
func ingestFixDecl(body []byte) []byte {
	m := ingestXMLDeclEnc.FindSubmatchIndex(ingestHead(body))
	if m == nil || ingestIsUTF8(string(body[m[2]:m[3]])) {
		return body
	}
	out := make([]byte, 0, len(body)+8)
	out = append(out, body[:m[2]]...)
	out = append(out, "UTF-8"...)
	return append(out, body[m[3]:]...)
}

// errIngestHTMLPage is what a publisher's error or login page served in place of
// its feed produces.
var errIngestHTMLPage = errors.New("not a feed: got an HTML page")

// ingestRoot finds the root element of an XML document without reading the
// rest. The decoder is Go's encoding/xml, which never expands entities
// declared in a DTD nor fetches external ones, so billion-laughs and XXE
// documents cannot blow up or read files here or in gofeed (which uses the
// same decoder).
func ingestRoot(body []byte) (string, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	// The body is UTF-8 already (ingestToUTF8); a declaration naming another
	// charset must not convert it again.
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	for {
		tok, err := d.RawToken()
		if err != nil {
			if ingestLooksHTML(body) {
				return "", errIngestHTMLPage
			}
			if err == io.EOF {
				return "", errors.New("not a feed: the XML document has no root element")
			}
			return "", ingestFailed("XML", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			if ingestDoctypeHTML(t) {
				return "", errIngestHTMLPage
			}
		case xml.StartElement:
			return strings.ToLower(t.Name.Local), nil
		}
	}
}

var ingestDoctypeRE = regexp.MustCompile(`(?i)^\s*doctype\s+html\b`)

func ingestDoctypeHTML(d xml.Directive) bool { return ingestDoctypeRE.Match(d) }

var ingestHTMLRE = regexp.MustCompile(`(?i)<!doctype\s+html|<html[\s>]`)

func ingestLooksHTML(body []byte) bool {
	head := body
	if len(head) > 2048 {
		head = head[:2048]
	}
	return ingestHTMLRE.Match(head)
}

// ingestXML reads Atom, RSS 2.0 or RSS 1.0 with gofeed.
func ingestXML(body []byte, feedURL string) (*ParsedFeed, error) {
	root, err := ingestRoot(body)
	if err != nil {
		return nil, err
	}
	switch root {
	case "feed":
		af, err := (&atom.Parser{}).Parse(bytes.NewReader(body))
		if err != nil {
			return nil, ingestFailed("Atom feed", err)
		}
		f, err := (&gofeed.DefaultAtomTranslator{}).Translate(af)
		if err != nil {
			return nil, ingestFailed("Atom feed", err)
		}
		pf := ingestFromGofeed(f, store.FormatAtom, feedURL)
		for i, e := range af.Entries {
			if i < len(pf.Items) && e.Content != nil && strings.EqualFold(strings.TrimSpace(e.Content.Type), "text") {
				pf.Items[i].ContentText = true
			}
		}
		return pf, nil
	case "rss", "rdf":
		rf, err := (&rss.Parser{}).Parse(bytes.NewReader(body))
		if err != nil {
			return nil, ingestFailed("RSS feed", err)
		}
		// Herald keeps no item images, so skip gofeed's scan of every item's
		// HTML for one.
		f, err := (&gofeed.DefaultRSSTranslator{DisableContentImageScan: true}).Translate(rf)
		if err != nil {
			return nil, ingestFailed("RSS feed", err)
		}
		return ingestFromGofeed(f, store.FormatRSS, feedURL), nil
	case "html":
		return nil, errIngestHTMLPage
	}
	return nil, errors.New("not a feed: the XML root element is not <feed>, <rss> or <rdf:RDF>")
}

// ingestJSON tells a JSON Feed from a GOV.UK search response by their
// top-level keys.
func ingestJSON(body []byte, feedURL string) (*ParsedFeed, error) {
	var top struct {
		Version *string          `json:"version"`
		Items   *json.RawMessage `json:"items"`
		Results *json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, ingestFailed("JSON", err)
	}
	switch {
	case top.Results != nil:
		return ingestGovUKSearch(body, feedURL)
	case top.Version != nil && strings.Contains(*top.Version, "jsonfeed.org"), top.Items != nil:
		return ingestJSONFeed(body, feedURL)
	}
	return nil, errors.New("not a feed: the JSON document is neither a JSON Feed nor a GOV.UK search response")
}

// ingestJSONFeed reads JSON Feed 1.0 and 1.1 with gofeed.
func ingestJSONFeed(body []byte, feedURL string) (*ParsedFeed, error) {
	jf, err := (&gofeedjson.Parser{}).Parse(bytes.NewReader(body))
	if err != nil {
		return nil, ingestFailed("JSON Feed", err)
	}
	f, err := (&gofeed.DefaultJSONTranslator{}).Translate(jf)
	if err != nil {
		return nil, ingestFailed("JSON Feed", err)
	}
	pf := ingestFromGofeed(f, store.FormatJSONFeed, feedURL)
	for i, it := range jf.Items {
		if i >= len(pf.Items) {
			break
		}
		// JSON Feed's summary is plain text by definition, and content_text
		// is what gofeed falls back to when there is no content_html.
		pf.Items[i].SummaryText = true
		pf.Items[i].ContentText = it.ContentHTML == "" && it.ContentText != ""
	}
	return pf, nil
}

// ingestFromGofeed copies gofeed's universal items into RawItems.
func ingestFromGofeed(f *gofeed.Feed, format, feedURL string) *ParsedFeed {
	pf := &ParsedFeed{Format: format, Title: f.Title, Link: ingestBase(f.Link, feedURL)}
	pf.Items = make([]RawItem, 0, len(f.Items))
	for _, it := range f.Items {
		if it == nil {
			continue
		}
		ri := RawItem{
			ID:         it.GUID,
			Link:       it.Link,
			Links:      it.Links,
			Title:      it.Title,
			Summary:    it.Description,
			Content:    it.Content,
			Categories: it.Categories,
			BaseURL:    pf.Link,
		}
		if it.PublishedParsed != nil {
			ri.Published = *it.PublishedParsed
		}
		if it.UpdatedParsed != nil {
			ri.Updated = *it.UpdatedParsed
		}
		pf.Items = append(pf.Items, ri)
	}
	return pf
}

// ingestBase picks the URL relative links are resolved against: the feed's
// home page when it gives an absolute one, else the feed's own URL.
func ingestBase(link, feedURL string) string {
	if u, err := url.Parse(strings.TrimSpace(link)); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return u.String()
	}
	if u, err := url.Parse(feedURL); err == nil && u.IsAbs() && link != "" {
		if r, err := u.Parse(strings.TrimSpace(link)); err == nil && (r.Scheme == "http" || r.Scheme == "https") {
			return r.String()
		}
	}
	return feedURL
}

// ingestTimeLoose reads the date forms found in JSON documents.
func ingestTimeLoose(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
