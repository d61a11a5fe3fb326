package store_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"herald/store"
	"herald/store/storetest"
)

// A followed search must be matched on arrival against exactly the
// releases the search page lists for it. These tests store releases
// while searches are followed and compare, search by search, what
// release_searches recorded with what SearchReleases finds: on the demo's
// releases for a list of queries, for random queries built from their
// words, and for fuzzed ones.

// demoRelease is one line of cmd/herald/demodata/releases.txt.
type demoRelease struct {
	dept, title, summary string
	cats                 []string
}

func readDemoReleases(t testing.TB) []demoRelease {
	t.Helper()
	f, err := os.Open("../cmd/herald/demodata/releases.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []demoRelease
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := strings.SplitN(line, "|", 4)
		if len(p) != 4 {
			t.Fatalf("demo release %q", line)
		}
		out = append(out, demoRelease{dept: p[0], cats: strings.Split(p[1], ";"), title: p[2], summary: p[3]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// demoBodies are the bodies the demo releases get in turn: plain English,
// and text with characters on which Go's and SQLite's tokenizers disagree
// (superscripts, a long s, Greek, combining marks), which takes the
// engine's own tokens.
var demoBodies = []string{
	"Notes to editors: the press office answers questions on weekdays.",
	"Figures in CO₂ tonnes and m², about ½ of the total. Café owners and naïve façades in Zürich.",
	"Greek partners in Αθήνα and Ελλάδα; the ſtatement was read in Россия.",
	"A cafe\u0301 with combining marks, and x\u0305y over-lined.",
}

// searchWorld is a store with the demo's departments, a few topics, a
// source per department whose first pull (the back catalogue) is done,
// and the demo's document types.
type searchWorld struct {
	db      *store.DB
	clock   *storetest.Clock
	tags    store.TopicRules
	sources map[string]int64
	depts   map[string]int64
	topics  map[string]int64
	// alertable are the releases stored to alert, which are matched.
	alertable map[int64]bool
	n         int
}

func newSearchWorld(t testing.TB) *searchWorld {
	t.Helper()
	ctx := context.Background()
	db, clock := storetest.Open(t, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	w := &searchWorld{db: db, clock: clock, sources: map[string]int64{}, depts: map[string]int64{}, topics: map[string]int64{},
		alertable: map[int64]bool{},
		tags: tags(map[string][]string{
			"trafficking": {"trafficking", "slavery"},
			"flooding":    {"flood", "Flood"},
			"schools":     {"school", "School", "pupils"},
		})}
	for slug, name := range map[string]string{"home-office": "Home Office", "department-for-education": "Department for Education",
		"environment-agency": "Environment Agency", "hm-treasury": "HM Treasury"} {
		d := storetest.Department(t, db, slug, name)
		w.depts[slug] = d.ID
		src, err := db.UpsertSource(ctx, store.Source{Name: slug, URL: "https://" + slug + ".example.org/feed", DepartmentSlug: slug, Format: "auto", Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		w.sources[slug] = src.ID
	}
	for _, slug := range []string{"trafficking", "flooding", "schools"} {
		tp, err := db.UpsertTopic(ctx, store.Topic{Slug: slug, Title: strings.ToUpper(slug[:1]) + slug[1:], Rule: store.Rule{Keywords: []string{slug}}}, w.tags)
		if err != nil {
			t.Fatal(err)
		}
		w.topics[slug] = tp.ID
	}
	// The back catalogue: stored, listed by the search page, never
	// alerted, so never matched.
	w.pull(t, readDemoReleases(t)[:8], "back-")
	return w
}

// entry makes the demo release r into what the pull side stores: HM
// Treasury's come from a GOV.UK search API, with a document type.
func (w *searchWorld) entry(r demoRelease, guid string) store.Entry {
	body := demoBodies[w.n%len(demoBodies)]
	w.n++
	e := store.Entry{GUID: guid, Link: "https://" + r.dept + ".example.org/" + guid, Title: r.title,
		Summary: "<p>" + r.summary + "</p>", PlainSummary: r.summary, Body: "<p>" + body + "</p>", PlainBody: body,
		Categories: r.cats, Published: w.clock.Now().Add(-time.Duration(w.n) * time.Minute)}
	if r.dept == "hm-treasury" {
		e.DocumentType = store.CategoryKey(r.cats[0])
	}
	return e
}

// pull stores rs, each under a GUID starting with prefix, a pull per
// department; the first pull of a source is its back catalogue.
func (w *searchWorld) pull(t testing.TB, rs []demoRelease, prefix string) {
	t.Helper()
	by := map[string][]store.Entry{}
	for i, r := range rs {
		by[r.dept] = append(by[r.dept], w.entry(r, fmt.Sprintf("%s%d", prefix, i)))
	}
	for dept, src := range w.sources {
		res, err := w.db.ApplyPull(context.Background(), src, by[dept], pullWith(w.tags))
		if err != nil {
			t.Fatal(err)
		}
		if res.Alerts > 0 {
			for _, id := range res.NewIDs {
				w.alertable[id] = true
			}
		}
	}
}

// follow stores the search and an active subscription to it.
func (w *searchWorld) follow(t testing.TB, spec store.SearchSpec) store.Search {
	t.Helper()
	s := storetest.Search(t, w.db, spec)
	storetest.Subscribe(t, w.db, fmt.Sprintf("s%d@example.org", s.ID), store.Target{SearchID: s.ID}, store.FrequencyDaily)
	return s
}

// check compares, for every search, the alertable releases the search
// page lists with those matched on arrival.
func (w *searchWorld) check(t testing.TB, searches []store.Search) {
	t.Helper()
	ctx := context.Background()
	for _, s := range searches {
		res, err := w.db.SearchReleases(ctx, store.SearchQuery{Text: s.Query, Department: s.DepartmentSlug, Topic: s.TopicSlug, Type: s.Type, Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		want := []int64{}
		for _, r := range res.Releases {
			if w.alertable[r.ID] {
				want = append(want, r.ID)
			}
		}
		slices.Sort(want)
		got, err := w.db.SearchMatches(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("search %q (department %q, topic %q, type %q): matched on arrival %v, the search page lists %v",
				s.Query, s.DepartmentSlug, s.TopicSlug, s.Type, got, want)
		}
	}
}

// listedQueries are searches someone would type, with the filters of the
// search page.
func listedQueries(w *searchWorld) []store.SearchSpec {
	var out []store.SearchSpec
	for _, q := range []string{"flood", "flood defences", `"flood defences"`, "police*", "trafficking", "Schools", "café", "CAFE",
		"co₂", "co", "ελλάδα", "Αθήνα", "statement", "ſtatement", "zurich", "tax budget", "visa*", "m", "½", "cafe\u0301", "xy",
		"press release", "a*", `"human trafficking" support`, "modern-slavery", "naive facades", "over lined", "Россия"} {
		if n := store.NormalizeSearchText(q); n != "" {
			out = append(out, store.SearchSpec{Query: n})
		}
	}
	out = append(out,
		store.SearchSpec{Query: "flood", DepartmentID: w.depts["environment-agency"]},
		store.SearchSpec{Query: "flood", DepartmentID: w.depts["home-office"]},
		store.SearchSpec{Query: "funding", Type: store.CategoryKey("Press release")},
		store.SearchSpec{Query: "tax", Type: "news_story", DepartmentID: w.depts["hm-treasury"]},
		store.SearchSpec{Query: "victims", TopicID: w.topics["trafficking"]},
		store.SearchSpec{Query: "school*", TopicID: w.topics["schools"], Type: "statistics"},
	)
	return out
}

func TestFollowedSearchesMatchTheSearchPage(t *testing.T) {
	w := newSearchWorld(t)
	var searches []store.Search
	for _, spec := range listedQueries(w) {
		searches = append(searches, w.follow(t, spec))
	}
	// Searches nobody follows (yet, or any more) are not matched.
	pending := storetest.Search(t, w.db, store.SearchSpec{Query: "flood"})
	storetest.Request(t, w.db, "pending@example.org", store.Target{SearchID: pending.ID}, store.FrequencyDaily)
	demo := readDemoReleases(t)
	w.pull(t, demo, "new-")
	w.check(t, searches)
	if got, _ := w.db.SearchMatches(context.Background(), searches[0].ID); len(got) == 0 {
		t.Fatal("nothing matched \"flood\": the comparison proves nothing")
	}

	// Edits: a release that stops matching loses its match; one that
	// starts matching gains it.
	edited := slices.Clone(demo)
	for i := range edited {
		if i%3 == 0 {
			edited[i].title = strings.ReplaceAll(strings.ReplaceAll(edited[i].title, "flood", "drought"), "Flood", "Drought")
		}
		if i%5 == 0 {
			edited[i].summary += " Flood defences and café owners."
		}
	}
	w.n = 1 // other bodies than the first time
	w.pull(t, edited, "new-")
	w.check(t, searches)
}

// randomQuery builds a query from the demo's words: words, prefixes,
// phrases, in any case, with accents, odd punctuation and search
// operators around them, and characters the tokenizers disagree on.
func randomQuery(rng *rand.Rand, words []string, titles []string) string {
	var parts []string
	for range 1 + rng.IntN(3) {
		w := words[rng.IntN(len(words))]
		switch rng.IntN(9) {
		case 0:
			w = strings.ToUpper(w)
		case 1:
			if n := len([]rune(w)); n > 2 {
				w = string([]rune(w)[:1+rng.IntN(n-1)]) + "*"
			}
		case 2:
			f := strings.Fields(titles[rng.IntN(len(titles))])
			if len(f) > 1 {
				i := rng.IntN(len(f) - 1)
				w = `"` + f[i] + " " + f[i+1] + `"`
			}
		case 3:
			w = strings.NewReplacer("e", "é", "a", "à", "o", "ö", "u", "ü").Replace(w)
		case 4:
			w = []string{"(", "-", "^", "NEAR(", `"`, "'", "+", "AND ", "OR ", "NOT "}[rng.IntN(10)] + w + []string{")", ":", "*", "", `"`, ","}[rng.IntN(6)]
		case 5:
			w = w + []string{"²", "₂", "ſ", "\u0301", "\u0305", "-" + words[rng.IntN(len(words))]}[rng.IntN(6)]
		case 6:
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		parts = append(parts, w)
	}
	return strings.Join(parts, " ")
}

// demoWords are the distinct words of the demo releases and bodies.
func demoWords(rs []demoRelease) (words, titles []string) {
	seen := map[string]bool{}
	add := func(s string) {
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
			if f = strings.ToLower(f); !seen[f] {
				seen[f] = true
				words = append(words, f)
			}
		}
	}
	for _, r := range rs {
		add(r.title + " " + r.summary)
		titles = append(titles, r.title)
	}
	for _, b := range demoBodies {
		add(b)
	}
	return words, titles
}

func TestRandomFollowedSearchesMatchTheSearchPage(t *testing.T) {
	w := newSearchWorld(t)
	demo := readDemoReleases(t)
	words, titles := demoWords(demo)
	rng := rand.New(rand.NewPCG(13, 2026))
	depts := []string{"", "", "", "home-office", "environment-agency", "hm-treasury"}
	types := []string{"", "", "", "", "press_release", "News story", "statistics", "Crime"}
	topics := []string{"", "", "", "", "", "trafficking", "flooding", "schools"}
	var searches []store.Search
	seen := map[string]bool{}
	for len(searches) < 250 {
		q := store.NormalizeSearchText(randomQuery(rng, words, titles))
		spec := store.SearchSpec{Query: q, DepartmentID: w.depts[depts[rng.IntN(len(depts))]],
			Type: store.CategoryKey(types[rng.IntN(len(types))]), TopicID: w.topics[topics[rng.IntN(len(topics))]]}
		key := fmt.Sprint(spec)
		if q == "" || seen[key] {
			continue
		}
		seen[key] = true
		searches = append(searches, w.follow(t, spec))
	}
	w.pull(t, demo, "new-")
	w.check(t, searches)
	matched := 0
	for _, s := range searches {
		if got, _ := w.db.SearchMatches(context.Background(), s.ID); len(got) > 0 {
			matched++
		}
	}
	if matched < 25 {
		t.Errorf("only %d of %d random searches matched anything: the comparison proves little", matched, len(searches))
	}
}

// FuzzFollowedSearch follows one fuzzed search at a time and stores the
// demo's releases again: what it matched on arrival must be what the
// search page lists.
//
//	go test -run '^$' -fuzz FuzzFollowedSearch ./store/
func FuzzFollowedSearch(f *testing.F) {
	for _, q := range []string{"flood", `"human trafficking"`, "polic*", "CAFÉ ²", "ſtatement", "co₂", "Ελλάδα", `"unbalanced AND (`,
		"x\u0305y", "a* b* c*", "NEAR(flood schools)", "-", "m²"} {
		f.Add(q)
	}
	w := newSearchWorld(f)
	demo := readDemoReleases(f)
	round := 0
	f.Fuzz(func(t *testing.T, text string) {
		q := store.NormalizeSearchText(text)
		if q == "" || store.SearchTermCount(text) > store.SearchMaxTerms || len(text) > store.SearchMaxBytes {
			return
		}
		s := w.follow(t, store.SearchSpec{Query: q})
		round++
		before := w.alertable
		w.alertable = map[int64]bool{}
		w.pull(t, demo, fmt.Sprintf("fuzz-%d-", round))
		w.check(t, []store.Search{s})
		for id := range before {
			w.alertable[id] = true
		}
	})
}

func TestNormalizeSearchText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Flood  Defences", "flood defences"},
		{`"Flood defences" POLICE*`, `"flood defences" police*`},
		{`"flood"`, "flood"},
		{"flood-defences", `"flood defences"`},
		{"NEAR(a b) OR title:x", `"near a" b or "title x"`},
		{"CAFÉ", "café"},
		{"ΑΘΉΝΑ", "ΑΘΉΝΑ"}, // Greek is not lowered: the engines fold it their own ways
		{"!!! ???", ""},
		{`"unbalanced`, "unbalanced"},
	} {
		if got := store.NormalizeSearchText(tc.in); got != tc.want {
			t.Errorf("NormalizeSearchText(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if again := store.NormalizeSearchText(tc.want); again != tc.want {
			t.Errorf("NormalizeSearchText(%q) = %q: not stable", tc.want, again)
		}
	}
}

// FuzzNormalizeSearchText: normalising twice changes nothing.
func FuzzNormalizeSearchText(f *testing.F) {
	for _, s := range []string{"Flood defences", `"a b" c*`, "x\u0305y", "ǅ İstanbul", "co₂"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if store.SearchTermCount(s) > store.SearchMaxTerms || len(s) > store.SearchMaxBytes/2 {
			return
		}
		n := store.NormalizeSearchText(s)
		if again := store.NormalizeSearchText(n); again != n {
			t.Errorf("NormalizeSearchText(%q) = %q, and again %q", s, n, again)
		}
	})
}

// Go tokenizes text of searchSafe characters exactly as SQLite's FTS5
// does: each such character alone, between letters and beside them.
func TestSearchSafeAgreesWithFTS5(t *testing.T) {
	storetest.SQLiteOnly(t, "the characters on which Go and SQLite's FTS5 tokenizer agree")
	db, _ := storetest.Open(t, time.Now())
	ctx := context.Background()
	n := 0
	for r := rune(1); r < 0x2100; r++ {
		if !store.SearchSafe(r) {
			continue
		}
		n++
		for _, form := range []string{"%c", "q%cq", "q%c", "%cq", "é%cé", "%c%c"} {
			text := strings.ReplaceAll(form, "%c", string(r))
			want, err := db.ScratchTokens(ctx, text)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(want)
			if got := store.GoTokens(text); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("%U in %q: Go reads %q, FTS5 %q", r, text, got, want)
			}
		}
	}
	if n < 800 {
		t.Errorf("only %d characters are safe", n)
	}
}
