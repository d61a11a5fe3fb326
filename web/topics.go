package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"herald/store"
	"herald/web/admin"
)

// Topics in the admin API and the console.

// topicOut is a topic as the API shows it.
type topicOut struct {
	store.Topic
	URL string `json:"url"`
	// Subscribers counts confirmed subscriptions per frequency; absent when
	// subscriber counts are not available.
	Subscribers map[string]int `json:"subscribers,omitempty"`
}

func (s *Server) topicOut(t store.Topic, counts map[string]map[string]int) topicOut {
	out := topicOut{Topic: t, URL: s.abs("/topics/" + t.Slug)}
	if counts != nil {
		out.Subscribers = map[string]int{"immediately": 0, "daily": 0, "weekly": 0}
		for f, n := range counts[t.Slug] {
			out.Subscribers[f] = n
		}
	}
	return out
}

// subscriptionCounts returns per-topic counts, or nil when no part of
// Herald counts subscribers.
func (s *Server) subscriptionCounts(ctx context.Context) (map[string]map[string]int, error) {
	if s.deps.SubscriberStats == nil {
		return nil, nil
	}
	c, err := s.deps.SubscriberStats.TopicSubscriptionCounts(ctx)
	if err != nil {
		return nil, err
	}
	if c == nil {
		c = map[string]map[string]int{}
	}
	return c, nil
}

// topicList returns the topics, the retired ones too when asked, as the
// API shows them, and whether they carry subscriber counts.
func (s *Server) topicList(ctx context.Context, retired bool) ([]topicOut, bool, error) {
	topics, err := s.db.Topics(ctx, retired)
	if err != nil {
		return nil, false, err
	}
	counts, err := s.subscriptionCounts(ctx)
	if err != nil {
		return nil, false, err
	}
	out := make([]topicOut, len(topics))
	for i, t := range topics {
		out[i] = s.topicOut(t, counts)
	}
	return out, counts != nil, nil
}

// previewOut is what a rule would have done.
type previewOut struct {
	// Matched30d counts releases first stored in the last 30 days that the
	// rule matches.
	Matched30d int            `json:"matched_30d"`
	Examples   []releaseBrief `json:"examples"`
	// Subscribers counts the current subscribers who would be emailed
	// about what the rule matches: those of the topic being edited, and
	// those following one of the rule's departments, each once.
	Subscribers int `json:"subscribers"`
}

type releaseBrief struct {
	ID         int64     `json:"id"`
	Title      string    `json:"title"`
	Department string    `json:"department"`
	Published  time.Time `json:"published"`
	URL        string    `json:"url"`
}

func (s *Server) preview(ctx context.Context, in admin.PreviewInput) (previewOut, error) {
	p, err := s.admin.PreviewTopic(ctx, in)
	if err != nil {
		return previewOut{}, err
	}
	out := previewOut{Matched30d: p.Matched, Examples: []releaseBrief{}, Subscribers: p.Subscribers}
	for _, r := range p.Examples {
		out.Examples = append(out.Examples, releaseBrief{ID: r.ID, Title: r.Title, Department: r.DepartmentName,
			Published: r.Published, URL: s.abs("/releases/" + strconv.FormatInt(r.ID, 10))})
	}
	return out, nil
}

// ---- API ----

func (s *Server) apiTopics(w http.ResponseWriter, r *http.Request) {
	out, _, err := s.topicList(r.Context(), r.URL.Query().Get("retired") == "true")
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiTopic(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t, err := s.db.TopicBySlug(ctx, r.PathValue("slug"))
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	counts, err := s.subscriptionCounts(ctx)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.topicOut(t, counts))
}

func (s *Server) apiCreateTopic(w http.ResponseWriter, r *http.Request) {
	apiJSON(s, w, r, func(in admin.TopicInput) (any, string, error) {
		t, err := s.admin.CreateTopic(r.Context(), in)
		if err != nil {
			return nil, "", err
		}
		return s.topicOut(t, nil), "/api/v1/topics/" + t.Slug, nil
	})
}

func (s *Server) apiUpdateTopic(w http.ResponseWriter, r *http.Request) {
	apiJSON(s, w, r, func(in admin.TopicInput) (any, string, error) {
		t, err := s.admin.UpdateTopic(r.Context(), r.PathValue("slug"), in)
		if err != nil {
			return nil, "", err
		}
		return s.topicOut(t, nil), "", nil
	})
}

func (s *Server) apiRetireTopic(w http.ResponseWriter, r *http.Request) {
	t, err := s.admin.RetireTopic(r.Context(), r.PathValue("slug"))
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.topicOut(t, nil))
}

