package web

import (
	"bytes"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"herald/store"
	"herald/templates"
	"herald/templates/text"
)

// publicPages and adminPages are the page templates, each parsed with
// pages/layout.html and its side's partials (partials_public.html or
// partials_admin.html). The subscription pages are public ones.
var (
	publicPages = []string{"home", "listing", "release", "search", "error",
		"subscribe", "subscribe_sent", "confirm", "manage_request", "manage_sent", "manage", "unsubscribe", "unsubscribed"}
	adminPages = []string{"admin_login", "admin_dashboard", "admin_topics", "admin_topic", "admin_sources",
		"admin_source", "admin_departments", "admin_department", "admin_subscribers", "admin_suppressions", "admin_outbox", "admin_emails", "admin_email",
		"admin_searches", "admin_search"}
)

type pages struct {
	sets map[string]*template.Template
}

// parsePages parses every page, returning every problem found at once,
// each naming its file.
func parsePages(fsys fs.FS, funcs template.FuncMap) (*pages, error) {
	p := &pages{sets: map[string]*template.Template{}}
	var problems templates.Problems
	parse := func(name, partials string) {
		file := "pages/" + name + ".html"
		t, err := templates.ParseHTML(template.New(name).Funcs(funcs), fsys, "pages/layout.html", "pages/"+partials, file)
		if err != nil {
			problems.Add(err)
			return
		}
		problems.Add(templates.Require(t, fsys, "pages/layout.html", "layout"))
		problems.Add(templates.Require(t, fsys, file, "main"))
		p.sets[name] = t
	}
	for _, name := range publicPages {
		parse(name, "partials_public.html")
	}
	for _, name := range adminPages {
		parse(name, "partials_admin.html")
	}
	return p, problems.Err()
}

// view is what every page template gets; Data is the page's own.
type view struct {
	Site string
	// Brand is the organisation's name, logo, colour and footer lines.
	Brand templates.Brand
	// Icon is the configured site icon, "" for Herald's own.
	Icon  string
	Title string
	// Feeds are announced in the head for autodiscovery and linked on the page.
	Feeds []feedLink
	// Print asks for the printable version (print styles on screen too).
	Print bool
	// NoIndex keeps search engines off pages that are not content.
	NoIndex bool
	CSRF    string
	// Admin is true for a signed-in admin, who sees the console's navigation.
	Admin   bool
	Section string
	Flash   string
	// Nav says which optional sections the console has.
	Nav  adminNav
	Data any
}

type adminNav struct {
	Subscribers bool
	Outbox      bool
	Emails      bool
}

// feedLink is one feed of a page.
type feedLink struct {
	Title string
	Type  string
	Label string
	URL   string
}

// funcs are the helpers of page templates: templates.Funcs and the pages'
// own.
func (s *Server) funcs() template.FuncMap {
	loc := s.cfg.Location
	f := template.FuncMap(templates.Funcs())
	f["date"] = func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(loc).Format(s.say("format.page_date"))
	}
	f["datetime"] = func(t time.Time) string {
		if t.IsZero() {
			return s.say("console.ago.never")
		}
		return t.In(loc).Format(s.say("format.page_datetime"))
	}
	f["iso"] = func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	f["ago"] = func(t time.Time) string { return s.ago(s.now(), t) }
	f["text"] = func(html string, max int) string { return text.Excerpt(text.Plain(html), max) }
	return f
}

// now is the clock of "ago": the store's (the wall clock while templates
// are checked without one).
func (s *Server) now() time.Time {
	if s.db == nil {
		return time.Now()
	}
	return s.db.Now()
}

// say returns one of the messages' words (templates/messages).
func (s *Server) say(name string, kv ...any) string { return s.msgs.Say(name, kv...) }

