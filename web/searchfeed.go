package web

import (
	"context"
	"net/http"

	"herald/feeds/publish"
	"herald/store"
	"herald/templates/text"
)

// searchFeedSize is how many results a search feed carries.
const searchFeedSize = 50

// searchFeed serves /feeds/search.{atom,rss,json}: the newest results of a
// search as a feed, served by the feeds package like every other feed
// (gzip, ETag and Last-Modified, Link, request metrics) and kept there for
// a short while per normalised query.
func (s *Server) searchFeed(format string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := parseSearch(r)
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
			if p.Type != "" {
				title += " (" + text.DocumentTypeLabel(p.Type) + ")"
			}
		}
		sf := publish.SearchFeed{Title: title, Subtitle: "Search results on " + s.cfg.SiteName, PageURL: s.abs("/search"), Query: p.query()}
		if sf.Query != "" {
			sf.PageURL += "?" + sf.Query
		}
		err := s.deps.SearchFeeds.ServeSearch(w, r, format, sf, func(ctx context.Context) ([]store.Release, error) {
			res, err := s.runSearch(ctx, p, searchFeedSize, 0)
			return res.Releases, err
		})
		if err != nil {
			s.fail(w, r, err)
		}
	}
}
