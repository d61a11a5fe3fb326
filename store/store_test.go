package store_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"herald/store"
	"herald/store/storetest"
)

// openTest opens a fresh database file with a clock the test controls.
func openTest(t *testing.T) (*store.DB, *time.Time) {
	t.Helper()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	db, err := store.Open(context.Background(), storetest.Database(t), store.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, &now
}

func seed(t *testing.T, db *store.DB) store.Source {
	t.Helper()
	ctx := context.Background()
	if _, err := db.UpsertDepartment(ctx, store.Department{Slug: "home-office", Name: "Home Office"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpsertDepartment(ctx, store.Department{Slug: "treasury", Name: "Treasury"}); err != nil {
		t.Fatal(err)
	}
	src, err := db.UpsertSource(ctx, store.Source{Name: "home-office", URL: "https://example.org/ho.atom", DepartmentSlug: "home-office", Format: "auto", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.UpsertTopic(ctx, store.Topic{Slug: "human-trafficking", Title: "Human trafficking",
		Rule: store.Rule{Departments: []string{"home-office"}, Keywords: []string{"trafficking", "modern slavery"}}}, tags(nil))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestMigrationsAreIdempotent(t *testing.T) {
	path := storetest.Database(t)
	for i := 0; i < 2; i++ {
		db, err := store.Open(context.Background(), path)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		db.Close()
	}
}

func TestApplyPullDedupesAndTracksEdits(t *testing.T) {
	db, now := openTest(t)
	ctx := context.Background()
	src := seed(t, db)
	pub := now.Add(-time.Hour)
	entries := []store.Entry{
		{GUID: "a", Link: "https://example.org/a", Title: "Partners pledge to tackle human trafficking", Summary: "<p>Joint action.</p>", Published: pub},
		{GUID: "b", Link: "https://example.org/b", Title: "New passport fees", Summary: "Fees change.", Published: pub.Add(time.Minute)},
		{GUID: "a", Link: "https://example.org/a-dup", Title: "Duplicate id in the same feed", Published: pub},
	}
	trafficking := tags(map[string][]string{"human-trafficking": {"human trafficking", "Modern slavery"}})
	opt := pullWith(trafficking)
	opt.ETag = `"v1"`
	res, err := db.ApplyPull(ctx, src.ID, entries, opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.New != 2 || res.Updated != 0 || res.Alerts != 0 {
		t.Fatalf("first pull = %+v, want 2 new and no alerts (back catalogue)", res)
	}
	slices.Sort(res.Feeds)
	if want := []string{"all", "department:home-office", "topic:human-trafficking"}; !slices.Equal(res.Feeds, want) {
		t.Fatalf("dirty feeds = %v, want %v", res.Feeds, want)
	}
	res, err = db.ApplyPull(ctx, src.ID, entries, pullWith(trafficking))
	if err != nil {
		t.Fatal(err)
	}
	if res.New != 0 || res.Updated != 0 || res.Unchanged != 2 || len(res.Feeds) != 0 {
		t.Fatalf("second pull = %+v, want 2 unchanged", res)
	}
	*now = now.Add(time.Hour)
	edited := []store.Entry{entries[0], {GUID: "c", Link: "https://example.org/c", Title: "Modern slavery statement", Published: now.Add(-time.Minute)}}
	edited[0].Summary = "<p>Joint action, corrected.</p>"
	res, err = db.ApplyPull(ctx, src.ID, edited, pullWith(trafficking))
	if err != nil {
		t.Fatal(err)
	}
	if res.New != 1 || res.Updated != 1 || res.Alerts != 1 {
		t.Fatalf("third pull = %+v, want 1 new alertable and 1 silent edit", res)
	}
	rs, err := db.Releases(ctx, store.ReleaseFilter{Topic: "human-trafficking", WithTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].GUID != "c" || rs[1].GUID != "a" {
		t.Fatalf("topic releases = %v", rs)
	}
	if rs[1].EditCount != 1 || !rs[1].Published.Equal(pub) || !rs[1].Updated.After(pub) {
		t.Fatalf("edited release = %+v, want published kept and updated moved", rs[1])
	}
	if !slices.Equal(rs[0].Topics, []string{"human-trafficking"}) {
		t.Fatalf("topics = %v", rs[0].Topics)
	}
}

func TestTopicRetagsArchive(t *testing.T) {
	db, now := openTest(t)
	ctx := context.Background()
	src := seed(t, db)
	_, err := db.ApplyPull(ctx, src.ID, []store.Entry{
		{GUID: "1", Title: "Border security funding", Published: *now},
		{GUID: "2", Title: "Borderline case reviewed", Published: *now},
	}, pullWith(tags(nil)))
	if err != nil {
		t.Fatal(err)
	}
	borders := tags(map[string][]string{"borders": {"Border security"}})
	if _, err := db.UpsertTopic(ctx, store.Topic{Slug: "borders", Title: "Borders", Rule: store.Rule{Keywords: []string{"border"}}}, borders); err != nil {
		t.Fatal(err)
	}
	rs, _ := db.Releases(ctx, store.ReleaseFilter{Topic: "borders"})
	if len(rs) != 1 || rs[0].GUID != "1" {
		t.Fatalf("borders = %v, want only the release its rule matches", rs)
	}
	if _, err := db.CreateTopic(ctx, store.Topic{Slug: "borders", Title: "Again", Rule: store.Rule{Keywords: []string{"x"}}}, borders); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("create duplicate = %v, want ErrConflict", err)
	}
}

// TestPullSeesTopicChanges guards the compiled-rules cache: a topic saved
// between two pulls (at the same clock reading) applies to the second.
func TestPullSeesTopicChanges(t *testing.T) {
	db, now := openTest(t)
	ctx := context.Background()
	src := seed(t, db)
	waterways := tags(map[string][]string{"waterways": {"Canal", "River"}})
	if _, err := db.ApplyPull(ctx, src.ID, []store.Entry{{GUID: "1", Title: "Canal repairs", Published: *now}}, pullWith(waterways)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpsertTopic(ctx, store.Topic{Slug: "waterways", Title: "Waterways", Rule: store.Rule{Keywords: []string{"canal", "river"}}}, waterways); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplyPull(ctx, src.ID, []store.Entry{{GUID: "2", Title: "River levels", Published: *now}}, pullWith(waterways)); err != nil {
		t.Fatal(err)
	}
	if err := db.RetireTopic(ctx, "waterways"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplyPull(ctx, src.ID, []store.Entry{{GUID: "3", Title: "River crossings", Published: *now}}, pullWith(waterways)); err != nil {
		t.Fatal(err)
	}
	rs, err := db.Releases(ctx, store.ReleaseFilter{Topic: "waterways"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs {
		got = append(got, r.GUID)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"1", "2"}) {
		t.Fatalf("waterways releases = %v, want 1 (re-tag) and 2 (pulled after creation), not 3 (after retirement)", got)
	}
}

func TestOpenRefusesANewerDatabase(t *testing.T) {
	path := storetest.Database(t)
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().Exec(`INSERT INTO schema_migrations (name, applied_at) VALUES ('9999_future.sql', '')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := store.Open(context.Background(), path); err == nil || !strings.Contains(err.Error(), "newer Herald") {
		t.Fatalf("open = %v, want a refusal naming the newer version", err)
	}
}

// TestApplyPullAsksTheAlertPolicy: the store hands the alert policy what
// it knows (the back catalogue, the publication date as stored, the pull's
// time, the stored title and major version of an edit) and records its
// answers.
func TestApplyPullAsksTheAlertPolicy(t *testing.T) {
	db, now := openTest(t)
	ctx := context.Background()
	src := seed(t, db)
	var asked []store.NewRelease
	var edits []store.Edit
	opt := store.PullOptions{
		Alert: func(n store.NewRelease) bool {
			asked = append(asked, n)
			return n.Published.Equal(n.Now)
		},
		Realert: func(old store.Edit, e store.Entry) bool {
			edits = append(edits, old)
			return true
		},
	}
	major := now.Add(-2 * time.Hour)
	if _, err := db.ApplyPull(ctx, src.ID, []store.Entry{{GUID: "old", Title: "Old", MajorVersionAt: major}}, opt); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(time.Hour)
	past := now.Add(-time.Hour)
	res, err := db.ApplyPull(ctx, src.ID, []store.Entry{
		{GUID: "undated", Title: "Undated"},
		{GUID: "future", Title: "Future", Published: now.Add(25 * time.Hour)},
		{GUID: "past", Title: "Past", Published: past},
		{GUID: "old", Title: "Old, edited", MajorVersionAt: major},
	}, opt)
	if err != nil {
		t.Fatal(err)
	}
	first := now.Add(-time.Hour)
	want := []store.NewRelease{
		{BackCatalogue: true, Published: first, Now: first},
		{Published: *now, Now: *now},
		{Published: *now, Now: *now},
		{Published: past, Now: *now},
	}
	if !slices.EqualFunc(asked, want, func(a, b store.NewRelease) bool {
		return a.BackCatalogue == b.BackCatalogue && a.Published.Equal(b.Published) && a.Now.Equal(b.Now)
	}) {
		t.Fatalf("the policy was asked about %+v, want %+v", asked, want)
	}
	// The back catalogue's release was alertable (the policy said so), so
	// its edit is put to Realert with what was stored.
	if len(edits) != 1 || edits[0].Title != "Old" || !edits[0].MajorVersionAt.Equal(major) {
		t.Fatalf("Realert was asked about %+v, want the stored title and major version", edits)
	}
	if res.New != 3 || res.Alerts != 3 {
		t.Fatalf("second pull = %+v, want 3 new, of which 2 alert, and 1 edit announced again", res)
	}
	rs, err := db.Releases(ctx, store.ReleaseFilter{})
	if err != nil {
		t.Fatal(err)
	}
	alertable := map[string]bool{}
	for _, r := range rs {
		alertable[r.GUID] = r.Alertable
	}
	if wantA := map[string]bool{"old": true, "undated": true, "future": true, "past": false}; !maps.Equal(alertable, wantA) {
		t.Fatalf("alertable = %v, want %v", alertable, wantA)
	}
}

// TestLookupsOfUnstorableText: a lookup by text PostgreSQL cannot hold
// (bytes that are not UTF-8, a NUL) finds nothing on both engines rather
// than failing the statement, which made such a page a 500.
func TestLookupsOfUnstorableText(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	for _, s := range []string{"\xff\xfe", "home\x00office"} {
		if _, err := db.DepartmentBySlug(ctx, s); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("department %q: %v, want ErrNotFound", s, err)
		}
		if _, err := db.TopicBySlug(ctx, s); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("topic %q: %v, want ErrNotFound", s, err)
		}
		if _, err := db.SourceByName(ctx, s); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("source %q: %v, want ErrNotFound", s, err)
		}
		if _, err := db.SubscriberByAddress(ctx, s); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("subscriber %q: %v, want ErrNotFound", s, err)
		}
	}
}
