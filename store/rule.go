package store

import (
	"strings"
	"unicode"
)

// Rule decides which releases belong to a topic. A release matches when its
// department is in Departments (if any are given) AND it carries one of
// Categories or contains one of Keywords (if either list is given) AND
// contains none of Exclude. Keywords are whole words or phrases, matched
// case-insensitively in the title and summary.
type Rule struct {
	Departments []string `json:"departments" yaml:"departments"`
	Categories  []string `json:"categories" yaml:"categories"`
	Keywords    []string `json:"keywords" yaml:"keywords"`
	Exclude     []string `json:"exclude" yaml:"exclude"`
}

// Empty reports whether the rule has no condition at all (it would match
// every release).
func (r Rule) Empty() bool {
	return len(r.Departments) == 0 && len(r.Categories) == 0 && len(r.Keywords) == 0 && len(r.Exclude) == 0
}

// Problems lists what is wrong with the rule, one sentence each.
func (r Rule) Problems() []string {
	var out []string
	for _, k := range r.Keywords {
		if !hasWord(k) {
			out = append(out, "keyword "+quote(k)+" has no letters or digits")
		}
	}
	for _, k := range r.Exclude {
		if !hasWord(k) {
			out = append(out, "exclude keyword "+quote(k)+" has no letters or digits")
		}
	}
	for _, c := range r.Categories {
		if strings.TrimSpace(c) == "" {
			out = append(out, "a category is empty")
		}
	}
	for _, d := range r.Departments {
		if strings.TrimSpace(d) == "" {
			out = append(out, "a department is empty")
		}
	}
	return out
}

func quote(s string) string { return "\"" + s + "\"" }

// hasWord reports whether s has a letter or digit, without which a keyword
// could match nothing.
func hasWord(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) })
}
