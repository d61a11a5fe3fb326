package publish

import (
	"fmt"
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

// renderIcons are the images feeds name: a small square icon (Atom icon,
// JSON Feed favicon, RSS image), a large one (JSON Feed icon) and a logo
// twice as wide as tall (Atom logo).
type renderIcons struct {
	small, large, logo string
	// size is the small icon's width and height, 0 when unknown.
	size int
}

// renderIconSet returns Herald's own icons, served below /static/, or
// icon (an absolute URL, or a path below the base URL) for all three.
func (p *Publisher) renderIconSet(icon string) (renderIcons, error) {
	if icon == "" {
		return renderIcons{small: p.base + "/static/icon-64.png", large: p.base + "/static/icon-512.png",
			logo: p.base + "/static/logo.png", size: 64}, nil
	}
	if strings.HasPrefix(icon, "/") && !strings.HasPrefix(icon, "//") {
		icon = p.base + icon
	}
	if u, err := url.Parse(icon); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return renderIcons{}, fmt.Errorf("feeds: icon %q must be an absolute http(s) URL or a path starting with /", icon)
	}
	return renderIcons{small: icon, large: icon, logo: icon}, nil
}