// render writes page name with status, or the error page when the template
// fails (rendering goes to a buffer first, so nothing half-written escapes).
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	v.Site = s.cfg.SiteName
	v.Brand = s.cfg.Brand
	v.Icon = s.cfg.Icon
	if len(v.Feeds) == 0 && !strings.HasPrefix(name, "admin_") {
		// A public page with no feed of its own announces the site's.
		v.Feeds = s.feedLinks(s.say("feed.all"), "/feeds/all", "")
	}
	var buf bytes.Buffer
	if err := s.pages.sets[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		s.log.ErrorContext(r.Context(), "render page", slog.String("page", name), slog.Any("error", err))
		if name != "error" {
			s.renderError(w, r, http.StatusInternalServerError, "")
			return
		}
		http.Error(w, "Internal server error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-cache")
	}
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorPage is the data of error.html, the one error page of the site.
type errorPage struct {
	Status  int
	Heading string
	Message string
	// LinkURL, when set, offers a way on, such as where a fresh link
	// comes from.
	LinkURL   string
	LinkLabel string
}

// renderError shows the error page; an empty message gives the status's.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if msg == "" {
		msg = s.publicMessage(status, nil)
	}
	s.showError(w, r, errorPage{Status: status, Heading: s.errorHeading(status), Message: msg})
}

// errorHeading is the error page's heading for status (messages
// "error.heading.*").
func (s *Server) errorHeading(status int) string {
	name := "error.heading." + strconv.Itoa(status)
	switch {
	case s.msgs.Has(name):
	case status >= 500:
		name = "error.heading.5xx"
	default:
		name = "error.heading.other"
	}
	return s.say(name, "Status", status, "StatusText", http.StatusText(status))
}

// showError renders the error page with p. It is never stored by a
// cache; a stricter Cache-Control set before (private, no-store on the
// subscription pages) stays.
func (s *Server) showError(w http.ResponseWriter, r *http.Request, p errorPage) {
	if h := w.Header(); !strings.Contains(h.Get("Cache-Control"), "no-store") {
		h.Set("Cache-Control", "no-store")
	}
	s.render(w, r, p.Status, "error", &view{Title: p.Heading, NoIndex: true, Data: p})
}

// unmatched answers a request no route took: 405 with an Allow header when
// the path has routes for other methods, else 404.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		if m == r.Method {
			continue
		}
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		s.notFound(w, r)
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	err := errStatus(http.StatusMethodNotAllowed, "error.method", "Method", r.Method, "Allow", allow)
	if isAPI(r) {
		s.apiFail(w, r, err)
		return
	}
	s.fail(w, r, err)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if isAPI(r) {
		s.apiFail(w, r, store.ErrNotFound)
		return
	}
	s.renderError(w, r, http.StatusNotFound, s.say("error.not_found"))
}

// static serves templates' static/ directory, without directory listings.
func (s *Server) static() http.Handler {
	sub, err := fs.Sub(s.cfg.TemplatesFS, "static")
	if err != nil {
		return http.HandlerFunc(s.notFound)
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			s.notFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// favicon answers /favicon.ico, which browsers and feed readers ask for
// whatever the pages say: Herald's icon, or a redirect to the configured
// one. Either may be cached for a day.
func (s *Server) favicon(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Icon != "" {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		http.Redirect(w, r, s.cfg.Icon, http.StatusMovedPermanently)
		return
	}
	b, err := fs.ReadFile(s.cfg.TemplatesFS, "static/favicon.ico")
	if err != nil {
		s.notFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=86400")
	http.ServeContent(w, r, "favicon.ico", time.Time{}, bytes.NewReader(b))
}

// ago says how long before now t was, roughly, for the dashboard
// (messages "console.ago.*").
func (s *Server) ago(now, t time.Time) string {
	if t.IsZero() {
		return s.say("console.ago.never")
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return s.say("console.ago.just_now")
	case d < time.Minute:
		return s.say("console.ago.seconds")
	case d < time.Hour:
		return s.say("console.ago.minutes", "N", int(d/time.Minute))
	case d < 48*time.Hour:
		return s.say("console.ago.hours", "N", int(d/time.Hour))
	}
	return s.say("console.ago.days", "N", int(d/(24*time.Hour)))
}
