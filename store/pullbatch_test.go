package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"herald/store"
)

// TestApplyPullInBatches pulls more entries than one multi-row statement
// carries (full batches and a tail of several sizes), then edits entries
// spread over those batches, and checks that every release, tag and
// search entry is where one statement per entry would have put it.
func TestApplyPullInBatches(t *testing.T) {
	db, now := openTest(t)
	ctx := context.Background()
	src := seed(t, db)
	const n = 601
	pub := now.Add(-1000 * time.Hour)
	entry := func(i int, word string) store.Entry {
		title := fmt.Sprintf("Release %d about %s", i, word)
		if i%2 == 0 {
			title += " and human trafficking"
		}
		return store.Entry{GUID: fmt.Sprintf("g-%d", i), Link: fmt.Sprintf("https://example.org/%d", i), Title: title,
			Summary: "<p>" + title + "</p>", PlainSummary: title, PlainBody: "body " + word,
			Categories: []string{"News", fmt.Sprintf("Label %d", i%3)}, Published: pub.Add(time.Duration(i) * time.Minute)}
	}
	var entries []store.Entry
	for i := range n {
		entries = append(entries, entry(i, "harbours"))
	}
	// A repeated id: the first stays. An id PostgreSQL cannot hold as it
	// is (it drops the NUL) is stored, and found again by the next pull.
	entries = append(entries, entry(0, "ignored"), store.Entry{GUID: "odd\x00id", Title: "Odd id", Published: pub,
		Categories: []string{`Tags <&> "quoted"`, "Éire", "line\u2028break"}})
	trafficking := tags(map[string][]string{"human-trafficking": {"human trafficking"}})
	res, err := db.ApplyPull(ctx, src.ID, entries, pullWith(trafficking))
	if err != nil {
		t.Fatal(err)
	}
	if res.New != n+1 || res.Updated != 0 || len(res.NewIDs) != n+1 || !slices.IsSorted(res.NewIDs) {
		t.Fatalf("first pull: %d new, %d updated, %d new ids (sorted: %v), want %d new ids in feed order",
			res.New, res.Updated, len(res.NewIDs), slices.IsSorted(res.NewIDs), n+1)
	}
	slices.Sort(res.Feeds)
	if want := []string{"all", "department:home-office", "topic:human-trafficking"}; !slices.Equal(res.Feeds, want) {
		t.Fatalf("dirty feeds = %v, want %v", res.Feeds, want)
	}
	tagged, err := db.Releases(ctx, store.ReleaseFilter{Topic: "human-trafficking", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(tagged) != (n+1)/2 {
		t.Fatalf("%d releases tagged, want %d", len(tagged), (n+1)/2)
	}
	all, err := db.Releases(ctx, store.ReleaseFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var oddRelease store.Release
	for _, r := range all {
		if r.Title == "Odd id" {
			oddRelease = r
		}
	}
	if want := []string{`Tags <&> "quoted"`, "Éire", "line\u2028break"}; !slices.Equal(oddRelease.Categories, want) {
		t.Fatalf("categories = %q, want %q", oddRelease.Categories, want)
	}

	// Every third entry edited: the even ones among them leave the topic.
	*now = now.Add(time.Hour)
	var again []store.Entry
	edited := 0
	for i := range n {
		e := entry(i, "harbours")
		if i%3 == 0 {
			e = entry(i, "ferries")
			e.Title = fmt.Sprintf("Release %d about ferries", i)
			e.PlainSummary = e.Title
			edited++
		}
		again = append(again, e)
	}
	again = append(again, store.Entry{GUID: "odd\x00id", Title: "Odd id", Published: pub,
		Categories: []string{`Tags <&> "quoted"`, "Éire", "line\u2028break"}}, entry(n, "harbours"))
	res, err = db.ApplyPull(ctx, src.ID, again, pullWith(trafficking))
	if err != nil {
		t.Fatal(err)
	}
	if res.New != 1 || res.Updated != edited || res.Unchanged != n-edited+1 || res.Alerts != 1 {
		t.Fatalf("second pull = %d new, %d updated, %d unchanged, %d alerts; want 1, %d, %d, 1",
			res.New, res.Updated, res.Unchanged, res.Alerts, edited, n-edited+1)
	}
	slices.Sort(res.Feeds)
	if want := []string{"all", "department:home-office", "topic:human-trafficking"}; !slices.Equal(res.Feeds, want) {
		t.Fatalf("dirty feeds = %v, want %v", res.Feeds, want)
	}
	tagged, err = db.Releases(ctx, store.ReleaseFilter{Topic: "human-trafficking", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for i := range n + 1 {
		if i%2 == 0 && i%6 != 0 {
			want++
		}
	}
	if len(tagged) != want {
		t.Fatalf("%d releases tagged after the edits, want %d", len(tagged), want)
	}
	for word, hits := range map[string]int{"ferries": edited, "harbours": n + 1 - edited} {
		found, err := db.SearchReleases(ctx, store.SearchQuery{Text: word})
		if err != nil {
			t.Fatal(err)
		}
		if found.Total != hits {
			t.Errorf("search %q finds %d releases, want %d", word, found.Total, hits)
		}
	}
}

// FuzzEncodeCategories: categories are stored as json.Marshal writes them.
func FuzzEncodeCategories(f *testing.F) {
	f.Add("News", "Press release")
	f.Add(`<b>&"x"\\`, "Éire\u2028")
	f.Add("\x00\x7f", "\xff")
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, cats := range [][]string{{}, {a}, {a, b}} {
			want, _ := json.Marshal(cats)
			if got := store.EncodeCategories(cats); got != string(want) {
				t.Fatalf("EncodeCategories(%q) = %s, want %s", cats, got, want)
			}
		}
	})
}
