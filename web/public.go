package web

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"herald/alerts"
	"herald/store"
	"herald/templates/text"
)

// pageSize is how many releases a listing or search page shows.
const pageSize = 20

// releaseItem is a release as a listing shows it.
type releaseItem struct {
	store.Release
	URL string
}

// releaseView is a release as its own page shows it.
type releaseView struct {
	store.Release
	// Summary and Body are the release's HTML. template.HTML is right for
	// these two fields only: feeds sanitise upstream HTML with an allow-list
	// policy once, on ingest, before it is stored (DESIGN.md: "Upstream
	// HTML is sanitized once, on the way in"). Everything else on the page
	// is escaped by html/template.
	Summary template.HTML
	Body    template.HTML
}

func (s *Server) abs(path string) string { return s.base.String() + path }

func (s *Server) items(rs []store.Release) []releaseItem {
	out := make([]releaseItem, len(rs))
	for i, r := range rs {
		out[i] = releaseItem{Release: r, URL: "/releases/" + strconv.FormatInt(r.ID, 10)}
	}
	return out
}

// feedLinks are the three formats of the feed at path (without extension).
func (s *Server) feedLinks(title, path, query string) []feedLink {
	if query != "" {
		query = "?" + query
	}
	return []feedLink{
		{Title: title, Type: "application/atom+xml", Label: "Atom", URL: s.abs(path + ".atom" + query)},
		{Title: title, Type: "application/rss+xml", Label: "RSS", URL: s.abs(path + ".rss" + query)},
		{Title: title, Type: "application/feed+json", Label: "JSON Feed", URL: s.abs(path + ".json" + query)},
	}
}

