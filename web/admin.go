package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"herald/store"
)

// The admin console: the API's abilities as server-rendered forms. Every
// form posts back with the session's CSRF token (checked in
// requireSession), re-renders with problems beside their fields, and
// redirects after success so a reload does not post twice.

func (s *Server) adminRender(w http.ResponseWriter, r *http.Request, status int, name, section, title string, data any) {
	sess := sessionFrom(r.Context())
	v := &view{Title: title, NoIndex: true, Admin: true, Section: section, Data: data,
		Nav: adminNav{Subscribers: s.deps.Subscribers != nil, Outbox: s.deps.Outbox != nil}}
	if sess != nil {
		v.CSRF = sess.csrf
		v.Flash = s.sessions.takeFlash(sess)
	}
	s.render(w, r, status, name, v)
}

// done finishes a successful form post: a message for the next page and a
// redirect to it.
func (s *Server) done(w http.ResponseWriter, r *http.Request, to, flash string) {
	if sess := sessionFrom(r.Context()); sess != nil && flash != "" {
		s.sessions.setFlash(sess, flash)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// formError turns a failure to read a form into the answer for it.
func formError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return errStatus(http.StatusBadRequest, "The form could not be read.")
}

// formLabels name the form fields in messages shown beside them.
var formLabels = map[string]string{
	"slug": "Slug", "title": "Title", "description": "Description", "match": "The rule",
	"departments": "Departments", "categories": "Categories", "keywords": "Keywords", "exclude": "Excluded words",
	"name": "Name", "url": "URL", "department": "Department", "format": "Format", "address": "Email address",
}

// formErrors puts the API's field paths ("match.keywords[2]") on the form's
// fields ("keywords") as sentences, keeping the first problem of each.
func formErrors(err error) (map[string]string, bool) {
	var fe fieldErrors
	if !errors.As(err, &fe) {
		return nil, false
	}
	keys := make([]string, 0, len(fe))
	for k := range fe {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := map[string]string{}
	for _, k := range keys {
		field, idx, isItem := strings.Cut(strings.TrimPrefix(k, "match."), "[")
		label := formLabels[field]
		if label == "" {
			label = field
		}
		msg := label + " " + fe[k] + "."
		if isItem && field != "departments" {
			n, _ := strconv.Atoi(strings.TrimSuffix(idx, "]"))
			msg = fmt.Sprintf("%s, line %d, %s.", label, n+1, fe[k])
		}
		if _, ok := out[field]; !ok {
			out[field] = msg
		}
	}
	return out, true
}

// lines splits a textarea into lines; blank ones are dropped when checked,
// after their numbers have served to point at a bad line.
func lines(s string) []string {
	return strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
}

// ---- login ----

type loginPage struct {
	Next  string
	Error string
}

func (s *Server) adminLoginForm(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if _, ok := s.sessions.get(c.Value); ok {
			http.Redirect(w, r, "/admin/", http.StatusSeeOther)
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, http.StatusOK, "admin_login", &view{Title: "Sign in", NoIndex: true, CSRF: s.csrf.token(w, r),
		Data: loginPage{Next: safeNext(r.URL.Query().Get("next"))}})
}

func (s *Server) adminLogin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !s.logins.allow(clientKey(r)) {
		w.Header().Set("Retry-After", "60")
		s.renderError(w, r, http.StatusTooManyRequests, "There have been too many sign-in attempts from your network. Wait a minute and try again.")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, formError(err))
		return
	}
	if !s.csrf.valid(r) {
		s.renderError(w, r, http.StatusForbidden, "The sign-in form has expired. Go back, reload the page and try again.")
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if !s.tokenOK(strings.TrimSpace(r.PostForm.Get("token"))) {
		s.log.WarnContext(r.Context(), "admin sign-in refused", slog.String("reason", "wrong token"))
		s.render(w, r, http.StatusForbidden, "admin_login", &view{Title: "Sign in", NoIndex: true, CSRF: s.csrf.token(w, r),
			Data: loginPage{Next: next, Error: "That token is not valid. Use one of the tokens under admin.tokens in Herald's configuration."}})
		return
	}
	sess := s.sessions.create()
	s.setSessionCookie(w, sess.id, int(s.sessions.ttl/time.Second))
	s.log.InfoContext(r.Context(), "admin signed in")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) adminLogout(w http.ResponseWriter, r *http.Request) {
	if sess := sessionFrom(r.Context()); sess != nil {
		s.sessions.delete(sess.id)
	}
	s.setSessionCookie(w, "", -1)
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}

// ---- dashboard ----

// chart is a bar chart drawn as inline SVG (no script, no inline style, so
// the CSP holds), with the numbers also in a table for screen readers.
type chart struct {
	Title  string
	Bars   []bar
	Total  int
	Max    int
	Width  int
	Height int
}

type bar struct {
	X, Y, W, H int
	Day        time.Time
	Count      int
}

const chartHeight = 120

func newChart(title string, days []store.DayCount) chart {
	c := chart{Title: title, Height: chartHeight + 20}
	for _, d := range days {
		c.Total += d.Count
		c.Max = max(c.Max, d.Count)
	}
	const w, gap = 28, 6
	for i, d := range days {
		h := 0
		if c.Max > 0 {
			h = d.Count * chartHeight / c.Max
		}
		if d.Count > 0 && h < 2 {
			h = 2
		}
		c.Bars = append(c.Bars, bar{X: i * (w + gap), Y: chartHeight - h, W: w, H: h, Day: d.Day, Count: d.Count})
	}
	c.Width = len(days) * (w + gap)
	return c
}

type dashboardPage struct {
	Stats       store.Dashboard
	Charts      []chart
	Sources     []sourceOut
	Failing     int
	Pulls       []store.Pull
	Outbox      bool
	Subscribers bool
}

const dashboardDays = 14

func (s *Server) adminDashboard(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	stats, err := s.db.Dashboard(ctx, dashboardDays, s.cfg.Location)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	srcs, err := s.db.Sources(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	pulls, err := s.db.RecentPulls(ctx, 10)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := dashboardPage{Stats: stats, Pulls: pulls, Outbox: s.deps.Outbox != nil}
	for _, src := range srcs {
		o := sourceView(src)
		if o.Health == "failing" {
			p.Failing++
		}
		p.Sources = append(p.Sources, o)
	}
	// Failing sources first: they are what an admin opens the page for.
	sort.SliceStable(p.Sources, func(i, j int) bool {
		return (p.Sources[i].Health == "failing") && p.Sources[j].Health != "failing"
	})
	p.Charts = append(p.Charts, newChart("Releases stored per day", stats.ReleasesPerDay))
	if s.deps.SubscriberStats != nil {
		days, err := s.deps.SubscriberStats.SubscribersPerDay(ctx, dashboardDays, s.cfg.Location)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p.Subscribers = true
		p.Charts = append(p.Charts, newChart("New subscribers per day", days))
	}
	p.Charts = append(p.Charts, newChart("Emails sent per day", stats.EmailsSentPerDay))
	s.adminRender(w, r, http.StatusOK, "admin_dashboard", "dashboard", "Dashboard", p)
}

// ---- topics ----

type topicRow struct {
	topicOut
	Total int
}

func (s *Server) adminTopics(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	topics, err := s.db.Topics(ctx, true)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	counts, err := s.subscriptionCounts(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rows := make([]topicRow, len(topics))
	for i, t := range topics {
		rows[i].topicOut = s.topicOut(t, counts)
		for _, n := range rows[i].Subscribers {
			rows[i].Total += n
		}
	}
	s.adminRender(w, r, http.StatusOK, "admin_topics", "topics", "Topics", struct {
		Topics []topicRow
		Counts bool
	}{rows, counts != nil})
}

type option struct {
	Value, Label string
	Selected     bool
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

func (s *Server) departmentOptions(ctx context.Context, selected []string) ([]option, error) {
	ds, err := s.db.Departments(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]option, len(ds))
	for i, d := range ds {
		out[i] = option{Value: d.Slug, Label: d.Name}
		for _, sel := range selected {
			out[i].Selected = out[i].Selected || sel == d.Slug
		}
	}
	return out, nil
}

func topicFormFrom(t store.Topic) topicForm {
	return topicForm{
		Slug: t.Slug, Title: t.Title, Description: t.Description,
		Categories: strings.Join(t.Rule.Categories, "\n"),
		Keywords:   strings.Join(t.Rule.Keywords, "\n"),
		Exclude:    strings.Join(t.Rule.Exclude, "\n"),
	}
}

// topicInputFrom reads the topic form.
func topicInputFrom(r *http.Request) (topicInput, string) {
	f := r.PostForm
	return topicInput{
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

func (s *Server) renderTopicForm(w http.ResponseWriter, r *http.Request, status int, form topicForm, selected []string) {
	var err error
	form.Departments, err = s.departmentOptions(r.Context(), selected)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	title := "New topic"
	if form.Editing != "" {
		title = "Edit topic: " + form.Title
	}
	s.adminRender(w, r, status, "admin_topic", "topics", title, form)
}

// formFromInput refills the form with what was posted.
func formFromInput(in topicInput, editing string) topicForm {
	return topicForm{
		Editing: editing, Slug: in.Slug, Title: in.Title, Description: in.Description,
		Categories: r2s(in.Match.Categories), Keywords: r2s(in.Match.Keywords), Exclude: r2s(in.Match.Exclude),
	}
}

func r2s(items []string) string { return strings.Join(items, "\n") }

func (s *Server) adminNewTopic(w http.ResponseWriter, r *http.Request) {
	s.renderTopicForm(w, r, http.StatusOK, topicForm{}, nil)
}

func (s *Server) adminCreateTopic(w http.ResponseWriter, r *http.Request) {
	in, _ := topicInputFrom(r)
	t, err := s.createTopic(r.Context(), in)
	if errs, ok := formErrors(err); ok {
		form := formFromInput(in, "")
		form.Errors = errs
		s.renderTopicForm(w, r, http.StatusBadRequest, form, in.Match.Departments)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.done(w, r, "/admin/topics/"+t.Slug+"/edit", "Topic “"+t.Title+"” created.")
}

func (s *Server) adminPreviewTopic(w http.ResponseWriter, r *http.Request) {
	in, editing := topicInputFrom(r)
	form := formFromInput(in, editing)
	if editing != "" {
		t, err := s.db.TopicBySlug(r.Context(), editing)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		form.Slug, form.Retired = t.Slug, t.Retired()
	}
	p, err := s.preview(r.Context(), previewInput{Slug: editing, Match: in.Match})
	if errs, ok := formErrors(err); ok {
		form.Errors = errs
		s.renderTopicForm(w, r, http.StatusBadRequest, form, in.Match.Departments)
		return
	}
	if err != nil {
		s.fail(w, r, err)
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
	form := topicFormFrom(t)
	form.Editing, form.Retired = t.Slug, t.Retired()
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
	t, err := s.updateTopic(r.Context(), slug, in)
	if errs, ok := formErrors(err); ok {
		form := formFromInput(in, slug)
		form.Errors = errs
		s.renderTopicForm(w, r, http.StatusBadRequest, form, in.Match.Departments)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.done(w, r, "/admin/topics/"+t.Slug+"/edit", "Topic “"+t.Title+"” saved.")
}

func (s *Server) adminRetireTopic(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	if err := s.db.RetireTopic(r.Context(), slug); err != nil {
		s.fail(w, r, err)
		return
	}
	s.done(w, r, "/admin/topics/"+slug+"/edit", "Topic retired: it no longer matches new releases and its feeds say so.")
}

// ---- sources ----

type sourceForm struct {
	Editing     string
	Name        string
	URL         string
	Department  string
	Format      string
	Enabled     bool
	Departments []option
	Formats     []option
	Errors      map[string]string
}

type sourcesPage struct {
	Sources []sourceOut
	Form    sourceForm
}

func (s *Server) fillSourceForm(ctx context.Context, f *sourceForm) error {
	var err error
	f.Departments, err = s.departmentOptions(ctx, []string{f.Department})
	if err != nil {
		return err
	}
	f.Formats = nil
	for _, fm := range store.Formats {
		f.Formats = append(f.Formats, option{Value: fm, Label: fm, Selected: fm == f.Format})
	}
	return nil
}

func (s *Server) renderSources(w http.ResponseWriter, r *http.Request, status int, form sourceForm) {
	ctx := r.Context()
	srcs, err := s.db.Sources(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := sourcesPage{Form: form}
	for _, src := range srcs {
		p.Sources = append(p.Sources, sourceView(src))
	}
	if err := s.fillSourceForm(ctx, &p.Form); err != nil {
		s.fail(w, r, err)
		return
	}
	s.adminRender(w, r, status, "admin_sources", "sources", "Sources", p)
}

func (s *Server) adminSources(w http.ResponseWriter, r *http.Request) {
	s.renderSources(w, r, http.StatusOK, sourceForm{Format: store.FormatAuto, Enabled: true})
}

func sourceInputFrom(r *http.Request) sourceInput {
	f := r.PostForm
	enabled := f.Get("enabled") == "on"
	return sourceInput{Name: strings.TrimSpace(f.Get("name")), URL: f.Get("url"), Department: f.Get("department"),
		Format: f.Get("format"), Enabled: &enabled}
}

func sourceFormFrom(in sourceInput, editing string) sourceForm {
	return sourceForm{Editing: editing, Name: in.Name, URL: in.URL, Department: in.Department, Format: in.Format, Enabled: *in.Enabled}
}

func (s *Server) adminCreateSource(w http.ResponseWriter, r *http.Request) {
	in := sourceInputFrom(r)
	src, err := s.createSource(r.Context(), in)
	if errs, ok := formErrors(err); ok {
		form := sourceFormFrom(in, "")
		form.Errors = errs
		s.renderSources(w, r, http.StatusBadRequest, form)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.done(w, r, "/admin/sources/"+src.Name+"/edit", "Source “"+src.Name+"” added. It is pulled on the next scheduled run, or now with “Pull now”.")
}

type sourcePage struct {
	Source sourceOut
	Form   sourceForm
	Pulls  []store.Pull
	Pull   bool
}

func (s *Server) renderSource(w http.ResponseWriter, r *http.Request, status int, src store.Source, form sourceForm) {
	ctx := r.Context()
	if err := s.fillSourceForm(ctx, &form); err != nil {
		s.fail(w, r, err)
		return
	}
	all, err := s.db.RecentPulls(ctx, 200)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := sourcePage{Source: sourceView(src), Form: form, Pull: s.deps.Puller != nil}
	for _, pl := range all {
		if pl.Source == src.Name && len(p.Pulls) < 10 {
			p.Pulls = append(p.Pulls, pl)
		}
	}
	s.adminRender(w, r, status, "admin_source", "sources", "Source: "+src.Name, p)
}

func (s *Server) adminSource(w http.ResponseWriter, r *http.Request) {
	src, err := s.db.SourceByName(r.Context(), r.PathValue("name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.renderSource(w, r, http.StatusOK, src, sourceForm{Editing: src.Name, Name: src.Name, URL: src.URL,
		Department: src.DepartmentSlug, Format: src.Format, Enabled: src.Enabled})
}

func (s *Server) adminUpdateSource(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("name")
	old, err := s.db.SourceByName(ctx, name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	in := sourceInputFrom(r)
	in.Name = name
	src, err := s.updateSource(ctx, name, in)
	if errs, ok := formErrors(err); ok {
		form := sourceFormFrom(in, name)
		form.Errors = errs
		s.renderSource(w, r, http.StatusBadRequest, old, form)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.done(w, r, "/admin/sources/"+src.Name+"/edit", "Source “"+src.Name+"” saved.")
}

func (s *Server) adminEnableSource(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if err := s.db.SetSourceEnabled(r.Context(), name, enabled); err != nil {
			s.fail(w, r, err)
			return
		}
		msg := "Source “" + name + "” disabled: it is not pulled until enabled again."
		if enabled {
			msg = "Source “" + name + "” enabled."
		}
		s.done(w, r, "/admin/sources/"+name+"/edit", msg)
	}
}

func (s *Server) adminPullSource(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	src, err := s.pullNow(r.Context(), name)
	var he *httpError
	switch {
	case errors.As(err, &he) && he.status == http.StatusBadGateway:
		s.logFailure(r, he.status, err)
		s.done(w, r, "/admin/sources/"+name+"/edit", he.msg)
	case err != nil:
		s.fail(w, r, err)
	default:
		s.done(w, r, "/admin/sources/"+name+"/edit", "Pulled “"+src.Name+"”: "+src.LastStatus+".")
	}
}

// ---- departments ----

type departmentForm struct {
	Editing string
	Slug    string
	Name    string
	URL     string
	Errors  map[string]string
}

type departmentsPage struct {
	Departments []store.Department
	Form        departmentForm
}

func (s *Server) renderDepartments(w http.ResponseWriter, r *http.Request, status int, form departmentForm) {
	ds, err := s.db.Departments(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.adminRender(w, r, status, "admin_departments", "departments", "Departments", departmentsPage{Departments: ds, Form: form})
}

func (s *Server) adminDepartments(w http.ResponseWriter, r *http.Request) {
	s.renderDepartments(w, r, http.StatusOK, departmentForm{})
}

func departmentInputFrom(r *http.Request) departmentInput {
	f := r.PostForm
	return departmentInput{Slug: strings.TrimSpace(f.Get("slug")), Name: f.Get("name"), URL: f.Get("url")}
}

func (s *Server) adminCreateDepartment(w http.ResponseWriter, r *http.Request) {
	in := departmentInputFrom(r)
	d, err := s.createDepartment(r.Context(), in)
	if errs, ok := formErrors(err); ok {
		s.renderDepartments(w, r, http.StatusBadRequest, departmentForm{Slug: in.Slug, Name: in.Name, URL: in.URL, Errors: errs})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.done(w, r, "/admin/departments", "Department “"+d.Name+"” added.")
}

func (s *Server) adminDepartment(w http.ResponseWriter, r *http.Request) {
	d, err := s.db.DepartmentBySlug(r.Context(), r.PathValue("slug"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.adminRender(w, r, http.StatusOK, "admin_department", "departments", "Department: "+d.Name,
		departmentForm{Editing: d.Slug, Slug: d.Slug, Name: d.Name, URL: d.URL})
}

func (s *Server) adminUpdateDepartment(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	in := departmentInputFrom(r)
	in.Slug = slug
	d, err := s.updateDepartment(r.Context(), slug, in)
	if errs, ok := formErrors(err); ok {
		s.adminRender(w, r, http.StatusBadRequest, "admin_department", "departments", "Department: "+slug,
			departmentForm{Editing: slug, Slug: slug, Name: in.Name, URL: in.URL, Errors: errs})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.done(w, r, "/admin/departments", "Department “"+d.Name+"” saved.")
}

// ---- subscribers ----

type subscribersPage struct {
	Address  string
	Error    string
	NotFound bool
	Info     *SubscriberInfo
}

func (s *Server) adminSubscribers(w http.ResponseWriter, r *http.Request) {
	p := subscribersPage{}
	status := http.StatusOK
	if r.URL.Query().Has("address") {
		p.Address = r.URL.Query().Get("address")
		addr, err := queryAddress(r)
		if errs, ok := formErrors(err); ok {
			p.Error, status = errs["address"], http.StatusBadRequest
		} else {
			p.Address = addr
			info, err := s.deps.Subscribers.LookupSubscriber(r.Context(), addr)
			switch {
			case errors.Is(err, store.ErrNotFound):
				p.NotFound = true
			case err != nil:
				s.fail(w, r, err)
				return
			default:
				p.Info = &info
			}
		}
	}
	s.adminRender(w, r, status, "admin_subscribers", "subscribers", "Subscribers", p)
}

func (s *Server) adminExportSubscriber(w http.ResponseWriter, r *http.Request) {
	addr, err := queryAddress(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := s.export(r.Context(), addr)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="subscriber-export.json"`)
	w.Write(body)
}

// postedAddress reads and checks the form's address.
func postedAddress(r *http.Request) (string, error) {
	fe := fieldErrors{}
	a := checkAddress(fe, "address", r.PostForm.Get("address"))
	return a, fe.err()
}

func (s *Server) adminEraseSubscriber(w http.ResponseWriter, r *http.Request) {
	addr, err := postedAddress(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if r.PostForm.Get("confirm") != "yes" {
		s.done(w, r, "/admin/subscribers?address="+url.QueryEscape(addr), "Nothing was erased: tick the box to confirm.")
		return
	}
	if err := s.deps.Subscribers.EraseSubscriber(r.Context(), addr); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "subscriber erased by an admin")
	s.done(w, r, "/admin/subscribers", "The subscriber and everything stored about them were erased.")
}

func (s *Server) adminLiftSuppression(w http.ResponseWriter, r *http.Request) {
	addr, err := postedAddress(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.deps.Subscribers.LiftSuppression(r.Context(), addr); err != nil {
		s.fail(w, r, err)
		return
	}
	s.done(w, r, "/admin/subscribers?address="+url.QueryEscape(addr), "Suppression lifted: Herald will mail this address again.")
}

// ---- outbox ----

type outboxPage struct {
	State  outboxOut
	Failed []store.OutboxMessage
}

func (s *Server) adminOutbox(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st, err := s.outboxState(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	failed, err := s.deps.Outbox.FailedMessages(ctx, 50)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.adminRender(w, r, http.StatusOK, "admin_outbox", "outbox", "Outbox", outboxPage{State: st, Failed: failed})
}

func (s *Server) adminRetryMessage(w http.ResponseWriter, r *http.Request) {
	id, err := messageID(r)
	if err == nil {
		err = s.retry(r.Context(), id)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.done(w, r, "/admin/outbox", "The message is queued to be sent again.")
}
