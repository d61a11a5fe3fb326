package publish

import (
	"net/url"
	"strconv"
	"strings"
)

// renderKeyPath maps a feed key to its URL path without extension.
func renderKeyPath(key string) string {
	switch {
	case key == "all":
		return "/feeds/all"
	case strings.HasPrefix(key, "department:"):
		return "/feeds/departments/" + strings.TrimPrefix(key, "department:")
	case strings.HasPrefix(key, "topic:"):
		return "/feeds/topics/" + strings.TrimPrefix(key, "topic:")
	}
	return "/feeds/unknown"
}

func renderArchivePath(key string, page int) string {
	return renderKeyPath(key) + "/archive/" + strconv.Itoa(page) + ".atom"
}

// renderSelf is the feed's own URL in format ext.
func (p *Publisher) renderSelf(f *renderFeed, ext string) string {
	if f.page > 0 {
		return p.base + renderArchivePath(f.key, f.page)
	}
	self := p.base + f.path + "." + ext
	if f.query != "" {
		self += "?" + f.query
	}
	return self
}

// renderHubs are the hubs a feed advertises: none for one rendered on
// request, which no hub is told about.
func (p *Publisher) renderHubs(f *renderFeed) []string {
	if f.query != "" || f.page > 0 {
		return nil
	}
	return p.hubs()
}

// renderID makes a stable id: a tag URI on the base URL's host, or a URL
// below the base URL when the host cannot name a tag.
func (p *Publisher) renderID(specific string) string {
	if p.tagAuth != "" {
		return "tag:" + p.tagAuth + ",2026:" + specific
	}
	return p.base + "/" + specific
}

// renderURL parses an absolute http(s) URL and escapes what a URI may not
// carry literally (spaces, quotes, angle brackets, non-ASCII), or returns
// nil.
func renderURL(raw string) *url.URL {
	u, err := url.Parse(strings.TrimSpace(renderClean(raw)))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil
	}
	u.RawQuery = renderEscapeURI(u.RawQuery)
	return u
}

// renderEscapeURI percent-encodes every byte of s that RFC 3986 does not
// allow in a query, leaving existing escapes alone.
func renderEscapeURI(s string) string {
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

// renderAbsURL resolves ref against base (which may be nil) and keeps it
// only when it is an http(s) URL (or, for links, mailto:).
func renderAbsURL(ref string, base *url.URL, link bool) string {
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
		if u = renderURL(u.String()); u == nil {
			return ""
		}
		return u.String()
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return ""
		}
	case "mailto":
		if !link {
			return ""
		}
	default:
		return ""
	}
	return u.String()
}
