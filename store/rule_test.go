package store_test

import (
	"slices"
	"testing"

	"herald/store"
)

func TestRuleMatch(t *testing.T) {
	rule := store.Rule{Departments: []string{"home-office"}, Keywords: []string{"trafficking", "modern slavery"}, Exclude: []string{"consultation response"}}
	tests := []struct {
		name, dept, title, summary string
		cats                       []string
		want                       bool
	}{
		{"keyword in title", "home-office", "UK and partners pledge to tackle human trafficking", "", nil, true},
		{"phrase in summary", "home-office", "New guidance", "Signs of modern slavery.", nil, true},
		{"case-insensitive", "home-office", "TRAFFICKING review", "", nil, true},
		{"whole words only", "home-office", "Traffickingstop app launched", "", nil, false},
		{"other department", "treasury", "Human trafficking funding", "", nil, false},
		{"excluded", "home-office", "Trafficking: consultation response", "", nil, false},
		{"no keyword", "home-office", "Passport fees", "", nil, false},
		{"phrase across punctuation", "home-office", "Modern-slavery statement", "", nil, true},
	}
	m := rule.Compile()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.Match(tt.dept, tt.cats, store.NewMatchText(tt.title, tt.summary)); got != tt.want {
				t.Fatalf("Match = %v, want %v", got, tt.want)
			}
		})
	}
	cat := store.Rule{Categories: []string{"Press Release"}, Keywords: []string{"budget"}}.Compile()
	if !cat.Match("x", []string{"press  release"}, store.NewMatchText("Anything", "")) {
		t.Fatal("category should match regardless of case and spacing")
	}
	if cat.Match("x", []string{"Speech"}, store.NewMatchText("Anything", "")) {
		t.Fatal("no category or keyword should not match")
	}
}

// FuzzRuleSetAgreesWithMatcher checks the indexed matcher against the
// plain one, which is the definition.
func FuzzRuleSetAgreesWithMatcher(f *testing.F) {
	f.Add("Human trafficking and modern slavery", "<p>Police act</p>", "Crime", "home-office")
	f.Add("Budget day", "tax and spending", "Press release", "treasury")
	rules := []store.Rule{
		{Departments: []string{"home-office"}, Keywords: []string{"trafficking", "modern slavery"}},
		{Keywords: []string{"budget", "tax"}, Exclude: []string{"spending"}},
		{Categories: []string{"crime"}},
		{Departments: []string{"treasury"}},
		{Keywords: []string{"police act", "act"}, Categories: []string{"press release"}},
		{Exclude: []string{"budget"}},
	}
	ids := []int64{1, 2, 3, 4, 5, 6}
	slugs := []string{"a", "b", "c", "d", "e", "f"}
	set := store.NewRuleSet(ids, slugs, rules)
	f.Fuzz(func(t *testing.T, title, summary, cat, dept string) {
		text := store.NewMatchText(title, summary)
		cats := []string{cat}
		var want []int
		for i, r := range rules {
			if r.Compile().Match(dept, cats, text) {
				want = append(want, i)
			}
		}
		got := set.Match(dept, cats, text, nil)
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("RuleSet = %v, Matcher = %v", got, want)
		}
	})
}
