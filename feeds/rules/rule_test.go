package rules_test

import (
	"slices"
	"testing"

	"herald/feeds/rules"
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
	m := rules.Compile(rule)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.Match(tt.dept, tt.cats, rules.NewMatchText(tt.title, tt.summary)); got != tt.want {
				t.Fatalf("Match = %v, want %v", got, tt.want)
			}
		})
	}
	cat := rules.Compile(store.Rule{Categories: []string{"Press Release"}, Keywords: []string{"budget"}})
	if !cat.Match("x", []string{"press  release"}, rules.NewMatchText("Anything", "")) {
		t.Fatal("category should match regardless of case and spacing")
	}
	if cat.Match("x", []string{"Speech"}, rules.NewMatchText("Anything", "")) {
		t.Fatal("no category or keyword should not match")
	}
	slugs := rules.Compile(store.Rule{Categories: []string{"press_release", "hm-treasury"}})
	for _, c := range []string{"Press release", "HM Treasury", "press_release"} {
		if !slugs.Match("x", []string{c}, rules.NewMatchText("Anything", "")) {
			t.Errorf("a rule written with slugs should match the category %q", c)
		}
	}
	if slugs.Match("x", []string{"Press releases"}, rules.NewMatchText("Anything", "")) {
		t.Error("folding must not match a different word")
	}
}

// FuzzSetAgreesWithMatcher checks the indexed matcher against the
// plain one, which is the definition.
func FuzzSetAgreesWithMatcher(f *testing.F) {
	f.Add("Human trafficking and modern slavery", "<p>Police act</p>", "Crime", "home-office")
	f.Add("Budget day", "tax and spending", "Press release", "treasury")
	ruleList := []store.Rule{
		{Departments: []string{"home-office"}, Keywords: []string{"trafficking", "modern slavery"}},
		{Keywords: []string{"budget", "tax"}, Exclude: []string{"spending"}},
		{Categories: []string{"crime"}},
		{Departments: []string{"treasury"}},
		{Keywords: []string{"police act", "act"}, Categories: []string{"press release"}},
		{Exclude: []string{"budget"}},
	}
	set := rules.NewSet(ruleList)
	f.Fuzz(func(t *testing.T, title, summary, cat, dept string) {
		text := rules.NewMatchText(title, summary)
		cats := []string{cat}
		var want []int
		for i, r := range ruleList {
			if rules.Compile(r).Match(dept, cats, text) {
				want = append(want, i)
			}
		}
		got := set.Match(dept, cats, text, nil)
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("Set = %v, Matcher = %v", got, want)
		}
	})
}
