package web

import (
	"net/http"
	"strconv"

	"herald/store"
	"herald/web/admin"
)

// Searches people follow by email, in the admin API and the console: the
// most followed, with their subscriptions counted, and promoting one to a
// topic (web/admin does the work).

// searchOut is a followed search as the API shows it.
type searchOut struct {
	store.SearchFollowers
	// URL is the search page listing what it finds.
	URL string `json:"url"`
}

func (s *Server) searchOut(f store.SearchFollowers) searchOut {
	return searchOut{SearchFollowers: f, URL: s.abs("/search?" + f.SearchQuery().Params())}
}

// searchDetailOut is one search with the topic proposed for it.
type searchDetailOut struct {
	searchOut
	Proposal admin.Promotion `json:"proposal"`
}

// promotedOut is what promoting a search did.
type promotedOut struct {
	Topic topicOut `json:"topic"`
	Moved int      `json:"moved"`
}

// searchID reads the {id} of a search route; a bad one is not found.
func searchID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, store.ErrNotFound
	}
	return id, nil
}

// ---- API ----

func (s *Server) apiSearches(w http.ResponseWriter, r *http.Request) {
	limit, err := queryLimit(r, 100, admin.SearchesLimit)
	var list []store.SearchFollowers
	if err == nil {
		list, err = s.admin.Searches(r.Context(), limit)
	}
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	out := make([]searchOut, len(list))
	for i, f := range list {
		out[i] = s.searchOut(f)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiSearch(w http.ResponseWriter, r *http.Request) {
	id, err := searchID(r)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	d, err := s.admin.Search(r.Context(), id)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, searchDetailOut{searchOut: s.searchOut(d.SearchFollowers), Proposal: d.Proposal})
}

func (s *Server) apiPromoteSearch(w http.ResponseWriter, r *http.Request) {
	id, err := searchID(r)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	apiJSON(s, w, r, func(in admin.TopicInput) (any, string, error) {
		p, err := s.admin.PromoteSearch(r.Context(), id, in)
		if err != nil {
			return nil, "", err
		}
		return promotedOut{Topic: s.topicOut(p.Topic, nil), Moved: p.Moved}, "/api/v1/topics/" + p.Topic.Slug, nil
	})
}

// ---- console ----

func (s *Server) adminSearches(w http.ResponseWriter, r *http.Request) {
	list, err := s.admin.Searches(r.Context(), admin.SearchesLimit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rows := make([]searchOut, len(list))
	for i, f := range list {
		rows[i] = s.searchOut(f)
	}
	s.adminRender(w, r, http.StatusOK, "admin_searches", "searches", s.say("console.title.searches"), rows)
}

// adminSearchPage is the data of admin_search.html: a search, its followers and
// the form that promotes it to a topic.
type adminSearchPage struct {
	Search      searchOut
	Differences []string
	Form        topicForm
}

func (s *Server) renderSearch(w http.ResponseWriter, r *http.Request, status int, d admin.SearchDetail, form topicForm, selected []string) {
	var err error
	if form.Departments, err = s.departmentOptions(r.Context(), selected); err != nil {
		s.fail(w, r, err)
		return
	}
	s.adminRender(w, r, status, "admin_search", "searches", d.Name,
		adminSearchPage{Search: s.searchOut(d.SearchFollowers), Differences: d.Proposal.Differences, Form: form})
}

func (s *Server) adminSearch(w http.ResponseWriter, r *http.Request) {
	id, err := searchID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.admin.Search(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.renderSearch(w, r, http.StatusOK, d, topicFormFrom(d.Proposal.Topic, ""), d.Proposal.Topic.Match.Departments)
}

func (s *Server) adminPromoteSearch(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, err := searchID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	in, _ := topicInputFrom(r)
	p, err := s.admin.PromoteSearch(ctx, id, in)
	if err != nil {
		errs, ok := s.formErrors(err)
		if !ok {
			s.fail(w, r, err)
			return
		}
		d, err := s.admin.Search(ctx, id)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		form := topicFormFrom(in, "")
		form.Errors = errs
		s.renderSearch(w, r, http.StatusBadRequest, d, form, in.Match.Departments)
		return
	}
	s.done(w, r, "/admin/topics/"+p.Topic.Slug+"/edit", s.say("console.done.search_promoted", "Title", p.Topic.Title, "Moved", p.Moved))
}
