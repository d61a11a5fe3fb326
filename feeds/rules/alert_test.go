package rules_test

import (
	"context"
	"testing"
	"time"

	"herald/feeds/rules"
	"herald/store"
	"herald/store/storetest"
)

func TestAlertNew(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		maxAge time.Duration
		n      store.NewRelease
		want   bool
	}{
		{"fresh release", 0, store.NewRelease{Published: now.Add(-time.Hour), Now: now}, true},
		{"back catalogue", 0, store.NewRelease{BackCatalogue: true, Published: now, Now: now}, false},
		{"exactly 48 hours old", 0, store.NewRelease{Published: now.Add(-48 * time.Hour), Now: now}, true},
		{"older than 48 hours", 0, store.NewRelease{Published: now.Add(-48*time.Hour - time.Second), Now: now}, false},
		{"within a configured age", 72 * time.Hour, store.NewRelease{Published: now.Add(-60 * time.Hour), Now: now}, true},
		{"past a configured age", time.Hour, store.NewRelease{Published: now.Add(-2 * time.Hour), Now: now}, false},
	}
	for _, tc := range tests {
		if got := rules.AlertNew(tc.maxAge)(tc.n); got != tc.want {
			t.Errorf("%s: AlertNew(%v)(%+v) = %v, want %v", tc.name, tc.maxAge, tc.n, got, tc.want)
		}
	}
}

func TestRealert(t *testing.T) {
	v1 := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	old := store.Edit{Title: "Visa fees", MajorVersionAt: v1}
	tests := []struct {
		name string
		old  store.Edit
		e    store.Entry
		want bool
	}{
		{"minor correction", old, store.Entry{Title: "Visa fees", Summary: "Corrected.", MajorVersionAt: v1}, false},
		{"title changed", old, store.Entry{Title: "Visa fees rise", MajorVersionAt: v1}, true},
		{"flagged major change", old, store.Entry{Title: "Visa fees", MajorChange: true}, true},
		{"major-version time moved on", old, store.Entry{Title: "Visa fees", MajorVersionAt: v1.Add(time.Minute)}, true},
		{"major-version time moved back", old, store.Entry{Title: "Visa fees", MajorVersionAt: v1.Add(-time.Minute)}, false},
		{"first major-version time", store.Edit{Title: "Visa fees"}, store.Entry{Title: "Visa fees", MajorVersionAt: v1}, false},
	}
	for _, tc := range tests {
		if got := rules.Realert(tc.old, tc.e); got != tc.want {
			t.Errorf("%s: Realert = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestMajorVersionRealerts: with Herald's rules, an upstream major-change
// time that moves is announced again once; minor edits and repeated pulls
// are not.
func TestMajorVersionRealerts(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, storetest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UTC().Truncate(time.Second) // the store keeps times to the microsecond
	if _, err := db.UpsertDepartment(ctx, store.Department{Slug: "home-office", Name: "Home Office"}); err != nil {
		t.Fatal(err)
	}
	src, err := db.UpsertSource(ctx, store.Source{Name: "home-office", URL: "https://example.org/ho.atom", DepartmentSlug: "home-office", Format: "auto", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	opt := store.PullOptions{Topics: &rules.Topics{}, Alert: rules.AlertNew(0), Realert: rules.Realert}
	if _, err := db.ApplyPull(ctx, src.ID, nil, opt); err != nil { // back catalogue: nothing
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
		res, err := db.ApplyPull(ctx, src.ID, []store.Entry{e}, opt)
		if err != nil {
			t.Fatal(err)
		}
		if res.Alerts != s.alerts {
			t.Errorf("%s: %d alerts, want %d (%+v)", s.name, res.Alerts, s.alerts, res)
		}
	}
}
