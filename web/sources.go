package web

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"herald/store"
	"herald/web/admin"
)

// Sources in the admin API and the console.

// sourceOut is a source with a one-word summary of its health.
type sourceOut struct {
	store.Source
	// Health is "ok", "failing", "never-pulled" or "disabled".
	Health string `json:"health"`
}

func health(src store.Source) string {
	switch {
	case !src.Enabled:
		return "disabled"
	case src.FailureCount > 0:
		return "failing"
	case src.LastPullAt.IsZero():
		return "never-pulled"
	}
	return "ok"
}

func sourceView(src store.Source) sourceOut { return sourceOut{Source: src, Health: health(src)} }

// pullNow pulls a source and returns its state afterwards. A failed fetch
// is the publisher's problem, answered 502 with the reason; the failure is
// also on the source's health.
func (s *Server) pullNow(ctx context.Context, name string) (store.Source, error) {
	if _, err := s.db.SourceByName(ctx, name); err != nil {
		return store.Source{}, err
	}
	if err := s.deps.Puller.PullSource(ctx, name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.Source{}, err
		}
		return store.Source{}, &httpError{status: http.StatusBadGateway, msg: "console.error.pull_failed", data: []any{"Name", name, "Error", err.Error()}, err: err}
	}
	return s.db.SourceByName(ctx, name)
}

// ---- API ----

func (s *Server) apiSources(w http.ResponseWriter, r *http.Request) {
	srcs, err := s.db.Sources(r.Context())
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	out := make([]sourceOut, len(srcs))
	for i, src := range srcs {
		out[i] = sourceView(src)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiSource(w http.ResponseWriter, r *http.Request) {
	src, err := s.db.SourceByName(r.Context(), r.PathValue("name"))
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sourceView(src))
}

func (s *Server) apiCreateSource(w http.ResponseWriter, r *http.Request) {
	apiJSON(s, w, r, func(in admin.SourceInput) (any, string, error) {
		src, err := s.admin.CreateSource(r.Context(), in)
		if err != nil {
			return nil, "", err
		}
		return sourceView(src), "/api/v1/sources/" + src.Name, nil
	})
}

func (s *Server) apiUpdateSource(w http.ResponseWriter, r *http.Request) {
	apiJSON(s, w, r, func(in admin.SourceInput) (any, string, error) {
		src, err := s.admin.UpdateSource(r.Context(), r.PathValue("name"), in)
		if err != nil {
			return nil, "", err
		}
		return sourceView(src), "", nil
	})
}

func (s *Server) apiEnableSource(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		src, err := s.admin.SetSourceEnabled(r.Context(), r.PathValue("name"), enabled)
		if err != nil {
			s.apiFail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, sourceView(src))
	}
}

func (s *Server) apiPullSource(w http.ResponseWriter, r *http.Request) {
	src, err := s.pullNow(r.Context(), r.PathValue("name"))
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sourceView(src))
}

// ---- console ----

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
	for _, fm := range store.Formats() {
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
	s.adminRender(w, r, status, "admin_sources", "sources", s.say("console.title.sources"), p)
}

func (s *Server) adminSources(w http.ResponseWriter, r *http.Request) {
	s.renderSources(w, r, http.StatusOK, sourceForm{Format: store.FormatAuto, Enabled: true})
}

func sourceInputFrom(r *http.Request) admin.SourceInput {
	f := r.PostForm
	enabled := f.Get("enabled") == "on"
	return admin.SourceInput{Name: strings.TrimSpace(f.Get("name")), URL: f.Get("url"), Department: f.Get("department"),
		Format: f.Get("format"), Enabled: &enabled}
}

// sourceFormFrom fills the form with a source's fields, or with what was
// posted.
func sourceFormFrom(in admin.SourceInput, editing string) sourceForm {
	return sourceForm{Editing: editing, Name: in.Name, URL: in.URL, Department: in.Department, Format: in.Format, Enabled: *in.Enabled}
}

func (s *Server) adminCreateSource(w http.ResponseWriter, r *http.Request) {
	in := sourceInputFrom(r)
	src, err := s.admin.CreateSource(r.Context(), in)
	if errs, ok := s.formErrors(err); ok {
		form := sourceFormFrom(in, "")
		form.Errors = errs
		s.renderSources(w, r, http.StatusBadRequest, form)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.done(w, r, "/admin/sources/"+src.Name+"/edit", s.say("console.done.source_added", "Name", src.Name))
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
	s.adminRender(w, r, status, "admin_source", "sources", s.say("console.title.source", "Name", src.Name), p)
}

func (s *Server) adminSource(w http.ResponseWriter, r *http.Request) {
	src, err := s.db.SourceByName(r.Context(), r.PathValue("name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.renderSource(w, r, http.StatusOK, src, sourceFormFrom(admin.SourceInputOf(src), src.Name))
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
	src, err := s.admin.UpdateSource(ctx, name, in)
	if errs, ok := s.formErrors(err); ok {
		form := sourceFormFrom(in, name)
		form.Errors = errs
		s.renderSource(w, r, http.StatusBadRequest, old, form)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.done(w, r, "/admin/sources/"+src.Name+"/edit", s.say("console.done.source_saved", "Name", src.Name))
}

func (s *Server) adminEnableSource(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if _, err := s.admin.SetSourceEnabled(r.Context(), name, enabled); err != nil {
			s.fail(w, r, err)
			return
		}
		msg := s.say("console.done.source_disabled", "Name", name)
		if enabled {
			msg = s.say("console.done.source_enabled", "Name", name)
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
		s.done(w, r, "/admin/sources/"+name+"/edit", s.publicMessage(he.status, he))
	case err != nil:
		s.fail(w, r, err)
	default:
		s.done(w, r, "/admin/sources/"+name+"/edit", s.say("console.done.source_pulled", "Name", src.Name, "Status", src.LastStatus))
	}
}
