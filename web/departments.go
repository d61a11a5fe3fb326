package web

import (
	"net/http"
	"strings"

	"herald/store"
	"herald/web/admin"
)

// Departments in the admin API and the console.

// ---- API ----

func (s *Server) apiDepartments(w http.ResponseWriter, r *http.Request) {
	ds, err := s.db.Departments(r.Context())
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	if ds == nil {
		ds = []store.Department{}
	}
	writeJSON(w, http.StatusOK, ds)
}

func (s *Server) apiDepartment(w http.ResponseWriter, r *http.Request) {
	d, err := s.db.DepartmentBySlug(r.Context(), r.PathValue("slug"))
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) apiCreateDepartment(w http.ResponseWriter, r *http.Request) {
	apiJSON(s, w, r, func(in admin.DepartmentInput) (any, string, error) {
		d, err := s.admin.CreateDepartment(r.Context(), in)
		if err != nil {
			return nil, "", err
		}
		return d, "/api/v1/departments/" + d.Slug, nil
	})
}

func (s *Server) apiUpdateDepartment(w http.ResponseWriter, r *http.Request) {
	apiJSON(s, w, r, func(in admin.DepartmentInput) (any, string, error) {
		d, err := s.admin.UpdateDepartment(r.Context(), r.PathValue("slug"), in)
		if err != nil {
			return nil, "", err
		}
		return d, "", nil
	})
}

// ---- console ----

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
	s.adminRender(w, r, status, "admin_departments", "departments", s.say("console.title.departments"), departmentsPage{Departments: ds, Form: form})
}

func (s *Server) adminDepartments(w http.ResponseWriter, r *http.Request) {
	s.renderDepartments(w, r, http.StatusOK, departmentForm{})
}

func departmentInputFrom(r *http.Request) admin.DepartmentInput {
	f := r.PostForm
	return admin.DepartmentInput{Slug: strings.TrimSpace(f.Get("slug")), Name: f.Get("name"), URL: f.Get("url")}
}

func (s *Server) adminCreateDepartment(w http.ResponseWriter, r *http.Request) {
	in := departmentInputFrom(r)
	d, err := s.admin.CreateDepartment(r.Context(), in)
	if errs, ok := s.formErrors(err); ok {
		s.renderDepartments(w, r, http.StatusBadRequest, departmentForm{Slug: in.Slug, Name: in.Name, URL: in.URL, Errors: errs})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.done(w, r, "/admin/departments", s.say("console.done.department_added", "Name", d.Name))
}

func (s *Server) adminDepartment(w http.ResponseWriter, r *http.Request) {
	d, err := s.db.DepartmentBySlug(r.Context(), r.PathValue("slug"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.adminRender(w, r, http.StatusOK, "admin_department", "departments", s.say("console.title.department", "Name", d.Name),
		departmentForm{Editing: d.Slug, Slug: d.Slug, Name: d.Name, URL: d.URL})
}

func (s *Server) adminUpdateDepartment(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	in := departmentInputFrom(r)
	in.Slug = slug
	d, err := s.admin.UpdateDepartment(r.Context(), slug, in)
	if errs, ok := s.formErrors(err); ok {
		s.adminRender(w, r, http.StatusBadRequest, "admin_department", "departments", s.say("console.title.department", "Name", slug),
			departmentForm{Editing: slug, Slug: slug, Name: in.Name, URL: in.URL, Errors: errs})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.done(w, r, "/admin/departments", s.say("console.done.department_saved", "Name", d.Name))
}
