package web

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"herald/alerts"
	"herald/alerts/delivery"
	"herald/store"
	"herald/templates"
	"herald/web/admin"
)

// Emails renders the emails Herald sends, as they would go, for previews
// in the console and the API, and sends tests of them (alerts.Service is
// one). Its errors: alerts.ErrNoSuchEmail, alerts.FieldErrors ("target",
// "frequency", "email"), store.ErrNotFound (no such release),
// alerts.ErrTooManyTests.
type Emails interface {
	PreviewEmail(ctx context.Context, req alerts.PreviewRequest) (store.OutboxMessage, error)
	SendTestEmail(ctx context.Context, req alerts.PreviewRequest, to string) error
}

// MailHeaders gives the header fields a message would be sent with
// (*delivery.Deliverer is one).
type MailHeaders interface {
	Headers(m store.OutboxMessage) ([]delivery.Header, error)
}

// emailPreview is an email as a preview shows it: the body of the API's
// answer, and the heart of the console's page.
type emailPreview struct {
	Kind    string            `json:"kind"`
	Subject string            `json:"subject"`
	Headers []delivery.Header `json:"headers"`
	Text    string            `json:"text"`
	HTML    string            `json:"html"`
}

// previewFramePolicy is the security policy of an email's HTML shown in
// the console: in a sandboxed frame of the console only, with the inline
// styles emails need and nothing that runs, loads or submits.
const previewFramePolicy = "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; sandbox; " +
	"frame-ancestors 'self'; base-uri 'none'; form-action 'none'"

// previewRequest reads which email to render and with what from a query
// or a form: kind from the path; release (a number), target
// ("topic:SLUG" or "department:SLUG", or topic and department apart) and
// frequency.
func previewRequest(r *http.Request, v url.Values) (alerts.PreviewRequest, error) {
	req := alerts.PreviewRequest{Kind: r.PathValue("kind"), Topic: v.Get("topic"), Department: v.Get("department"),
		Frequency: v.Get("frequency")}
	if kind, slug, ok := strings.Cut(v.Get("target"), ":"); ok {
		switch kind {
		case "topic":
			req.Topic = slug
		case "department":
			req.Department = slug
		}
	}
	if raw := v.Get("release"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id < 1 {
			return req, admin.FieldErrors{"release": "must be a release's number"}
		}
		req.Release = id
	}
	return req, nil
}

// previewQuery is req as a query string, for the page's links and frame.
func previewQuery(req alerts.PreviewRequest) string {
	q := url.Values{}
	if req.Release != 0 {
		q.Set("release", strconv.FormatInt(req.Release, 10))
	}
	switch {
	case req.Topic != "":
		q.Set("target", "topic:"+req.Topic)
	case req.Department != "":
		q.Set("target", "department:"+req.Department)
	}
	if req.Frequency != "" {
		q.Set("frequency", req.Frequency)
	}
	return q.Encode()
}

// emailProblem turns what the alerts side said about a preview or a test
// into the answer's error: field problems in words, an unknown kind 404,
// too many tests 429.
func (s *Server) emailProblem(kind string, err error) error {
	var problems alerts.FieldErrors
	switch {
	case errors.As(err, &problems):
		fe := admin.FieldErrors{}
		for _, p := range problems {
			field := p.Field
			if field == "email" {
				field = "to"
			}
			fe.Add(field, "%s", s.say(p.Message, p.Data...))
		}
		return fe
	case errors.Is(err, alerts.ErrNoSuchEmail):
		return errStatus(http.StatusNotFound, "console.error.no_email_kind", "Kind", kind)
	case errors.Is(err, alerts.ErrTooManyTests):
		return errStatus(http.StatusTooManyRequests, "console.error.too_many_tests", "Limit", alerts.TestsPerHour)
	}
	return err
}

