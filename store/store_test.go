package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"herald/feeds/rules"
	"herald/store"
)

// openTest opens a fresh database file with a clock the test controls.
func openTest(t *testing.T) (*store.DB, *time.Time) {
	t.Helper()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "herald.db"), store.WithClock(func() time.Time { return now }))
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
		Rule: store.Rule{Departments: []string{"home-office"}, Keywords: []string{"trafficking", "modern slavery"}}}, &rules.Topics{})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestMigrationsAreIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
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
	res, err := db.ApplyPull(ctx, src.ID, entries, store.PullOptions{Topics: &rules.Topics{}, Realert: rules.Realert, ETag: `"v1"`})
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
	res, err = db.ApplyPull(ctx, src.ID, entries, store.PullOptions{Topics: &rules.Topics{}, Realert: rules.Realert})
	if err != nil {
		t.Fatal(err)
	}
	if res.New != 0 || res.Updated != 0 || res.Unchanged != 2 || len(res.Feeds) != 0 {
		t.Fatalf("second pull = %+v, want 2 unchanged", res)
	}
	*now = now.Add(time.Hour)
	edited := []store.Entry{entries[0], {GUID: "c", Link: "https://example.org/c", Title: "Modern slavery statement", Published: now.Add(-time.Minute)}}
	edited[0].Summary = "<p>Joint action, corrected.</p>"
	res, err = db.ApplyPull(ctx, src.ID, edited, store.PullOptions{Topics: &rules.Topics{}, Realert: rules.Realert})
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
	}, store.PullOptions{Topics: &rules.Topics{}, Realert: rules.Realert})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpsertTopic(ctx, store.Topic{Slug: "borders", Title: "Borders", Rule: store.Rule{Keywords: []string{"border"}}}, &rules.Topics{}); err != nil {
		t.Fatal(err)
	}
	rs, _ := db.Releases(ctx, store.ReleaseFilter{Topic: "borders"})
	if len(rs) != 1 || rs[0].GUID != "1" {
		t.Fatalf("borders = %v, want only the whole-word match", rs)
	}
	if _, err := db.CreateTopic(ctx, store.Topic{Slug: "borders", Title: "Again", Rule: store.Rule{Keywords: []string{"x"}}}, &rules.Topics{}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("create duplicate = %v, want ErrConflict", err)
	}
}

// TestPullSeesTopicChanges guards the compiled-rules cache: a topic saved
// between two pulls (at the same clock reading) applies to the second.
func TestPullSeesTopicChanges(t *testing.T) {
	db, now := openTest(t)
	ctx := context.Background()
	src := seed(t, db)
	if _, err := db.ApplyPull(ctx, src.ID, []store.Entry{{GUID: "1", Title: "Canal repairs", Published: *now}}, store.PullOptions{Topics: &rules.Topics{}, Realert: rules.Realert}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpsertTopic(ctx, store.Topic{Slug: "waterways", Title: "Waterways", Rule: store.Rule{Keywords: []string{"canal", "river"}}}, &rules.Topics{}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplyPull(ctx, src.ID, []store.Entry{{GUID: "2", Title: "River levels", Published: *now}}, store.PullOptions{Topics: &rules.Topics{}, Realert: rules.Realert}); err != nil {
		t.Fatal(err)
	}
	if err := db.RetireTopic(ctx, "waterways"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplyPull(ctx, src.ID, []store.Entry{{GUID: "3", Title: "River crossings", Published: *now}}, store.PullOptions{Topics: &rules.Topics{}, Realert: rules.Realert}); err != nil {
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
	path := filepath.Join(t.TempDir(), "h.db")
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

// TestMajorVersionRealerts: an upstream major-change time that moves is
// announced again once; minor edits and repeated pulls are not.
func TestMajorVersionRealerts(t *testing.T) {
	db, now := openTest(t)
	ctx := context.Background()
	src := seed(t, db)
	if _, err := db.ApplyPull(ctx, src.ID, nil, store.PullOptions{Topics: &rules.Topics{}, Realert: rules.Realert}); err != nil { // back catalogue: nothing
		t.Fatal(err)
	}
	v1 := now.Add(-time.Hour)
	e := store.Entry{GUID: "g", Title: "Visa fees", Summary: "Fees change.", Published: v1, MajorVersionAt: v1}
	steps := []struct {
		name   string
		edit   func(*store.Entry)
		alerts int
	}{
		{"new", func(*store.Entry) {}, 1},
		{"same again", func(*store.Entry) {}, 0},
		{"minor correction", func(e *store.Entry) { e.Summary = "Fees change in April." }, 0},
		{"major change", func(e *store.Entry) { e.MajorVersionAt = v1.Add(30 * time.Minute) }, 1},
		{"same major again", func(*store.Entry) {}, 0},
	}
	for _, s := range steps {
		s.edit(&e)
		res, err := db.ApplyPull(ctx, src.ID, []store.Entry{e}, store.PullOptions{Topics: &rules.Topics{}, Realert: rules.Realert})
		if err != nil {
			t.Fatal(err)
		}
		if res.Alerts != s.alerts {
			t.Errorf("%s: %d alerts, want %d (%+v)", s.name, res.Alerts, s.alerts, res)
		}
	}
}
