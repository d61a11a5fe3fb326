package store_test

import (
	"context"
	"slices"
	"testing"
	"time"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"herald/store"
	"herald/store/storetest"
)

func searchFixture(t testing.TB) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, clock := storetest.Open(t, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	now := clock.Now()
	for _, d := range []store.Department{{Slug: "home-office", Name: "Home Office"}, {Slug: "treasury", Name: "Treasury"}} {
		if _, err := db.UpsertDepartment(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	borders := tags(map[string][]string{"borders": {"border", "Border"}})
	if _, err := db.UpsertTopic(ctx, store.Topic{Slug: "borders", Title: "Borders", Rule: store.Rule{Keywords: []string{"border"}}}, borders); err != nil {
		t.Fatal(err)
	}
	pull := func(name, dept string, entries []store.Entry) {
		src, err := db.UpsertSource(ctx, store.Source{Name: name, URL: "https://news.example.org/" + name + ".atom", DepartmentSlug: dept, Format: "auto", Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ApplyPull(ctx, src.ID, entries, pullWith(borders)); err != nil {
			t.Fatal(err)
		}
	}
	base := now.Add(-48 * time.Hour)
	pull("home-office", "home-office", []store.Entry{
		{GUID: "ho-1", Link: "https://news.example.org/ho-1", Title: "New border checks at northern ports",
			Summary:      `<p>Officers will check <a href="https://www.example.gov/guidance">lorries</a>.</p>`,
			PlainSummary: "Officers will check lorries.", Published: base},
		{GUID: "ho-2", Link: "https://news.example.org/ho-2", Title: "Funding for community policing",
			Summary: "<p>Money for neighbourhood teams.</p>", PlainSummary: "Money for neighbourhood teams.",
			Body: "<p>The fund opens in <strong>April</strong>. Café owners welcome.</p>", PlainBody: "The fund opens in April. Café owners welcome.",
			Published: base.Add(time.Hour)},
		{GUID: "ho-3", Link: "https://news.example.org/ho-3", Title: "Border force recruitment opens",
			Summary: "<p>Apply by May.</p>", PlainSummary: "Apply by May.", Published: base.Add(2 * time.Hour)},
	})
	pull("treasury", "treasury", []store.Entry{
		{GUID: "t-1", Link: "https://news.example.org/t-1", Title: "Spring statement: border tariffs unchanged",
			Summary: "<p>Duties stay the same.</p>", PlainSummary: "Duties stay the same.", Published: base.Add(3 * time.Hour)},
	})
	return db
}

func titles(rs []store.Release) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.Title)
	}
	return out
}

func TestSearchReleases(t *testing.T) {
	db := searchFixture(t)
	ctx := context.Background()
	tests := []struct {
		name string
		q    store.SearchQuery
		want []string
	}{
		{"title word, newest first", store.SearchQuery{Text: "border"},
			[]string{"Spring statement: border tariffs unchanged", "Border force recruitment opens", "New border checks at northern ports"}},
		{"case and all words", store.SearchQuery{Text: "BORDER Force"}, []string{"Border force recruitment opens"}},
		{"body text", store.SearchQuery{Text: "april"}, []string{"Funding for community policing"}},
		{"diacritics folded", store.SearchQuery{Text: "cafe"}, []string{"Funding for community policing"}},
		{"summary link text is searchable", store.SearchQuery{Text: "lorries"}, []string{"New border checks at northern ports"}},
		// The index holds the plain text it is given, not the HTML.
		{"tag names are not words", store.SearchQuery{Text: "strong"}, nil},
		{"link targets are not words", store.SearchQuery{Text: "guidance"}, nil},
		{"phrase", store.SearchQuery{Text: `"border checks"`}, []string{"New border checks at northern ports"}},
		{"phrase in wrong order", store.SearchQuery{Text: `"checks border"`}, nil},
		{"prefix", store.SearchQuery{Text: "recruit*"}, []string{"Border force recruitment opens"}},
		{"department filter", store.SearchQuery{Text: "border", Department: "treasury"}, []string{"Spring statement: border tariffs unchanged"}},
		{"topic filter", store.SearchQuery{Text: "force", Topic: "borders"}, []string{"Border force recruitment opens"}},
		{"topic without text", store.SearchQuery{Topic: "borders", Department: "home-office"},
			[]string{"Border force recruitment opens", "New border checks at northern ports"}},
		{"operators are plain words", store.SearchQuery{Text: "border OR policing"}, nil},
		{"unknown word", store.SearchQuery{Text: "zeppelin"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := db.SearchReleases(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := titles(res.Releases); !slices.Equal(got, append([]string{}, tc.want...)) {
				t.Errorf("titles = %q, want %q", got, tc.want)
			}
			if res.Total != len(tc.want) {
				t.Errorf("total = %d, want %d", res.Total, len(tc.want))
			}
		})
	}
}

func TestSearchPagesAndFollowsEdits(t *testing.T) {
	db := searchFixture(t)
	ctx := context.Background()
	res, err := db.SearchReleases(ctx, store.SearchQuery{Text: "border", Limit: 2, Offset: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 3 || !slices.Equal(titles(res.Releases), []string{"New border checks at northern ports"}) {
		t.Fatalf("second page = %q (total %d)", titles(res.Releases), res.Total)
	}

	src, err := db.SourceByName(ctx, "treasury")
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ApplyPull(ctx, src.ID, []store.Entry{{GUID: "t-1", Link: "https://news.example.org/t-1",
		Title: "Spring statement: excise duties unchanged", Summary: "<p>Duties stay the same.</p>"}}, pullWith(tags(nil)))
	if err != nil {
		t.Fatal(err)
	}
	for text, want := range map[string]int{"tariffs": 0, "excise": 1} {
		res, err := db.SearchReleases(ctx, store.SearchQuery{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != want {
			t.Errorf("after the edit, %q finds %d releases, want %d", text, res.Total, want)
		}
	}
}

func TestMatchExpression(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"  !!! ", ""},
		{"border", `"border"`},
		{"border force", `"border" "force"`},
		{`"border force" ports`, `"border force" "ports"`},
		{`recruit*`, `"recruit"*`},
		{`AND OR NOT (`, `"AND" "OR" "NOT"`},
		{`unbalanced "quote`, `"unbalanced" "quote"`},
		{`col:value`, `"col value"`},
		{"don't", `"don t"`},
	}
	for _, tc := range tests {
		if got := store.MatchExpression(tc.in); got != tc.want {
			t.Errorf("MatchExpression(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// FuzzSearchReleases checks that nothing a visitor types makes the search
// fail: every input is either searched or found empty.
func FuzzSearchReleases(f *testing.F) {
	for _, s := range []string{"border", `"a`, "NEAR(a b)", "a*b", "^x", "-y", "title:x", "\x00", "a\"b\"c*", "(((", "é*"} {
		f.Add(s)
	}
	db := searchFixture(f)
	f.Fuzz(func(t *testing.T, text string) {
		if _, err := db.SearchReleases(context.Background(), store.SearchQuery{Text: text}); err != nil {
			t.Fatalf("search %q: %v", text, err)
		}
	})
}

// FuzzFoldDiacritics: the text PostgreSQL indexes is the text with its
// marks removed (NFD, drop Mn, NFC), whether foldDiacritics transforms it
// or finds it has nothing to remove.
func FuzzFoldDiacritics(f *testing.F) {
	for _, s := range []string{"plain", "Café", "Cafe\u0301", "£3 million", "Ångström", "\xff", "한국어", "क्षि"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _, err := transform.String(transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC), s)
		if err != nil {
			want = s
		}
		if got := store.FoldDiacritics(s); got != want {
			t.Fatalf("FoldDiacritics(%q) = %q, want %q", s, got, want)
		}
	})
}
