package web

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	texttemplate "text/template"
	"time"

	"herald/alerts"
	"herald/store"
	"herald/templates/text"
)

// publicPages and adminPages are the page templates, each parsed with
// pages/layout.html and its side's partials (partials_public.html or
// partials_admin.html). The subscription pages are public ones.
var (
	publicPages = []string{"home", "listing", "release", "search", "error",
		"subscribe", "subscribe_sent", "confirm", "manage_request", "manage_sent", "manage", "unsubscribe", "unsubscribed"}
	adminPages = []string{"admin_login", "admin_dashboard", "admin_topics", "admin_topic", "admin_sources",
		"admin_source", "admin_departments", "admin_department", "admin_subscribers", "admin_suppressions", "admin_outbox",
		"admin_searches", "admin_search"}
)

type pages struct {
	sets map[string]*template.Template
	// messages holds the words pages say outside their templates
	// (pages/messages.txt): problems the alerts side reports by code
	// (alerts.FieldError.Code), and the console's notices.
	messages *texttemplate.Template
}

func parsePages(fsys fs.FS, funcs template.FuncMap) (*pages, error) {
	p := &pages{sets: map[string]*template.Template{}}
	parse := func(name, partials string) error {
		t, err := template.New(name).Funcs(funcs).ParseFS(fsys, "pages/layout.html", "pages/"+partials, "pages/"+name+".html")
		if err != nil {
			return fmt.Errorf("web: page %s: %w", name, err)
		}
		p.sets[name] = t
		return nil
	}
	for _, name := range publicPages {
		if err := parse(name, "partials_public.html"); err != nil {
			return nil, err
		}
	}
	for _, name := range adminPages {
		if err := parse(name, "partials_admin.html"); err != nil {
			return nil, err
		}
	}
	var err error
	if p.messages, err = texttemplate.New("messages").Option("missingkey=error").ParseFS(fsys, "pages/messages.txt"); err != nil {
		return nil, fmt.Errorf("web: pages/messages.txt: %w", err)
	}
	return p, nil
}

// say returns message name of pages/messages.txt with data, as one line.
// A message that fails is said as its name, and logged.
func (s *Server) say(ctx context.Context, name string, data any) string {
	var b strings.Builder
	if err := s.pages.messages.ExecuteTemplate(&b, name, data); err != nil {
		s.log.ErrorContext(ctx, "render message", slog.String("message", name), slog.Any("error", err))
		return name
	}
	return text.Line(b.String())
}

// problem says the problem a visitor's request had: in the alerts side's
// words, or in those pages/messages.txt has for its code, about its value.
func (s *Server) problem(ctx context.Context, p alerts.FieldError) string {
	if p.Code == "" {
		return p.Message
	}
	return s.say(ctx, p.Code, map[string]string{"Value": p.Value})
}

// view is what every page template gets; Data is the page's own.
type view struct {
	Site string
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
}

// feedLink is one feed of a page.
type feedLink struct {
	Title string
	Type  string
	Label string
	URL   string
}

func (s *Server) funcs() template.FuncMap {
	loc := s.cfg.Location
	return template.FuncMap{
		"date": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.In(loc).Format("2 January 2006")
		},
		"datetime": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.In(loc).Format("2 January 2006 15:04")
		},
		"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"ago":  func(t time.Time) string { return ago(s.db.Now(), t) },
		"join": strings.Join,
		"text": func(html string, max int) string { return text.Excerpt(text.Plain(html), max) },
	}
}

// render writes page name with status, or the error page when the template
// fails (rendering goes to a buffer first, so nothing half-written escapes).
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	v.Site = s.cfg.SiteName
	v.Icon = s.cfg.Icon
	if len(v.Feeds) == 0 && !strings.HasPrefix(name, "admin_") {
		// A public page with no feed of its own announces the site's.
		v.Feeds = s.feedLinks("All news", "/feeds/all", "")
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
		msg = publicMessage(status, nil)
	}
	heading := map[int]string{
		http.StatusNotFound:              "Page not found",
		http.StatusBadRequest:            "There is a problem with the request",
		http.StatusForbidden:             "The form has expired",
		http.StatusRequestEntityTooLarge: "The request is too large",
		http.StatusTooManyRequests:       "Too many attempts",
	}[status]
	if heading == "" {
		if status >= 500 {
			heading = "Sorry, there is a problem with the service"
		} else {
			heading = http.StatusText(status)
		}
	}
	s.showError(w, r, errorPage{Status: status, Heading: heading, Message: msg})
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
	err := errStatus(http.StatusMethodNotAllowed, "%s is not allowed here; use %s.", r.Method, strings.Join(allow, " or "))
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
	s.renderError(w, r, http.StatusNotFound, "If you typed the address, check it is correct. If you followed a link, the page may have moved.")
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

// ago says how long before now t was, roughly, for the dashboard.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return "less than a minute ago"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	}
	return plural(int(d/(24*time.Hour)), "day") + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
