package admin

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	"herald/store"
)

// Searches people follow by email, as admins see them: which are followed
// and by how many, and promoting a popular one to a topic.

// SearchesLimit is the most searches one listing returns.
const SearchesLimit = 1000

// Searches lists up to limit (1 to SearchesLimit; 0 means 100) followed
// searches, the most followed first, with their subscriptions counted.
func (s *Service) Searches(ctx context.Context, limit int) ([]store.SearchFollowers, error) {
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > SearchesLimit {
		return nil, FieldErrors{"limit": LimitProblem(SearchesLimit)}
	}
	return s.db.SearchesFollowed(ctx, limit)
}

// The ways a topic's rule can differ from the search it was promoted
// from (Promotion.Differences): a rule reads the words of titles and
// summaries, as they are written, and a release matches one of its
// keywords or categories.
const (
	// DiffBody: the search also finds words in releases' bodies.
	DiffBody = "body"
	// DiffAllWords: the search wants all its terms anywhere; the rule's
	// one keyword wants them together, in their order.
	DiffAllWords = "all_words"
	// DiffPrefix: the search matches the start of a word; the rule the
	// whole word.
	DiffPrefix = "prefix"
	// DiffType: a rule cannot require a document type beside keywords, so
	// the search's type filter is left out.
	DiffType = "type"
	// DiffTopic: a rule cannot require another topic, so the search's
	// topic filter is left out.
	DiffTopic = "topic"
	// DiffAccents: the search finds words with or without accents; the
	// rule only as written.
	DiffAccents = "accents"
)

// Promotion is the topic proposed for a search: the rule as close to the
// search as the rule engine allows, and how it differs.
type Promotion struct {
	Topic TopicInput `json:"topic"`
	// Differences are codes (DiffBody...) of what the topic matches
	// differently from the search; none means it is exact.
	Differences []string `json:"differences"`
}

// ProposeTopic makes the topic for search f: its terms as one keyword, its
// department as the rule's, a slug and a title from its words.
func ProposeTopic(f store.Search) Promotion {
	p := Promotion{Differences: []string{DiffBody}}
	terms := store.SearchTerms(f.Query)
	var words []string
	prefix := false
	for _, t := range terms {
		words = append(words, t.Words...)
		prefix = prefix || t.Prefix
	}
	keyword := strings.Join(words, " ")
	if len(terms) > 1 {
		p.Differences = append(p.Differences, DiffAllWords)
	}
	if prefix {
		p.Differences = append(p.Differences, DiffPrefix)
	}
	if f.Type != "" {
		p.Differences = append(p.Differences, DiffType)
	}
	if f.TopicSlug != "" {
		p.Differences = append(p.Differences, DiffTopic)
	}
	if strings.ContainsFunc(keyword, func(r rune) bool { return r >= utf8.RuneSelf }) {
		p.Differences = append(p.Differences, DiffAccents)
	}
	p.Topic = TopicInput{Slug: proposedSlug(words), Title: proposedTitle(keyword), Match: store.Rule{Keywords: []string{keyword}}}
	if f.DepartmentSlug != "" {
		p.Topic.Match.Departments = []string{f.DepartmentSlug}
	}
	return p
}

// proposedSlug makes a slug of the ASCII letters and digits of words,
// accents left off.
func proposedSlug(words []string) string {
	var parts []string
	n := 0
	for _, w := range words {
		part := strings.Map(func(r rune) rune {
			if r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
				return unicode.ToLower(r)
			}
			return -1
		}, store.FoldDiacritics(w))
		if part == "" || n+len(part) > 60 {
			continue
		}
		parts = append(parts, part)
		n += len(part) + 1
	}
	return strings.Join(parts, "-")
}

// proposedTitle is the keyword with a capital first letter.
func proposedTitle(keyword string) string {
	r, size := utf8.DecodeRuneInString(keyword)
	if size == 0 {
		return ""
	}
	return string(unicode.ToUpper(r)) + keyword[size:]
}

// SearchDetail is one followed search with the topic proposed for it.
type SearchDetail struct {
	store.SearchFollowers
	Proposal Promotion `json:"proposal"`
}

// Search returns search id with its followers and proposed topic; an
// unknown id is store.ErrNotFound.
func (s *Service) Search(ctx context.Context, id int64) (SearchDetail, error) {
	f, err := s.db.SearchByID(ctx, id)
	if err != nil {
		return SearchDetail{}, err
	}
	return SearchDetail{SearchFollowers: f, Proposal: ProposeTopic(f.Search)}, nil
}

// Promoted is what promoting a search did.
type Promoted struct {
	Topic store.Topic `json:"topic"`
	// Moved counts the active subscriptions moved to the topic.
	Moved int `json:"moved"`
}

// PromoteSearch creates the topic in (checked as CreateTopic checks a new
// topic; the fields left empty take the proposal's) and moves the search's
// active subscriptions to it, in one transaction. An unknown id is
// store.ErrNotFound.
func (s *Service) PromoteSearch(ctx context.Context, id int64, in TopicInput) (Promoted, error) {
	f, err := s.db.SearchByID(ctx, id)
	if err != nil {
		return Promoted{}, err
	}
	p := ProposeTopic(f.Search).Topic
	if in.Slug == "" {
		in.Slug = p.Slug
	}
	if in.Title == "" {
		in.Title = p.Title
	}
	if in.Match.Empty() {
		in.Match = p.Match
	}
	t, err := s.checkedTopic(ctx, in, true)
	if err != nil {
		return Promoted{}, err
	}
	t, moved, err := s.db.PromoteSearch(ctx, id, t, &s.rules)
	if store.IsConflict(err) {
		return Promoted{}, FieldErrors{"slug": slugTaken}
	}
	if err != nil {
		return Promoted{}, err
	}
	return Promoted{Topic: t, Moved: moved}, nil
}
