package rules

import (
	"sync"
	"time"

	"herald/store"
)

// Topics compiles topics' rules for the store (it is a store.TopicRules).
// The set for the active topics is kept between pulls and compiled again
// only when their revision moves: compiling a thousand rules costs
// milliseconds. The zero value is ready to use and safe for concurrent use.
type Topics struct {
	mu  sync.Mutex
	rev string
	set *topicSet
}

// topicSet is a Set with the topics its rules came from.
type topicSet struct {
	*Set
	topics []store.Topic
}

// Compile returns the matcher for the topics load lists. A rev that is not
// "" names the revision of the active topics, which moves with every topic
// change (by whichever process made it), so the matcher compiled for the
// same rev is reused without calling load.
func (t *Topics) Compile(rev string, load func() ([]store.Topic, error)) (store.TopicMatcher, error) {
	if rev != "" {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.set != nil && t.rev == rev {
			return t.set, nil
		}
	}
	topics, err := load()
	if err != nil {
		return nil, err
	}
	rules := make([]store.Rule, len(topics))
	for i, tp := range topics {
		rules[i] = tp.Rule
	}
	set := &topicSet{Set: NewSet(rules), topics: topics}
	if rev != "" {
		t.rev, t.set = rev, set
	}
	return set, nil
}

// MatchTopics prepares the title and plain-text summary and appends to
// buf[:0] the indexes of the topics the release belongs to, in order.
func (s *topicSet) MatchTopics(dept string, categories []string, title, plainSummary string, buf []int) []int {
	return s.Match(dept, categories, NewMatchText(title, plainSummary), buf)
}

// Topic returns topic i.
func (s *topicSet) Topic(i int) store.Topic { return s.topics[i] }

// Realert is the rule for announcing an edit again: an edit of a release
// that was alertable is announced again only when its title changed or
// upstream marks it as a new major version, by flag or by moving its
// major-version time past the one stored.
func Realert(old store.Edit, e store.Entry) bool {
	major := e.MajorChange || (!old.MajorVersionAt.IsZero() && e.MajorVersionAt.After(old.MajorVersionAt))
	return old.Title != e.Title || major
}

// AlertNew returns the rule for alerting on a new release: a release
// alerts subscribers unless it is part of the back catalogue that a
// source's first pull stores, or was published more than maxAge before
// the pull (zero means 48 hours): old news is archived, not announced.
func AlertNew(maxAge time.Duration) func(store.NewRelease) bool {
	if maxAge == 0 {
		maxAge = 48 * time.Hour
	}
	return func(n store.NewRelease) bool {
		return !n.BackCatalogue && !n.Published.Before(n.Now.Add(-maxAge))
	}
}
