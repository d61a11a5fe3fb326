package admin

import (
	"context"
	"slices"
	"strings"

	"herald/store"
)

// SourceInput defines a source: the API's JSON body, the console's form and
// the CLI's flags.
type SourceInput struct {
	// Name names the source; it is fixed once the source exists.
	Name string `json:"name"`
	// URL is the publisher's feed.
	URL string `json:"url"`
	// Department is the slug of the department its releases belong to.
	Department string `json:"department"`
	// Format is one of store.Formats(); empty means store.FormatAuto.
	Format string `json:"format"`
	// Enabled says whether the source is pulled on schedule; nil means
	// yes for a new source and unchanged for an existing one.
	Enabled *bool `json:"enabled"`
}

// SourceInputOf is src as an input, for a front end that changes some of
// its fields and saves the rest as they are.
func SourceInputOf(src store.Source) SourceInput {
	enabled := src.Enabled
	return SourceInput{Name: src.Name, URL: src.URL, Department: src.DepartmentSlug, Format: src.Format, Enabled: &enabled}
}

// checkSource cleans and checks a source; the name is checked only when
// the source is new.
func checkSource(in SourceInput, isNew bool, depts departmentSet) (store.Source, error) {
	fe := FieldErrors{}
	if isNew {
		checkSlug(fe, "name", in.Name)
	}
	src := store.Source{
		Name:           in.Name,
		URL:            checkHTTPURL(fe, "url", in.URL, true),
		DepartmentSlug: strings.TrimSpace(in.Department),
		Format:         strings.TrimSpace(in.Format),
		Enabled:        in.Enabled == nil || *in.Enabled,
	}
	if src.Format == "" {
		src.Format = store.FormatAuto
	}
	if formats := store.Formats(); !slices.Contains(formats, src.Format) {
		fe.Add("format", "must be one of %s", strings.Join(formats, ", "))
	}
	checkSlug(fe, "department", src.DepartmentSlug)
	if _, bad := fe["department"]; !bad {
		if p := depts.problem(src.DepartmentSlug); p != "" {
			fe.Add("department", "%s", p)
		}
	}
	return src, fe.err()
}

// CheckSource cleans and checks the definition of a new source that may
// belong to one of the departments listed, without asking the store: the
// check a config file's sources get before Herald starts.
func CheckSource(in SourceInput, departments []string) (store.Source, error) {
	return checkSource(in, true, setOf(departments))
}

// checkedSource checks a source against the departments in the store.
func (s *Service) checkedSource(ctx context.Context, in SourceInput, isNew bool) (store.Source, error) {
	depts, err := s.departments(ctx)
	if err != nil {
		return store.Source{}, err
	}
	return checkSource(in, isNew, depts)
}

// CreateSource adds a source; it is pulled on the next scheduled run.
func (s *Service) CreateSource(ctx context.Context, in SourceInput) (store.Source, error) {
	src, err := s.checkedSource(ctx, in, true)
	if err != nil {
		return store.Source{}, err
	}
	src, err = s.db.CreateSource(ctx, src)
	if store.IsConflict(err) {
		return store.Source{}, FieldErrors{"name": "is already taken by another source"}
	}
	return src, err
}

// UpdateSource changes the source named name: URL, department and format
// become in's, and its enabled flag too unless in leaves it out. An
// unknown name is store.ErrNotFound.
func (s *Service) UpdateSource(ctx context.Context, name string, in SourceInput) (store.Source, error) {
	old, err := s.db.SourceByName(ctx, name)
	if err != nil {
		return store.Source{}, err
	}
	if in.Name != "" && in.Name != name {
		return store.Source{}, FieldErrors{"name": "cannot be changed"}
	}
	in.Name = name
	if in.Enabled == nil {
		in.Enabled = &old.Enabled
	}
	src, err := s.checkedSource(ctx, in, false)
	if err != nil {
		return store.Source{}, err
	}
	return s.db.UpsertSource(ctx, src)
}

// UpsertSource creates the source or makes it what in says, as a config
// file declares it; its fetch state is kept.
func (s *Service) UpsertSource(ctx context.Context, in SourceInput) (store.Source, error) {
	src, err := s.checkedSource(ctx, in, true)
	if err != nil {
		return store.Source{}, err
	}
	return s.db.UpsertSource(ctx, src)
}

// SetSourceEnabled turns scheduled pulls of a source on or off and returns
// the source as it is now; its releases stay either way. An unknown name
// is store.ErrNotFound.
func (s *Service) SetSourceEnabled(ctx context.Context, name string, enabled bool) (store.Source, error) {
	if err := s.db.SetSourceEnabled(ctx, name, enabled); err != nil {
		return store.Source{}, err
	}
	return s.db.SourceByName(ctx, name)
}
