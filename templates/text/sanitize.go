package text

import (
	htmlstd "html"
	"net/url"
	"strings"

	"github.com/microcosm-cc/bluemonday"
)

// Sanitizer is Herald's one policy for HTML that publishers send:
// bluemonday's policy for user-generated content, which keeps text
// formatting, links, lists, tables and images, and drops scripts, styles,
// event handlers, frames, objects and forms; links may be http, https or
// mailto, and every URL is made absolute. Feeds narrow it further to what
// feed readers show (ForFeed). It is safe for concurrent use.
type Sanitizer struct {
	policy *bluemonday.Policy
}

// NewSanitizer builds the policy.
func NewSanitizer() *Sanitizer {
	p := bluemonday.UGCPolicy()
	p.AllowURLSchemes("http", "https", "mailto")
	return &Sanitizer{policy: p}
}

// Sanitize returns an HTML fragment reduced to what the policy allows,
// with its href, src and cite URLs resolved against base. A URL that does
// not resolve to http(s) or mailto, which is any relative URL when base is
// nil, is dropped with its attribute: a reader elsewhere could not follow
// it.
func (s *Sanitizer) Sanitize(fragment string, base *url.URL) string {
	// Text with no markup and no references is already safe HTML.
	if !strings.ContainsAny(fragment, "<>&") {
		return fragment
	}
	// Policy.Sanitize writes into a bytes.Buffer that grows from 64 bytes
	// and then copies it into the string; a builder sized for the fragment
	// (sanitising mostly keeps it, adding rel="nofollow" to links) is
	// written once and becomes the string as it is.
	var b strings.Builder
	b.Grow(len(fragment) + len(fragment)/8 + 32)
	if err := s.policy.SanitizeReaderToWriter(strings.NewReader(fragment), &b); err != nil {
		return "" // as Policy.Sanitize does: the tokenizer failed to read it
	}
	out := b.String()
	if strings.Contains(out, "href=") || strings.Contains(out, "src=") || strings.Contains(out, "cite=") {
		out = absolutize(out, base)
	}
	return out
}

// SanitizeWithPlain returns what Sanitize returns and the text Plain reads
// in it, for a caller that keeps both. It reads the text from the
// sanitised HTML, whose regular form (see readSanitized) needs no
// tokenizer, so the pair costs little more than Sanitize alone.
func (s *Sanitizer) SanitizeWithPlain(fragment string, base *url.URL) (out, plainText string) {
	out = s.Sanitize(fragment, base)
	return out, plain(out, true)
}

// absolutize rewrites the relative href, src and cite attributes of
// sanitised HTML into absolute URLs, dropping any that would not resolve
// to http(s) or mailto.
//
// It scans rather than re-parses: in bluemonday's output every attribute
// value is double-quoted with quotes inside it escaped, and text never
// holds a bare quote, so `="` only ever opens an attribute value.
func absolutize(s string, base *url.URL) string {
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
		var u *url.URL
		var err error
		if val := strings.TrimSpace(htmlstd.UnescapeString(raw)); base != nil {
			u, err = base.Parse(val)
		} else {
			u, err = url.Parse(val)
		}
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
