package admin

import (
	"context"

	"herald/store"
)

// DepartmentInput defines a department: the API's JSON body, the console's
// form and the CLI's flags.
type DepartmentInput struct {
	// Slug names the department in URLs; it is fixed once the department
	// exists.
	Slug string `json:"slug"`
	Name string `json:"name"`
	// URL is the department's website, optional.
	URL string `json:"url"`
}

// DepartmentInputOf is d as an input, for a front end that changes some of
// its fields and saves the rest as they are.
func DepartmentInputOf(d store.Department) DepartmentInput {
	return DepartmentInput{Slug: d.Slug, Name: d.Name, URL: d.URL}
}

// checkDepartment cleans and checks a department; the slug is checked only
// when the department is new.
func checkDepartment(in DepartmentInput, isNew bool) (store.Department, error) {
	fe := FieldErrors{}
	if isNew {
		checkSlug(fe, "slug", in.Slug)
	}
	d := store.Department{
		Slug: in.Slug,
		Name: checkLine(fe, "name", in.Name, true, 200),
		URL:  checkHTTPURL(fe, "url", in.URL, false),
	}
	return d, fe.err()
}

// CheckDepartment cleans and checks the definition of a new department:
// the check a config file's departments get before Herald starts.
func CheckDepartment(in DepartmentInput) (store.Department, error) {
	return checkDepartment(in, true)
}

// CreateDepartment adds a department.
func (s *Service) CreateDepartment(ctx context.Context, in DepartmentInput) (store.Department, error) {
	d, err := checkDepartment(in, true)
	if err != nil {
		return store.Department{}, err
	}
	d, err = s.db.CreateDepartment(ctx, d)
	if store.IsConflict(err) {
		return store.Department{}, FieldErrors{"slug": "is already taken by another department"}
	}
	return d, err
}

// UpdateDepartment changes the department with slug: its name and URL
// become in's. An unknown slug is store.ErrNotFound.
func (s *Service) UpdateDepartment(ctx context.Context, slug string, in DepartmentInput) (store.Department, error) {
	if _, err := s.db.DepartmentBySlug(ctx, slug); err != nil {
		return store.Department{}, err
	}
	if in.Slug != "" && in.Slug != slug {
		return store.Department{}, FieldErrors{"slug": "cannot be changed"}
	}
	in.Slug = slug
	d, err := checkDepartment(in, false)
	if err != nil {
		return store.Department{}, err
	}
	return s.db.UpdateDepartment(ctx, slug, d)
}

// UpsertDepartment creates the department or makes it what in says, as a
// config file declares it.
func (s *Service) UpsertDepartment(ctx context.Context, in DepartmentInput) (store.Department, error) {
	d, err := checkDepartment(in, true)
	if err != nil {
		return store.Department{}, err
	}
	return s.db.UpsertDepartment(ctx, d)
}
