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
		typeLabel := ""
		if p.Type != "" {
			typeLabel = text.DocumentTypeLabel(p.Type)
		}
		title := s.say("feed.search_title", "Site", s.cfg.SiteName, "Active", p.active(), "Query", p.Q,
			"Department", p.Department, "Topic", p.Topic, "Type", typeLabel)
		sf := publish.SearchFeed{Title: title, Subtitle: s.say("feed.search_subtitle", "Site", s.cfg.SiteName), PageURL: s.abs("/search"), Query: p.query()}
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
