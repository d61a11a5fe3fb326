// Package rules is the pull side's topic rule engine: it compiles the
// store.Rule of each topic and decides which topics a release belongs to,
// for tagging at ingest, re-tagging when a rule changes and previews. It
// also holds the rule for announcing an edit again. The store records
// what these decide; it does not decide.
package rules

import (
	"slices"
	"strings"
	"unicode"

	"herald/store"
)

// Matcher is a compiled Rule.
type Matcher struct {
	departments map[string]bool
	categories  map[string]bool
	keywords    []string
	exclude     []string
}

// Compile prepares r for matching many releases.
func Compile(r store.Rule) *Matcher {
	m := &Matcher{}
	if len(r.Departments) > 0 {
		m.departments = make(map[string]bool, len(r.Departments))
		for _, d := range r.Departments {
			m.departments[strings.TrimSpace(d)] = true
		}
	}
	if len(r.Categories) > 0 {
		m.categories = make(map[string]bool, len(r.Categories))
		for _, c := range r.Categories {
			m.categories[foldCategory(c)] = true
		}
	}
	for _, k := range r.Keywords {
		if n := normWords(k); n != " " {
			m.keywords = append(m.keywords, n)
		}
	}
	for _, k := range r.Exclude {
		if n := normWords(k); n != " " {
			m.exclude = append(m.exclude, n)
		}
	}
	return m
}

// MatchText is a release's title and summary prepared for keyword matching:
// lower case words separated by single spaces, padded with a space at each end.
type MatchText string

// NewMatchText prepares a title and the plain text of a summary (see
// store.Entry.PlainSummary) for matching.
func NewMatchText(title, summary string) MatchText {
	return MatchText(normWords(title + " " + summary))
}

// Match reports whether a release of department dept, with the given
// upstream categories and text, belongs to the rule's topic.
func (m *Matcher) Match(dept string, categories []string, text MatchText) bool {
	if m.departments != nil && !m.departments[dept] {
		return false
	}
	if m.categories != nil || m.keywords != nil {
		hit := false
		for _, c := range categories {
			if m.categories[foldCategory(c)] {
				hit = true
				break
			}
		}
		if !hit {
			for _, k := range m.keywords {
				if strings.Contains(string(text), k) {
					hit = true
					break
				}
			}
		}
		if !hit {
			return false
		}
	}
	for _, k := range m.exclude {
		if strings.Contains(string(text), k) {
			return false
		}
	}
	return true
}

// foldCategory is the form categories are compared in (store.CategoryKey,
// shared with the search page's document-type filter), so a rule written
// with a slug ("press_release", "hm-treasury") matches the label sources
// give ("Press release", "HM Treasury").
func foldCategory(c string) string { return store.CategoryKey(c) }

// normWords lower-cases s and turns every run of characters that are not
// letters or digits into one space, with a space at each end, so that
// strings.Contains finds whole words and phrases.
func normWords(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte(' ')
	space := true
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
			space = false
		} else if !space {
			b.WriteByte(' ')
			space = true
		}
	}
	if !space {
		b.WriteByte(' ')
	}
	return b.String()
}

// Set matches a release against many topics at once. Instead of trying
// every topic's keywords on every release, it indexes keywords by their
// first word, so the cost per release grows with the release's length and
// the topics it could match, not with the number of topics.
type Set struct {
	rules      []*Matcher
	byWord     map[string][]ruleRef // first word of a keyword -> rules
	byCategory map[string][]int
	always     []int // rules without categories or keywords
}

type ruleRef struct {
	rule   int
	phrase string // normalised with padding; "" when the keyword is one word
}

// NewSet builds a set from rules; results are indexes into rules.
func NewSet(rules []store.Rule) *Set {
	s := &Set{byWord: map[string][]ruleRef{}, byCategory: map[string][]int{}}
	for i, r := range rules {
		m := Compile(r)
		s.rules = append(s.rules, m)
		if m.categories == nil && m.keywords == nil {
			s.always = append(s.always, i)
			continue
		}
		for c := range m.categories {
			s.byCategory[c] = append(s.byCategory[c], i)
		}
		for _, k := range m.keywords {
			words := strings.Fields(k)
			ref := ruleRef{rule: i}
			if len(words) > 1 {
				ref.phrase = k
			}
			s.byWord[words[0]] = append(s.byWord[words[0]], ref)
		}
	}
	return s
}

// Match returns the indexes of the rules the release matches, in order,
// appending to buf[:0] so a caller matching many releases allocates once.
func (s *Set) Match(dept string, categories []string, text MatchText, buf []int) []int {
	cand := append(buf[:0], s.always...)
	for _, c := range categories {
		cand = append(cand, s.byCategory[foldCategory(c)]...)
	}
	if len(s.byWord) > 0 {
		t := string(text)
		for i := 0; i < len(t); {
			for i < len(t) && t[i] == ' ' {
				i++
			}
			j := i
			for j < len(t) && t[j] != ' ' {
				j++
			}
			if j > i {
				// A phrase that occurs in the text starts at one of the
				// occurrences of its first word, and each is visited:
				// checking it here, rather than searching the whole text
				// for it, keeps a word that starts many keywords cheap.
				for _, ref := range s.byWord[t[i:j]] {
					if ref.phrase == "" || (i > 0 && strings.HasPrefix(t[i-1:], ref.phrase)) {
						cand = append(cand, ref.rule)
					}
				}
			}
			i = j
		}
	}
	slices.Sort(cand)
	cand = slices.Compact(cand)
	out := cand[:0]
	for _, i := range cand {
		m := s.rules[i]
		if m.departments != nil && !m.departments[dept] {
			continue
		}
		excluded := false
		for _, k := range m.exclude {
			if strings.Contains(string(text), k) {
				excluded = true
				break
			}
		}
		if !excluded {
			out = append(out, i)
		}
	}
	return out
}
