package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"herald/alerts/address"
	"herald/store"
	"herald/templates/text"
)

// The API and the console take the same inputs and check them with the same
// functions, so both reject the same things with the same words. Problems
// are keyed by the JSON field's path ("match.keywords[2]").

type topicInput struct {
	Slug        string     `json:"slug"`
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Match       store.Rule `json:"match"`
}

type previewInput struct {
	// Slug names the topic being edited, whose subscribers a changed rule
	// would notify; empty for a new topic.
	Slug  string     `json:"slug"`
	Match store.Rule `json:"match"`
}

type sourceInput struct {
	Name       string `json:"name"`
	URL        string `json:"url"`
	Department string `json:"department"`
	Format     string `json:"format"`
	Enabled    *bool  `json:"enabled"`
}

type departmentInput struct {
	Slug string `json:"slug"`
	Name string `json:"name"`
	URL  string `json:"url"`
}

type addressInput struct {
	Address string `json:"address"`
}

const slugHelp = "must be 1 to 100 lower-case letters, digits and single hyphens, like home-office"

func checkSlug(fe fieldErrors, field, v string) {
	switch {
	case v == "":
		fe.add(field, "is required")
	case text.HasControl(v):
		fe.add(field, "must not contain line breaks or control characters")
	case !store.ValidSlug(v):
		fe.add(field, slugHelp)
	}
}

// checkLine checks a one-line text field and returns it trimmed.
func checkLine(fe fieldErrors, field, v string, required bool, max int) string {
	v = strings.TrimSpace(v)
	switch {
	case text.HasControl(v):
		fe.add(field, "must not contain line breaks or control characters")
	case required && v == "":
		fe.add(field, "is required")
	case utf8.RuneCountInString(v) > max:
		fe.add(field, "must be at most %d characters", max)
	case !utf8.ValidString(v):
		fe.add(field, "must be UTF-8 text")
	}
	return v
}

// checkText checks a multi-line text field: line breaks are kept (as \n),
// other control characters are refused.
func checkText(fe fieldErrors, field, v string, max int) string {
	v = strings.TrimSpace(strings.ReplaceAll(v, "\r\n", "\n"))
	switch {
	case strings.ContainsFunc(v, func(r rune) bool { return r != '\n' && r != '\t' && text.IsControl(r) }):
		fe.add(field, "must not contain control characters")
	case utf8.RuneCountInString(v) > max:
		fe.add(field, "must be at most %d characters", max)
	case !utf8.ValidString(v):
		fe.add(field, "must be UTF-8 text")
	}
	return v
}

// checkHTTPURL checks an optional absolute http(s) URL.
func checkHTTPURL(fe fieldErrors, field, v string, required bool) string {
	v = strings.TrimSpace(v)
	if v == "" {
		if required {
			fe.add(field, "is required")
		}
		return v
	}
	if text.HasControl(v) || strings.ContainsAny(v, " <>\"") {
		fe.add(field, "must be a URL without spaces, quotes or line breaks")
		return v
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fe.add(field, "must be an absolute http:// or https:// URL")
	} else if len(v) > 2000 {
		fe.add(field, "must be at most 2000 characters")
	}
	return v
}

// checkAddress checks an email address with the one rule every entry
// point shares and returns its canonical form, the one the store keeps.
func checkAddress(fe fieldErrors, field, v string) string {
	a, err := address.Parse(v)
	if err != nil {
		fe.add(field, "%s", address.Problem(err))
	}
	return a
}

// cleanList trims the items of a rule list, drops empty ones and checks the
// rest.
func cleanList(fe fieldErrors, field string, items []string, max int) []string {
	out := []string{}
	if len(items) > 500 {
		fe.add(field, "must have at most 500 items")
		return out
	}
	for i, it := range items {
		it = strings.TrimSpace(it)
		if it == "" {
			continue
		}
		f := fmt.Sprintf("%s[%d]", field, i)
		if text.HasControl(it) {
			fe.add(f, "must not contain line breaks or control characters")
			continue
		}
		if utf8.RuneCountInString(it) > max {
			fe.add(f, "must be at most %d characters", max)
			continue
		}
		if !slices.Contains(out, it) {
			out = append(out, it)
		}
	}
	return out
}