// preview renders req, with its headers when the delivery side is here.
func (s *Server) previewEmail(ctx context.Context, req alerts.PreviewRequest) (emailPreview, error) {
	m, err := s.deps.Emails.PreviewEmail(ctx, req)
	if err != nil {
		return emailPreview{}, s.emailProblem(req.Kind, err)
	}
	p := emailPreview{Kind: req.Kind, Subject: m.Subject, Text: m.Text, HTML: m.HTML, Headers: []delivery.Header{}}
	if s.deps.MailHeaders != nil {
		if p.Headers, err = s.deps.MailHeaders.Headers(m); err != nil {
			return emailPreview{}, err
		}
	}
	return p, nil
}

// auditTest logs that an admin sent a test email: the kind, never the
// address.
func (s *Server) auditTest(r *http.Request, kind string) {
	s.log.InfoContext(r.Context(), "admin sent a test email", slog.String("kind", kind))
}

// ---- API ----

func (s *Server) apiEmails(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, alerts.EmailKinds())
}

func (s *Server) apiEmailPreview(w http.ResponseWriter, r *http.Request) {
	req, err := previewRequest(r, r.URL.Query())
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	p, err := s.previewEmail(r.Context(), req)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// testInput is the body of POST /api/v1/emails/{kind}/test.
type testInput struct {
	To         string `json:"to"`
	Release    int64  `json:"release"`
	Topic      string `json:"topic"`
	Department string `json:"department"`
	Frequency  string `json:"frequency"`
}

func (s *Server) apiEmailTest(w http.ResponseWriter, r *http.Request) {
	var in testInput
	if err := decodeJSON(r, &in); err != nil {
		s.apiFail(w, r, err)
		return
	}
	kind := r.PathValue("kind")
	req := alerts.PreviewRequest{Kind: kind, Release: in.Release, Topic: in.Topic, Department: in.Department, Frequency: in.Frequency}
	if err := s.deps.Emails.SendTestEmail(r.Context(), req, in.To); err != nil {
		s.apiFail(w, r, s.emailProblem(kind, err))
		return
	}
	s.auditTest(r, kind)
	writeJSON(w, http.StatusAccepted, map[string]string{"kind": kind, "status": "queued"})
}

// ---- console ----

// emailsPage is the data of admin_emails.html and admin_email.html: the
// kinds, and one of them rendered with the choices that made it.
type emailsPage struct {
	Kinds []string
	Kind  string
	// Query holds the choices, for the frame and the links.
	Query       string
	Preview     emailPreview
	FrameURL    string
	Releases    []option
	Targets     []option
	Frequencies []option
	To          string
	Errors      map[string]string
	Limit       int
}

func (s *Server) adminEmails(w http.ResponseWriter, r *http.Request) {
	s.adminRender(w, r, http.StatusOK, "admin_emails", "emails", s.say("console.title.emails"), emailsPage{Kinds: alerts.EmailKinds()})
}

func (s *Server) adminEmail(w http.ResponseWriter, r *http.Request) {
	req, err := previewRequest(r, r.URL.Query())
	if err != nil {
		s.renderEmail(w, r, http.StatusBadRequest, alerts.PreviewRequest{Kind: r.PathValue("kind")}, "", err)
		return
	}
	s.renderEmail(w, r, http.StatusOK, req, "", nil)
}

// renderEmail shows the preview page of req; problem (about a field of
// the choices or of the test form) is shown beside it.
func (s *Server) renderEmail(w http.ResponseWriter, r *http.Request, status int, req alerts.PreviewRequest, to string, problem error) {
	ctx := r.Context()
	if !slices.Contains(alerts.EmailKinds(), req.Kind) {
		s.fail(w, r, s.emailProblem(req.Kind, alerts.ErrNoSuchEmail))
		return
	}
	p := emailsPage{Kinds: alerts.EmailKinds(), Kind: req.Kind, To: to, Limit: alerts.TestsPerHour, Errors: map[string]string{}}
	if errs, ok := s.formErrors(problem); ok {
		p.Errors = errs
	} else if problem != nil {
		p.Errors["to"] = s.publicMessage(statusOf(problem), problem)
	}
	preview, err := s.previewEmail(ctx, req)
	if errs, ok := s.formErrors(err); ok {
		for field, msg := range errs {
			if _, had := p.Errors[field]; !had {
				p.Errors[field] = msg
			}
		}
		status = max(status, http.StatusBadRequest)
	} else if errors.Is(err, store.ErrNotFound) {
		p.Errors["release"], status = s.publicMessage(http.StatusNotFound, err), max(status, http.StatusNotFound)
	} else if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Preview = preview
	p.Query = previewQuery(req)
	p.FrameURL = "/admin/emails/" + req.Kind + "/html"
	if p.Query != "" {
		p.FrameURL += "?" + p.Query
	}
	if err := s.emailChoices(ctx, req, &p); err != nil {
		s.fail(w, r, err)
		return
	}
	s.adminRender(w, r, status, "admin_email", "emails", s.say("console.title.email", "Kind", req.Kind), p)
}

// emailChoices fills the page's choices: the latest releases, every topic
// and department, the frequencies.
func (s *Server) emailChoices(ctx context.Context, req alerts.PreviewRequest, p *emailsPage) error {
	rels, err := s.db.Releases(ctx, store.ReleaseFilter{Limit: 20})
	if err != nil {
		return err
	}
	for _, rel := range rels {
		p.Releases = append(p.Releases, option{Value: strconv.FormatInt(rel.ID, 10), Label: rel.Title, Selected: rel.ID == req.Release})
	}
	topics, err := s.db.Topics(ctx, false)
	if err != nil {
		return err
	}
	for _, t := range topics {
		p.Targets = append(p.Targets, option{Value: "topic:" + t.Slug, Label: t.Title + " (" + s.kindLabel("topic") + ")", Selected: t.Slug == req.Topic})
	}
	depts, err := s.db.Departments(ctx)
	if err != nil {
		return err
	}
	for _, d := range depts {
		p.Targets = append(p.Targets, option{Value: "department:" + d.Slug, Label: d.Name + " (" + s.kindLabel("department") + ")", Selected: d.Slug == req.Department})
	}
	for _, f := range store.Frequencies() {
		p.Frequencies = append(p.Frequencies, option{Value: f, Label: s.frequencyPhrase(f), Selected: f == req.Frequency})
	}
	return nil
}

// adminEmailHTML answers the HTML part of a preview for the console's
// sandboxed frame, under a policy of its own (previewFramePolicy): an
// email's HTML runs nothing there whatever it holds. A logo that travels
// in the emails is shown from the page itself.
func (s *Server) adminEmailHTML(w http.ResponseWriter, r *http.Request) {
	req, err := previewRequest(r, r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.previewEmail(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	html := p.HTML
	if l := s.cfg.Logo; l != nil {
		html = strings.ReplaceAll(html, "cid:"+templates.LogoCID, "data:"+l.Type+";base64,"+base64.StdEncoding.EncodeToString(l.Data))
	}
	h := w.Header()
	h.Set("Content-Security-Policy", previewFramePolicy)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.Write([]byte(html))
}

func (s *Server) adminEmailTest(w http.ResponseWriter, r *http.Request) {
	req, err := previewRequest(r, r.PostForm)
	to := strings.TrimSpace(r.PostForm.Get("to"))
	if err != nil {
		s.renderEmail(w, r, http.StatusBadRequest, req, cleanLine(to, 300), err)
		return
	}
	if err := s.deps.Emails.SendTestEmail(r.Context(), req, to); err != nil {
		err = s.emailProblem(req.Kind, err)
		status := statusOf(err)
		if status >= 500 {
			s.fail(w, r, err)
			return
		}
		if status == http.StatusBadRequest {
			status = http.StatusUnprocessableEntity
		}
		s.renderEmail(w, r, status, req, cleanLine(to, 300), err)
		return
	}
	s.auditTest(r, req.Kind)
	to = "/admin/emails/" + req.Kind
	if q := previewQuery(req); q != "" {
		to += "?" + q
	}
	s.done(w, r, to, s.say("console.done.test_sent", "Kind", req.Kind))
}
