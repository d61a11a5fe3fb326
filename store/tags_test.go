package store_test

import (
	"slices"
	"strings"
	"sync"

	"herald/store"
)

// tagTable is the store.TopicRules of the store's own tests, which check
// what the store records and what it hands the matcher, not how rules
// match (feeds/rules owns and tests that): a release belongs to a topic
// when its title or plain-text summary contains one of the phrases the
// table lists for the topic's slug, exactly as written. Like the rules
// Herald runs with, it keeps what it compiled for a topics revision, so a
// store that did not move the revision would show it.
type tagTable struct {
	phrases map[string][]string // topic slug -> phrases

	mu  sync.Mutex
	rev string
	m   *tableMatcher
}

// tags returns a table tagging by phrases (topic slug -> phrases); nil tags
// nothing.
func tags(phrases map[string][]string) *tagTable { return &tagTable{phrases: phrases} }

// Compile implements store.TopicRules.
func (tt *tagTable) Compile(rev string, load func() ([]store.Topic, error)) (store.TopicMatcher, error) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if rev != "" && tt.m != nil && tt.rev == rev {
		return tt.m, nil
	}
	topics, err := load()
	if err != nil {
		return nil, err
	}
	m := &tableMatcher{phrases: tt.phrases, topics: topics}
	if rev != "" {
		tt.rev, tt.m = rev, m
	}
	return m, nil
}

// tableMatcher is a tagTable compiled for a list of topics.
type tableMatcher struct {
	phrases map[string][]string
	topics  []store.Topic
}

// MatchTopics implements store.TopicMatcher.
func (m *tableMatcher) MatchTopics(_ string, _ []string, title, plainSummary string, buf []int) []int {
	buf = buf[:0]
	for i, t := range m.topics {
		if slices.ContainsFunc(m.phrases[t.Slug], func(p string) bool {
			return strings.Contains(title, p) || strings.Contains(plainSummary, p)
		}) {
			buf = append(buf, i)
		}
	}
	return buf
}

// Topic implements store.TopicMatcher.
func (m *tableMatcher) Topic(i int) store.Topic { return m.topics[i] }

// pullWith returns the options the store's tests pull with: topics tagged
// by tags; a new release alerts unless it is the back catalogue, and an
// edit alerts again when its title changed. Herald's own alert rules are
// feeds/rules' and tested there.
func pullWith(tags store.TopicRules) store.PullOptions {
	return store.PullOptions{
		Topics:  tags,
		Alert:   func(n store.NewRelease) bool { return !n.BackCatalogue },
		Realert: func(old store.Edit, e store.Entry) bool { return old.Title != e.Title },
	}
}