func hasWordChar(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) })
}

// checkRule cleans a topic rule and checks it against the departments that
// exist.
func (s *Server) checkRule(ctx context.Context, fe fieldErrors, rule store.Rule) (store.Rule, error) {
	out := store.Rule{
		Departments: cleanList(fe, "match.departments", rule.Departments, 100),
		Categories:  cleanList(fe, "match.categories", rule.Categories, 200),
		Keywords:    cleanList(fe, "match.keywords", rule.Keywords, 200),
		Exclude:     cleanList(fe, "match.exclude", rule.Exclude, 200),
	}
	for i, k := range out.Keywords {
		if !hasWordChar(k) {
			fe.add(fmt.Sprintf("match.keywords[%d]", i), "must contain a letter or a digit")
		}
	}
	for i, k := range out.Exclude {
		if !hasWordChar(k) {
			fe.add(fmt.Sprintf("match.exclude[%d]", i), "must contain a letter or a digit")
		}
	}
	if len(out.Departments) > 0 {
		depts, err := s.db.Departments(ctx)
		if err != nil {
			return out, err
		}
		for i, d := range out.Departments {
			if !slices.ContainsFunc(depts, func(x store.Department) bool { return x.Slug == d }) {
				fe.add(fmt.Sprintf("match.departments[%d]", i), "names no department: %q", d)
			}
		}
	}
	if len(out.Departments)+len(out.Categories)+len(out.Keywords) == 0 {
		fe.add("match", "must give at least one department, category or keyword")
	}
	return out, nil
}

// checkTopic cleans and checks a topic; slug is checked only when new.
func (s *Server) checkTopic(ctx context.Context, in topicInput, isNew bool) (store.Topic, error) {
	fe := fieldErrors{}
	if isNew {
		checkSlug(fe, "slug", in.Slug)
	}
	t := store.Topic{
		Slug:        in.Slug,
		Title:       checkLine(fe, "title", in.Title, true, 200),
		Description: checkText(fe, "description", in.Description, 2000),
	}
	rule, err := s.checkRule(ctx, fe, in.Match)
	if err != nil {
		return t, err
	}
	t.Rule = rule
	return t, fe.err()
}

// checkSource cleans and checks a source; name is checked only when new.
func (s *Server) checkSource(ctx context.Context, in sourceInput, isNew bool) (store.Source, error) {
	fe := fieldErrors{}
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
	if !slices.Contains(store.Formats, src.Format) {
		fe.add("format", "must be one of %s", strings.Join(store.Formats, ", "))
	}
	checkSlug(fe, "department", src.DepartmentSlug)
	if _, ok := fe["department"]; !ok {
		if _, err := s.db.DepartmentBySlug(ctx, src.DepartmentSlug); errors.Is(err, store.ErrNotFound) {
			fe.add("department", "names no department: %q", src.DepartmentSlug)
		} else if err != nil {
			return src, err
		}
	}
	return src, fe.err()
}

// checkDepartment cleans and checks a department; slug is checked only
// when new.
func checkDepartment(in departmentInput, isNew bool) (store.Department, error) {
	fe := fieldErrors{}
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

// decodeJSON reads a JSON body into v, refusing unknown fields, and turns
// decoding problems into errors naming the field.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return errStatus(http.StatusUnsupportedMediaType, "The body must be JSON (Content-Type: application/json).")
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var mbe *http.MaxBytesError
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case err == nil:
	case errors.As(err, &mbe):
		return err
	case errors.As(err, &ute):
		field := ute.Field
		if field == "" {
			return errStatus(http.StatusBadRequest, "The body must be a JSON object.")
		}
		return fieldErrors{field: "must be " + jsonKind(ute.Type.Kind().String())}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fieldErrors{name: "is not a field of this request"}
	case errors.Is(err, io.EOF):
		return errStatus(http.StatusBadRequest, "The body is empty; it must be a JSON object.")
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return errStatus(http.StatusBadRequest, "The body is not valid JSON.")
	default:
		return errStatus(http.StatusBadRequest, "The body is not valid JSON.")
	}
	if dec.More() {
		return errStatus(http.StatusBadRequest, "The body must be one JSON object.")
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "true or false"
	}
	return "a number"
}
