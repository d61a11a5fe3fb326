package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"herald/store"
	"herald/store/storetest"
)

// agePlainText turns a database made by this version into one as Herald
// left it before migration 0008: no plain text column, the search index
// fed by a trigger calling a tag-stripping SQL function the store no longer
// has, and the index holding what that function made of the HTML.
func agePlainText(t *testing.T, path string, oldIndex map[int64][3]string) {
	t.Helper()
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`DELETE FROM schema_migrations WHERE name = '0008_plain_text.sql'`,
		`DROP INDEX releases_plain_pending`,
		`ALTER TABLE releases DROP COLUMN plain_summary`,
		`DELETE FROM releases_fts`,
		`CREATE TRIGGER releases_fts_update AFTER UPDATE OF title, summary, body ON releases BEGIN
			DELETE FROM releases_fts WHERE rowid = old.id;
			INSERT INTO releases_fts (rowid, title, summary, body)
			VALUES (new.id, new.title, herald_strip_tags(new.summary), herald_strip_tags(new.body));
		END`,
	} {
		if _, err := db.SQL().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for id, doc := range oldIndex {
		if _, err := db.SQL().Exec(`INSERT INTO releases_fts (rowid, title, summary, body) VALUES (?, ?, ?, ?)`,
			id, doc[0], doc[1], doc[2]); err != nil {
			t.Fatal(err)
		}
	}
}

func searchTitles(t *testing.T, db *store.DB, q string) []string {
	t.Helper()
	res, err := db.SearchReleases(context.Background(), store.SearchQuery{Text: q})
	if err != nil {
		t.Fatal(err)
	}
	return titles(res.Releases)
}

// TestPlainTextMigration: a database from before the store kept plain text
// opens, edits no longer reach the dropped trigger, and once the pull side
// supplies the text of the old releases, topic rules and search see it and
// the old index entries are gone.
func TestPlainTextMigration(t *testing.T) {
	storetest.SQLiteOnly(t, "PostgreSQL databases start at the schema with plain text")
	ctx := context.Background()
	path := storetest.Database(t)
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	src := seed(t, db)
	published := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	entries := []store.Entry{
		{GUID: "1", Title: "Ferry checks", Summary: "<p>Officers check <b>lorries</b>.</p>", Published: published},
		{GUID: "2", Title: "Harbour review", Summary: "<p>On modern <i>slavery</i>.</p>", Body: "<p>Full report.</p>", Published: published},
		{GUID: "3", Title: "Visa fees", Summary: "<p>Fees change.</p>", Published: published},
	}
	if _, err := db.ApplyPull(ctx, src.ID, entries, pullWith(tags(nil))); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// What the old index held: every tag a space, so "lorries" was found
	// and "obsolete" stands for a word the new text no longer has.
	agePlainText(t, path, map[int64][3]string{
		1: {"Ferry checks", " Officers check  lorries . ", ""},
		2: {"Harbour review", " On modern  slavery . obsolete", " Full report. "},
		3: {"Visa fees", " Fees change. ", ""},
	})

	db, err = store.Open(ctx, path)
	if err != nil {
		t.Fatalf("open after 0008: %v", err)
	}
	defer db.Close()
	if got := searchTitles(t, db, "obsolete"); !slices.Equal(got, []string{"Harbour review"}) {
		t.Fatalf("before the text is supplied, search = %q, want the old index", got)
	}
	// An edit is indexed by ApplyPull; through the old trigger it would fail.
	entries[2].Title, entries[2].PlainSummary = "Visa fees rise", "Fees change."
	if _, err := db.ApplyPull(ctx, src.ID, entries[2:], pullWith(tags(nil))); err != nil {
		t.Fatalf("edit after 0008: %v", err)
	}

	pending, err := db.ReleasesWithoutPlainText(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var guids []string
	for _, r := range pending {
		guids = append(guids, r.GUID)
	}
	if !slices.Equal(guids, []string{"1", "2"}) {
		t.Fatalf("releases without plain text = %v, want 1 and 2 (3 was edited with its text)", guids)
	}
	all, err := db.Releases(ctx, store.ReleaseFilter{})
	if err != nil {
		t.Fatal(err)
	}
	edited := all[slices.IndexFunc(all, func(r store.Release) bool { return r.GUID == "3" })]
	texts := []store.PlainText{
		{ReleaseID: pending[0].ID, Summary: "Officers check lorries."},
		{ReleaseID: pending[1].ID, Summary: "On modern slavery.", Body: "Full report."},
		// Text made from what was listed before an edit: the edit's own wins.
		{ReleaseID: edited.ID, Summary: "stale words"},
	}
	if err := db.SetPlainText(ctx, texts); err != nil {
		t.Fatal(err)
	}
	if pending, err := db.ReleasesWithoutPlainText(ctx, 10); err != nil || len(pending) != 0 {
		t.Fatalf("after SetPlainText, %d releases lack text (%v)", len(pending), err)
	}
	for q, want := range map[string][]string{
		"obsolete": nil,
		"lorries":  {"Ferry checks"},
		"report":   {"Harbour review"},
		"stale":    nil,
		"rise":     {"Visa fees rise"},
	} {
		if got := searchTitles(t, db, q); !slices.Equal(got, want) {
			t.Errorf("search %q = %q, want %q", q, got, want)
		}
	}
	// A topic saved now matches the old release by its summary's text.
	slavery := tags(map[string][]string{"slavery": {"modern slavery"}})
	if _, err := db.UpsertTopic(ctx, store.Topic{Slug: "slavery", Title: "Slavery", Rule: store.Rule{Keywords: []string{"modern slavery"}}}, slavery); err != nil {
		t.Fatal(err)
	}
	rs, err := db.Releases(ctx, store.ReleaseFilter{Topic: "slavery"})
	if err != nil || len(rs) != 1 || rs[0].Title != "Harbour review" {
		t.Fatalf("topic slavery = %v (%v), want Harbour review", titles(rs), err)
	}
}

// TestApplyPullIndexesPlainText: the store indexes and matches the plain
// text it is given, for new releases and edits alike.
func TestApplyPullIndexesPlainText(t *testing.T) {
	db, now := openTest(t)
	ctx := context.Background()
	src := seed(t, db)
	trafficking := tags(map[string][]string{"human-trafficking": {"modern slavery"}})
	e := store.Entry{GUID: "1", Title: "Joint action", Summary: "<p>On <b>modern</b> slavery</p>",
		PlainSummary: "On modern slavery", PlainBody: "Ministers met in London.", Published: *now}
	if _, err := db.ApplyPull(ctx, src.ID, []store.Entry{e}, pullWith(trafficking)); err != nil {
		t.Fatal(err)
	}
	rs, err := db.Releases(ctx, store.ReleaseFilter{Topic: "human-trafficking"})
	if err != nil || len(rs) != 1 {
		t.Fatalf("topic releases = %v (%v), want the release matched by its summary's text", titles(rs), err)
	}
	if got := searchTitles(t, db, "london"); !slices.Equal(got, []string{"Joint action"}) {
		t.Fatalf("search london = %q", got)
	}
	e.Body, e.PlainBody = "<p>They met in Bucharest.</p>", "They met in Bucharest."
	if _, err := db.ApplyPull(ctx, src.ID, []store.Entry{e}, pullWith(trafficking)); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string][]string{"london": nil, "bucharest": {"Joint action"}} {
		if got := searchTitles(t, db, q); !slices.Equal(got, want) {
			t.Errorf("after the edit, search %q = %q, want %q", q, got, want)
		}
	}
}
