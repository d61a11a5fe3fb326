package admin

import (
	"context"
	"time"

	"herald/store"
)

// TopicInput defines a topic: the API's JSON body, the console's form and
// the CLI's flags.
type TopicInput struct {
	// Slug names the topic in URLs; it is fixed once the topic exists.
	Slug        string     `json:"slug"`
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Match       store.Rule `json:"match"`
}

// TopicInputOf is t as an input, for a front end that changes some of its
// fields and saves the rest as they are.
func TopicInputOf(t store.Topic) TopicInput {
	return TopicInput{Slug: t.Slug, Title: t.Title, Description: t.Description, Match: t.Rule}
}

// checkRule cleans a topic rule and checks it against the departments that
// exist.
func checkRule(fe FieldErrors, rule store.Rule, depts departmentSet) store.Rule {
	out := store.Rule{
		Departments: cleanList(fe, "match.departments", rule.Departments, 100, depts.problem),
		Categories:  cleanList(fe, "match.categories", rule.Categories, 200, nil),
		Keywords:    cleanList(fe, "match.keywords", rule.Keywords, 200, wordProblem),
		Exclude:     cleanList(fe, "match.exclude", rule.Exclude, 200, wordProblem),
	}
	// Exclusions alone would match nearly every release.
	if len(out.Departments)+len(out.Categories)+len(out.Keywords) == 0 {
		fe.Add("match", "must give at least one department, category or keyword")
	}
	return out
}

// checkTopic cleans and checks a topic; the slug is checked only when the
// topic is new.
func checkTopic(in TopicInput, isNew bool, depts departmentSet) (store.Topic, error) {
	fe := FieldErrors{}
	if isNew {
		checkSlug(fe, "slug", in.Slug)
	}
	t := store.Topic{
		Slug:        in.Slug,
		Title:       checkLine(fe, "title", in.Title, true, 200),
		Description: checkText(fe, "description", in.Description, 2000),
		Rule:        checkRule(fe, in.Match, depts),
	}
	return t, fe.err()
}

// CheckTopic cleans and checks the definition of a new topic whose rule
// may name the departments listed, without asking the store: the check a
// config file's topics get before Herald starts.
func CheckTopic(in TopicInput, departments []string) (store.Topic, error) {
	return checkTopic(in, true, setOf(departments))
}

// departments returns the slugs of the departments that exist.
func (s *Service) departments(ctx context.Context) (departmentSet, error) {
	ds, err := s.db.Departments(ctx)
	if err != nil {
		return nil, err
	}
	set := departmentSet{}
	for _, d := range ds {
		set[d.Slug] = true
	}
	return set, nil
}

func setOf(slugs []string) departmentSet {
	set := departmentSet{}
	for _, s := range slugs {
		set[s] = true
	}
	return set
}

// checkedTopic checks a topic against the departments in the store.
func (s *Service) checkedTopic(ctx context.Context, in TopicInput, isNew bool) (store.Topic, error) {
	depts, err := s.departments(ctx)
	if err != nil {
		return store.Topic{}, err
	}
	return checkTopic(in, isNew, depts)
}

// slugTaken is the problem of a new topic's slug that another has.
const slugTaken = "is already taken by another topic"

// CreateTopic adds a topic and tags the archive with it.
func (s *Service) CreateTopic(ctx context.Context, in TopicInput) (store.Topic, error) {
	t, err := s.checkedTopic(ctx, in, true)
	if err != nil {
		return store.Topic{}, err
	}
	t, err = s.db.CreateTopic(ctx, t, &s.rules)
	if store.IsConflict(err) {
		return store.Topic{}, FieldErrors{"slug": slugTaken}
	}
	return t, err
}

// UpdateTopic changes the topic with slug: title, description and rule
// all become in's. Saving a retired topic brings it back
// (store.UpsertTopic's rule). An unknown slug is store.ErrNotFound.
func (s *Service) UpdateTopic(ctx context.Context, slug string, in TopicInput) (store.Topic, error) {
	if _, err := s.db.TopicBySlug(ctx, slug); err != nil {
		return store.Topic{}, err
	}
	if in.Slug != "" && in.Slug != slug {
		return store.Topic{}, FieldErrors{"slug": "cannot be changed; create a new topic and retire this one"}
	}
	in.Slug = slug
	t, err := s.checkedTopic(ctx, in, false)
	if err != nil {
		return store.Topic{}, err
	}
	return s.db.UpsertTopic(ctx, t, &s.rules)
}

// UpsertTopic creates the topic or makes it what in says, as a config file
// declares it; a retired topic becomes active again.
func (s *Service) UpsertTopic(ctx context.Context, in TopicInput) (store.Topic, error) {
	t, err := s.checkedTopic(ctx, in, true)
	if err != nil {
		return store.Topic{}, err
	}
	return s.db.UpsertTopic(ctx, t, &s.rules)
}

// RetireTopic ends a topic (see store.RetireTopic) and returns it as it
// is now. An unknown slug is store.ErrNotFound.
func (s *Service) RetireTopic(ctx context.Context, slug string) (store.Topic, error) {
	if err := s.db.RetireTopic(ctx, slug); err != nil {
		return store.Topic{}, err
	}
	return s.db.TopicBySlug(ctx, slug)
}

// PreviewInput is a rule to try before saving it.
type PreviewInput struct {
	// Slug names the topic being edited, whose subscribers a changed rule
	// would notify; empty for a new topic.
	Slug  string     `json:"slug"`
	Match store.Rule `json:"match"`
}

// PreviewWindow is how far back a preview looks.
const PreviewWindow = 30 * 24 * time.Hour

// previewExamples is how many matching releases a preview shows.
const previewExamples = 10

// Preview is what a rule would have done over the last PreviewWindow.
type Preview struct {
	// Matched counts the releases first stored in the window that the
	// rule matches.
	Matched int
	// Examples are the newest of them, at most ten.
	Examples []store.Release
	// Subscribers counts the current subscribers who would be emailed
	// about what the rule matches: those of the topic being edited, and
	// those following one of the rule's departments, each once.
	Subscribers int
}

// PreviewTopic runs a rule over the recent archive without saving it.
func (s *Service) PreviewTopic(ctx context.Context, in PreviewInput) (Preview, error) {
	fe := FieldErrors{}
	if in.Slug != "" {
		checkSlug(fe, "slug", in.Slug)
	}
	depts, err := s.departments(ctx)
	if err != nil {
		return Preview{}, err
	}
	rule := checkRule(fe, in.Match, depts)
	if err := fe.err(); err != nil {
		return Preview{}, err
	}
	var p Preview
	p.Matched, p.Examples, err = s.db.RuleMatches(ctx, rule, &s.rules, s.db.Now().Add(-PreviewWindow), previewExamples)
	if err != nil {
		return Preview{}, err
	}
	if p.Subscribers, err = s.db.RuleAudience(ctx, in.Slug, rule.Departments); err != nil {
		return Preview{}, err
	}
	return p, nil
}