func (s *Server) apiPreviewTopic(w http.ResponseWriter, r *http.Request) {
	var in admin.PreviewInput
	if err := decodeJSON(r, &in); err != nil {
		s.apiFail(w, r, err)
		return
	}
	out, err := s.preview(r.Context(), in)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// ---- console ----

type topicRow struct {
	topicOut
	Total int
}

func (s *Server) adminTopics(w http.ResponseWriter, r *http.Request) {
	topics, counted, err := s.topicList(r.Context(), true)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rows := make([]topicRow, len(topics))
	for i, t := range topics {
		rows[i].topicOut = t
		for _, n := range t.Subscribers {
			rows[i].Total += n
		}
	}
	s.adminRender(w, r, http.StatusOK, "admin_topics", "topics", s.say("console.title.topics"), topicsPage{rows, counted})
}

// topicsPage is the data of admin_topics.html.
type topicsPage struct {
	Topics []topicRow
	Counts bool
}

type topicForm struct {
	// Editing is the slug of the topic being edited; empty for a new one.
	Editing     string
	Retired     bool
	Slug        string
	Title       string
	Description string
	Departments []option
	Categories  string
	Keywords    string
	Exclude     string
	Errors      map[string]string
	Preview     *previewOut
	Subscribers map[string]int
}

// topicInputFrom reads the topic form.
func topicInputFrom(r *http.Request) (admin.TopicInput, string) {
	f := r.PostForm
	return admin.TopicInput{
		Slug:        strings.TrimSpace(f.Get("slug")),
		Title:       f.Get("title"),
		Description: f.Get("description"),
		Match: store.Rule{
			Departments: f["departments"],
			Categories:  lines(f.Get("categories")),
			Keywords:    lines(f.Get("keywords")),
			Exclude:     lines(f.Get("exclude")),
		},
	}, strings.TrimSpace(f.Get("editing"))
}

// topicFormFrom fills the form with a topic's fields, or with what was
// posted.
func topicFormFrom(in admin.TopicInput, editing string) topicForm {
	return topicForm{
		Editing: editing, Slug: in.Slug, Title: in.Title, Description: in.Description,
		Categories: strings.Join(in.Match.Categories, "\n"),
		Keywords:   strings.Join(in.Match.Keywords, "\n"),
		Exclude:    strings.Join(in.Match.Exclude, "\n"),
	}
}

func (s *Server) renderTopicForm(w http.ResponseWriter, r *http.Request, status int, form topicForm, selected []string) {
	var err error
	form.Departments, err = s.departmentOptions(r.Context(), selected)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	title := s.say("console.title.new_topic")
	if form.Editing != "" {
		title = s.say("console.title.topic", "Title", form.Title)
	}
	s.adminRender(w, r, status, "admin_topic", "topics", title, form)
}

// topicFormFailed re-renders a posted topic form with its problems beside
// the fields, or answers the error that is not about a field.
func (s *Server) topicFormFailed(w http.ResponseWriter, r *http.Request, err error, form topicForm, selected []string) {
	errs, ok := s.formErrors(err)
	if !ok {
		s.fail(w, r, err)
		return
	}
	form.Errors = errs
	s.renderTopicForm(w, r, http.StatusBadRequest, form, selected)
}

func (s *Server) adminNewTopic(w http.ResponseWriter, r *http.Request) {
	s.renderTopicForm(w, r, http.StatusOK, topicForm{}, nil)
}

func (s *Server) adminCreateTopic(w http.ResponseWriter, r *http.Request) {
	in, _ := topicInputFrom(r)
	t, err := s.admin.CreateTopic(r.Context(), in)
	if err != nil {
		s.topicFormFailed(w, r, err, topicFormFrom(in, ""), in.Match.Departments)
		return
	}
	s.done(w, r, "/admin/topics/"+t.Slug+"/edit", s.say("console.done.topic_created", "Title", t.Title))
}

func (s *Server) adminPreviewTopic(w http.ResponseWriter, r *http.Request) {
	in, editing := topicInputFrom(r)
	form := topicFormFrom(in, editing)
	if editing != "" {
		t, err := s.db.TopicBySlug(r.Context(), editing)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		form.Slug, form.Retired = t.Slug, t.Retired()
	}
	p, err := s.preview(r.Context(), admin.PreviewInput{Slug: editing, Match: in.Match})
	if err != nil {
		s.topicFormFailed(w, r, err, form, in.Match.Departments)
		return
	}
	form.Preview = &p
	s.renderTopicForm(w, r, http.StatusOK, form, in.Match.Departments)
}

func (s *Server) adminTopic(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t, err := s.db.TopicBySlug(ctx, r.PathValue("slug"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	form := topicFormFrom(admin.TopicInputOf(t), t.Slug)
	form.Retired = t.Retired()
	counts, err := s.subscriptionCounts(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if counts != nil {
		form.Subscribers = s.topicOut(t, counts).Subscribers
	}
	s.renderTopicForm(w, r, http.StatusOK, form, t.Rule.Departments)
}

func (s *Server) adminUpdateTopic(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	in, _ := topicInputFrom(r)
	in.Slug = slug
	t, err := s.admin.UpdateTopic(r.Context(), slug, in)
	if err != nil {
		s.topicFormFailed(w, r, err, topicFormFrom(in, slug), in.Match.Departments)
		return
	}
	s.done(w, r, "/admin/topics/"+t.Slug+"/edit", s.say("console.done.topic_saved", "Title", t.Title))
}

func (s *Server) adminRetireTopic(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	if _, err := s.admin.RetireTopic(r.Context(), slug); err != nil {
		s.fail(w, r, err)
		return
	}
	s.done(w, r, "/admin/topics/"+slug+"/edit", s.say("console.done.topic_retired"))
}
