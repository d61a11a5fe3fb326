package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"herald/store"
	"herald/web/admin"
)

// The admin console: the API's abilities as server-rendered forms. Every
// form posts back with the session's CSRF token (checked in
// requireSession), re-renders with problems beside their fields, and
// redirects after success so a reload does not post twice.

func (s *Server) adminRender(w http.ResponseWriter, r *http.Request, status int, name, section, title string, data any) {
	sess := sessionFrom(r.Context())
	v := &view{Title: title, NoIndex: true, Admin: true, Section: section, Data: data,
		Nav: adminNav{Subscribers: s.deps.Subscribers != nil, Outbox: s.deps.Outbox != nil, Emails: s.deps.Emails != nil}}
	if sess != nil {
		v.CSRF = sess.csrf
		flash, err := s.sessions.takeFlash(r.Context(), sess)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		v.Flash = flash
	}
	s.render(w, r, status, name, v)
}

// done finishes a successful form post: a message for the next page and a
// redirect to it.
func (s *Server) done(w http.ResponseWriter, r *http.Request, to, flash string) {
	if sess := sessionFrom(r.Context()); sess != nil && flash != "" {
		// The change is made; a message that could not be kept is only
		// missing from the next page.
		if err := s.sessions.setFlash(r.Context(), sess, flash); err != nil {
			s.log.ErrorContext(r.Context(), "keeping the console message", slog.Any("error", err))
		}
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// formError turns a failure to read a form into the answer for it.
func formError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return errStatus(http.StatusBadRequest, "console.error.form")
}

// formErrors puts the API's field paths ("match.keywords[2]") on the form's
// fields ("keywords") as sentences, keeping the first problem of each. A
// field is named by the message "console.field.NAME", or as it is.
func (s *Server) formErrors(err error) (map[string]string, bool) {
	var fe admin.FieldErrors
	if !errors.As(err, &fe) {
		return nil, false
	}
	out := map[string]string{}
	for _, k := range fe.Fields() {
		field, idx, isItem := strings.Cut(strings.TrimPrefix(k, "match."), "[")
		label := field
		if s.msgs.Has("console.field." + field) {
			label = s.say("console.field." + field)
		}
		msg := s.say("console.field_problem", "Label", label, "Problem", fe[k])
		if isItem && field != "departments" {
			n, _ := strconv.Atoi(strings.TrimSuffix(idx, "]"))
			msg = s.say("console.field_problem_line", "Label", label, "Line", n+1, "Problem", fe[k])
		}
		if _, ok := out[field]; !ok {
			out[field] = msg
		}
	}
	return out, true
}

type option struct {
	Value, Label string
	Selected     bool
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
		sess, err := s.sessions.get(r.Context(), c.Value)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if sess != nil {
			http.Redirect(w, r, "/admin/", http.StatusSeeOther)
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, http.StatusOK, "admin_login", &view{Title: s.say("console.title.login"), NoIndex: true, CSRF: s.csrf.token(w, r),
		Data: loginPage{Next: safeNext(r.URL.Query().Get("next"))}})
}

func (s *Server) adminLogin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	allowed, err := s.logins.allow(r.Context(), clientKey(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !allowed {
		w.Header().Set("Retry-After", "60")
		s.renderError(w, r, http.StatusTooManyRequests, s.say("console.login.too_many"))
		return
	}
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, formError(err))
		return
	}
	if !s.csrf.valid(r) {
		s.renderError(w, r, http.StatusForbidden, s.say("console.login.expired"))
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if !s.tokenOK(strings.TrimSpace(r.PostForm.Get("token"))) {
		s.log.WarnContext(r.Context(), "admin sign-in refused", slog.String("reason", "wrong token"))
		s.render(w, r, http.StatusForbidden, "admin_login", &view{Title: s.say("console.title.login"), NoIndex: true, CSRF: s.csrf.token(w, r),
			Data: loginPage{Next: next, Error: s.say("console.login.wrong_token")}})
		return
	}
	sess, err := s.sessions.create(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.setSessionCookie(w, sess.id, int(s.sessions.ttl/time.Second))
	s.log.InfoContext(r.Context(), "admin signed in")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) adminLogout(w http.ResponseWriter, r *http.Request) {
	if sess := sessionFrom(r.Context()); sess != nil {
		if err := s.sessions.delete(r.Context(), sess); err != nil {
			s.fail(w, r, err)
			return
		}
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
	p.Charts = append(p.Charts, newChart(s.say("console.chart.releases"), stats.ReleasesPerDay))
	if s.deps.SubscriberStats != nil {
		days, err := s.deps.SubscriberStats.SubscribersPerDay(ctx, dashboardDays, s.cfg.Location)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p.Subscribers = true
		p.Charts = append(p.Charts, newChart(s.say("console.chart.subscribers"), days))
	}
	p.Charts = append(p.Charts, newChart(s.say("console.chart.emails"), stats.EmailsSentPerDay))
	s.adminRender(w, r, http.StatusOK, "admin_dashboard", "dashboard", s.say("console.title.dashboard"), p)
}