type homePage struct {
	Departments []store.Department
	Topics      []store.Topic
	Releases    []releaseItem
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	depts, err := s.db.Departments(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	topics, err := s.db.Topics(ctx, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	latest, err := s.db.Releases(ctx, store.ReleaseFilter{Limit: pageSize})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	s.render(w, r, http.StatusOK, "home", &view{
		Title: s.say("title.home"),
		Feeds: s.feedLinks(s.say("feed.all"), "/feeds/all", ""),
		Data:  homePage{Departments: depts, Topics: topics, Releases: s.items(latest)},
	})
}

// listingPage is a department's or a topic's latest news.
type listingPage struct {
	Kind        string // "department" or "topic"
	Slug        string
	Name        string
	Description string
	Website     string
	Retired     bool
	Releases    []releaseItem
	// Older continues the listing; Latest goes back to its first page.
	Older  string
	Latest string
	// Subscribe is the form posting to /subscribe.
	Subscribe subscribeForm
}

type subscribeForm struct {
	Kind string
	Slug string
	Name string
	CSRF string
}

func (s *Server) department(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	d, err := s.db.DepartmentBySlug(r.Context(), slug)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.listing(w, r, listingPage{Kind: "department", Slug: d.Slug, Name: d.Name, Website: d.URL},
		store.ReleaseFilter{Department: d.Slug})
}

func (s *Server) topic(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	t, err := s.db.TopicBySlug(r.Context(), slug)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.listing(w, r, listingPage{Kind: "topic", Slug: t.Slug, Name: t.Title, Description: t.Description, Retired: t.Retired()},
		store.ReleaseFilter{Topic: t.Slug})
}

// listing shows one page of a department's or topic's releases. Pages are
// keyed by the last release shown (?before=ID), so news arriving while a
// reader pages does not shift what they see.
func (s *Server) listing(w http.ResponseWriter, r *http.Request, p listingPage, f store.ReleaseFilter) {
	ctx := r.Context()
	path := "/" + p.Kind + "s/" + p.Slug
	if raw := r.URL.Query().Get("before"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id <= 0 {
			s.fail(w, r, errStatus(http.StatusBadRequest, "error.page_link"))
			return
		}
		before, err := s.db.ReleaseByID(ctx, id)
		if err != nil {
			s.fail(w, r, errStatus(http.StatusBadRequest, "error.page_link"))
			return
		}
		f.BeforePublished, f.BeforeID = before.Published, before.ID
		p.Latest = path
	}
	f.Limit = pageSize + 1
	rs, err := s.db.Releases(ctx, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(rs) > pageSize {
		rs = rs[:pageSize]
		p.Older = path + "?before=" + strconv.FormatInt(rs[len(rs)-1].ID, 10)
	}
	p.Releases = s.items(rs)
	if !p.Retired {
		p.Subscribe = subscribeForm{Kind: p.Kind, Slug: p.Slug, Name: p.Name, CSRF: s.csrf.token(w, r)}
	}
	// The form's token cookie makes the page one visitor's.
	w.Header().Set("Cache-Control", "private, no-cache")
	s.render(w, r, http.StatusOK, "listing", &view{
		Title: p.Name,
		Feeds: s.feedLinks(p.Name, "/feeds/"+p.Kind+"s/"+p.Slug, ""),
		Data:  p,
	})
}

type releasePage struct {
	Release releaseView
	URL     string
	Topics  []store.Topic
	Latest  []releaseItem
}

func (s *Server) release(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.notFound(w, r)
		return
	}
	rel, err := s.db.ReleaseByID(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	latest, err := s.db.Releases(ctx, store.ReleaseFilter{Department: rel.DepartmentSlug, Limit: 9})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	others := make([]store.Release, 0, 8)
	for _, o := range latest {
		if o.ID != rel.ID && len(others) < 8 {
			others = append(others, o)
		}
	}
	topics, err := s.topicsBySlug(ctx, rel.Topics)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	printable := r.URL.Query().Get("print") == "1"
	w.Header().Set("Cache-Control", "public, max-age=60")
	s.render(w, r, http.StatusOK, "release", &view{
		Title:   rel.Title,
		Feeds:   s.feedLinks(rel.DepartmentName, "/feeds/departments/"+rel.DepartmentSlug, ""),
		Print:   printable,
		NoIndex: printable,
		Data: releasePage{
			Release: releaseView{Release: rel, Summary: template.HTML(rel.Summary), Body: template.HTML(rel.Body)},
			URL:     "/releases/" + strconv.FormatInt(rel.ID, 10),
			Topics:  topics,
			Latest:  s.items(others),
		},
	})
}

// topicsBySlug returns the topics with the given slugs, in that order. A
// release carries a handful, so one look-up each beats reading every topic.
func (s *Server) topicsBySlug(ctx context.Context, slugs []string) ([]store.Topic, error) {
	var out []store.Topic
	for _, slug := range slugs {
		t, err := s.db.TopicBySlug(ctx, slug)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// searchParams is a search as the query string gives it.
type searchParams struct {
	Q          string
	Department string
	Topic      string
	// Type is a document type in store.CategoryKey form.
	Type string
	Page int
}

func parseSearch(r *http.Request) searchParams {
	q := r.URL.Query()
	p := searchParams{
		Q:          cleanLine(q.Get("q"), alerts.SearchMaxRunes),
		Department: q.Get("department"),
		Topic:      q.Get("topic"),
		Type:       store.CategoryKey(cleanLine(q.Get("type"), 100)),
		Page:       1,
	}
	if !store.ValidSlug(p.Department) {
		p.Department = ""
	}
	if !store.ValidSlug(p.Topic) {
		p.Topic = ""
	}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 && n <= 500 {
		p.Page = n
	}
	return p
}

// active reports whether the visitor asked for anything.
func (p searchParams) active() bool {
	return p.Q != "" || p.Department != "" || p.Topic != "" || p.Type != ""
}

// storeQuery is the search as the store runs it.
func (p searchParams) storeQuery() store.SearchQuery {
	return store.SearchQuery{Text: p.Q, Department: p.Department, Topic: p.Topic, Type: p.Type}
}

// query encodes the search without its page, for links and feeds.
func (p searchParams) query() string { return p.storeQuery().Params() }

// run searches the store; a query with nothing searchable finds nothing
// rather than everything.
func (s *Server) runSearch(ctx context.Context, p searchParams, limit, offset int) (store.SearchResult, error) {
	if p.Q != "" && store.MatchExpression(p.Q) == "" {
		return store.SearchResult{Releases: []store.Release{}}, nil
	}
	q := p.storeQuery()
	q.Limit, q.Offset = limit, offset
	return s.db.SearchReleases(ctx, q)
}

// documentType is a document type the search page offers: its key
// (store.CategoryKey) and the label readers know it by.
type documentType struct {
	Key, Label string
}

// documentTypes lists the document types sources declared, by label.
func (s *Server) documentTypes(ctx context.Context) ([]documentType, error) {
	names, err := s.db.DocumentTypes(ctx)
	if err != nil {
		return nil, err
	}
	var out []documentType
	seen := map[string]bool{}
	for _, n := range names {
		k := store.CategoryKey(n)
		if k != "" && !seen[k] {
			seen[k] = true
			out = append(out, documentType{Key: k, Label: text.DocumentTypeLabel(n)})
		}
	}
	slices.SortFunc(out, func(a, b documentType) int { return strings.Compare(a.Label, b.Label) })
	return out, nil
}

type searchPage struct {
	Params      searchParams
	FirstPage   string
	Searched    bool
	Departments []store.Department
	Topics      []store.Topic
	Types       []documentType
	Releases    []releaseItem
	Total       int
	First, Last int
	Prev, Next  string
	// Follow is where to sign up for emails about the search, when it has
	// words to search for.
	Follow string
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := parseSearch(r)
	page := searchPage{Params: p, FirstPage: "/search?" + p.query(), Searched: p.active()}
	var err error
	if page.Departments, err = s.db.Departments(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	if page.Topics, err = s.db.Topics(ctx, false); err != nil {
		s.fail(w, r, err)
		return
	}
	if page.Types, err = s.documentTypes(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	v := &view{Title: s.say("title.search"), NoIndex: true, Data: &page}
	if s.deps.Alerts != nil && store.NormalizeSearchText(p.Q) != "" {
		page.Follow = "/subscribe?" + url.Values{"search": {p.query()}}.Encode()
	}
	if page.Searched {
		res, err := s.runSearch(ctx, p, pageSize, (p.Page-1)*pageSize)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		page.Releases, page.Total = s.items(res.Releases), res.Total
		if len(res.Releases) > 0 {
			page.First = (p.Page-1)*pageSize + 1
			page.Last = page.First + len(res.Releases) - 1
		}
		link := func(n int) string {
			q := p.query()
			if n > 1 {
				q += "&page=" + strconv.Itoa(n)
			}
			return "/search?" + q
		}
		lastPage := (res.Total + pageSize - 1) / pageSize
		if p.Page > 1 {
			page.Prev = link(min(p.Page-1, max(lastPage, 1)))
		}
		if len(res.Releases) > 0 && page.Last < res.Total && p.Page < 500 {
			page.Next = link(p.Page + 1)
		}
		title := s.say("title.search_results")
		if p.Q != "" {
			title = s.say("title.search_results_for", "Query", p.Q)
		}
		v.Title = title
		v.Feeds = s.feedLinks(title, "/feeds/search", p.query())
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	s.render(w, r, http.StatusOK, "search", v)
}

// cleanLine makes typed text one clean line (see text.Line) and bounds it
// at max runes. It is input, not display: no ellipsis marks the cut.
func cleanLine(s string, max int) string {
	s = text.Line(s)
	if n := []rune(s); len(n) > max {
		s = string(n[:max])
	}
	return s
}
