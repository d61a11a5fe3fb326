package web

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"

	"herald/feeds/publish"
)

// searchFeedTypes are the Content-Types of the search feed formats.
var searchFeedTypes = map[string]string{
	"atom": "application/atom+xml; charset=utf-8",
	"rss":  "application/rss+xml; charset=utf-8",
	"json": "application/feed+json; charset=utf-8",
}

// searchFeedSize is how many results a search feed carries.
const searchFeedSize = 50

// searchFeed serves /feeds/search.{atom,rss,json}: the newest results of a
// search as a feed. Each request renders afresh (searches are too many to
// cache), and the bytes' hash is the ETag so an unchanged poll costs a 304.
func (s *Server) searchFeed(format string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := parseSearch(r)
		res, err := s.runSearch(r.Context(), p, searchFeedSize, 0)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		title := s.cfg.SiteName + ": all news"
		if p.active() {
			title = s.cfg.SiteName + ": search"
			if p.Q != "" {
				title += " for “" + p.Q + "”"
			}
			if p.Department != "" {
				title += " in " + p.Department
			}
			if p.Topic != "" {
				title += " about " + p.Topic
			}
		}
		sf := publish.SearchFeed{Title: title, Subtitle: "Search results on " + s.cfg.SiteName, PageURL: s.abs("/search"), Query: p.query()}
		if sf.Query != "" {
			sf.PageURL += "?" + sf.Query
		}
		body, err := s.deps.SearchFeeds.RenderSearch(format, sf, res.Releases)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		sum := sha256.Sum256(body)
		etag := `"` + hex.EncodeToString(sum[:16]) + `"`
		h := w.Header()
		h.Set("ETag", etag)
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("Vary", "Accept-Encoding")
		if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", searchFeedTypes[format])
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	}
}

func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
