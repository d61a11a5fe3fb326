package publish

import (
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

// renderArchivePath is the URL path of archive page n of a feed in format
// ext.
func renderArchivePath(key string, n int, ext string) string {
	return renderKeyPath(key) + "/archive/" + strconv.Itoa(n) + "." + ext
}

// renderArchiveURL is the absolute URL of archive page n of f in format ext.
func (p *Publisher) renderArchiveURL(f *renderFeed, n int, ext string) string {
	return p.base + renderArchivePath(f.key, n, ext)
}

// renderSelf is the feed's own URL in format ext.
func (p *Publisher) renderSelf(f *renderFeed, ext string) string {
	if f.page > 0 {
		return p.renderArchiveURL(f, f.page, ext)
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
