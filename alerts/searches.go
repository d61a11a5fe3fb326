package alerts

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"unicode/utf8"

	"herald/store"
	"herald/templates/text"
)

// Following a search: the search page's query string names the search (the
// words, and its department, topic and document type filters), and the
// subscription follows the search in its normalised form, which the store
// matches against new releases as they arrive.

// SearchMaxRunes bounds the words of a followed search, as the search
// page's field does.
const SearchMaxRunes = 200

// The problems a search to follow can have: messages of the templates'
// messages/forms.txt, said with the named value "Value".
const (
	ProblemSearchUnreadable        = "form.search.unreadable"
	ProblemSearchEmpty             = "form.search.empty"
	ProblemSearchTooLong           = "form.search.too_long"
	ProblemSearchControl           = "form.search.control"
	ProblemSearchUnknownDepartment = "form.search.unknown_department"
	ProblemSearchUnknownTopic      = "form.search.unknown_topic"
	ProblemSearchTopicEnded        = "form.search.topic_ended"
	ProblemSearchUnknownType       = "form.search.unknown_type"
)

// searchName is what the search-name template is given.
type searchName struct {
	// Query is the search's words as stored; Department, Topic and Type
	// the department's name, topic's title and document type's label of
	// its filters, or "".
	Query, Department, Topic, Type string
}

// findSearch resolves a search page query string into a search to follow.
func (s *Service) findSearch(ctx context.Context, raw string) (Target, error) {
	problem := func(code, value string, err error) (Target, error) {
		return Target{}, FieldErrors{{Field: "target", Message: code, Data: []any{"Value", text.Excerpt(text.Line(value), 100)}, Err: err}}
	}
	if text.HasControl(raw) {
		return problem(ProblemSearchControl, "", ErrInvalid)
	}
	v, err := url.ParseQuery(raw)
	if err != nil {
		return problem(ProblemSearchUnreadable, "", ErrInvalid)
	}
	words := v.Get("q")
	if text.HasControl(words) {
		return problem(ProblemSearchControl, "", ErrInvalid)
	}
	query := store.NormalizeSearchText(words)
	switch {
	case utf8.RuneCountInString(words) > SearchMaxRunes || len(words) > store.SearchMaxBytes || len(query) > store.SearchMaxBytes ||
		store.SearchTermCount(words) > store.SearchMaxTerms:
		return problem(ProblemSearchTooLong, words, ErrInvalid)
	case query == "":
		return problem(ProblemSearchEmpty, words, ErrInvalid)
	}
	spec := store.SearchSpec{Query: query}
	name := searchName{Query: query}
	sq := store.SearchQuery{Text: query}
	if slug := v.Get("department"); slug != "" {
		d, err := s.db.DepartmentBySlug(ctx, slug)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !store.ValidSlug(slug)) {
			return problem(ProblemSearchUnknownDepartment, slug, store.ErrNotFound)
		}
		if err != nil {
			return Target{}, err
		}
		spec.DepartmentID, name.Department, sq.Department = d.ID, d.Name, d.Slug
	}
	if slug := v.Get("topic"); slug != "" {
		t, err := s.db.TopicBySlug(ctx, slug)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !store.ValidSlug(slug)) {
			return problem(ProblemSearchUnknownTopic, slug, store.ErrNotFound)
		}
		if err != nil {
			return Target{}, err
		}
		if t.Retired() {
			return problem(ProblemSearchTopicEnded, t.Title, ErrTopicEnded)
		}
		spec.TopicID, name.Topic, sq.Topic = t.ID, t.Title, t.Slug
	}
	if typ := v.Get("type"); typ != "" {
		known, err := s.db.DocumentTypes(ctx)
		if err != nil {
			return Target{}, err
		}
		key := store.CategoryKey(typ)
		i := slices.IndexFunc(known, func(k string) bool { return store.CategoryKey(k) == key })
		if i < 0 || key == "" {
			return problem(ProblemSearchUnknownType, typ, store.ErrNotFound)
		}
		spec.Type, name.Type, sq.Type = key, text.DocumentTypeLabel(known[i]), key
	}
	spec.Name = s.mail.searchName(name)
	return Target{Kind: "search", Slug: sq.Params(), Name: spec.Name, Search: &spec}, nil
}
