package admin_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"herald/feeds/rules"
	"herald/store"
	"herald/store/storetest"
	"herald/web/admin"
)

// testService is the admin operations over a real store with one
// department, one source and two releases.
func testService(t *testing.T) (*admin.Service, *store.DB) {
	t.Helper()
	ctx := context.Background()
	db, clock := storetest.Open(t, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	now := clock.Now()
	ops := admin.New(db)
	if _, err := ops.CreateDepartment(ctx, admin.DepartmentInput{Slug: "home-office", Name: "Home Office"}); err != nil {
		t.Fatal(err)
	}
	src, err := ops.CreateSource(ctx, admin.SourceInput{Name: "ho-news", URL: "https://news.example.org/ho.atom", Department: "home-office"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ApplyPull(ctx, src.ID, []store.Entry{
		{GUID: "1", Link: "https://news.example.org/1", Title: "Partners pledge to tackle human trafficking", Published: now.Add(-time.Hour)},
		{GUID: "2", Link: "https://news.example.org/2", Title: "New passport fees announced", Published: now.Add(-2 * time.Hour)},
	}, store.PullOptions{Topics: &rules.Topics{}, Alert: rules.AlertNew(0), Realert: rules.Realert})
	if err != nil {
		t.Fatal(err)
	}
	return ops, db
}

// fields returns the bad fields of err, or fails when err is not a
// FieldErrors.
func fields(t *testing.T, err error) admin.FieldErrors {
	t.Helper()
	var fe admin.FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a FieldErrors", err)
	}
	return fe
}

func TestChecksNameTheBadFields(t *testing.T) {
	depts := []string{"home-office"}
	rule := store.Rule{Keywords: []string{"k"}}
	tests := []struct {
		name  string
		check func() error
		want  []string
	}{
		{"empty department", func() error { _, err := admin.CheckDepartment(admin.DepartmentInput{}); return err }, []string{"slug", "name"}},
		{"department URL", func() error {
			_, err := admin.CheckDepartment(admin.DepartmentInput{Slug: "d", Name: "D", URL: "javascript:alert(1)"})
			return err
		}, []string{"url"}},
		{"source", func() error {
			_, err := admin.CheckSource(admin.SourceInput{Name: "Bad Name", URL: "ftp://x", Department: "nowhere", Format: "csv"}, depts)
			return err
		}, []string{"name", "url", "department", "format"}},
		{"empty topic", func() error { _, err := admin.CheckTopic(admin.TopicInput{}, depts); return err }, []string{"slug", "title", "match"}},
		{"topic line break", func() error {
			_, err := admin.CheckTopic(admin.TopicInput{Slug: "t", Title: "a\r\nb", Description: "a\x07", Match: rule}, depts)
			return err
		}, []string{"title", "description"}},
		// An item is named by its place as given, blank lines included:
		// the line the console points at.
		{"rule items", func() error {
			_, err := admin.CheckTopic(admin.TopicInput{Slug: "t", Title: "T", Match: store.Rule{
				Departments: []string{"", "nowhere"}, Keywords: []string{"ok", "", "!!!"}, Exclude: []string{"a\nb"},
			}}, depts)
			return err
		}, []string{"match.departments[1]", "match.keywords[2]", "match.exclude[0]"}},
		{"exclusions alone", func() error {
			_, err := admin.CheckTopic(admin.TopicInput{Slug: "t", Title: "T", Match: store.Rule{Exclude: []string{"x"}}}, depts)
			return err
		}, []string{"match"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fe := fields(t, tc.check())
			if got := fe.Fields(); !slices.Equal(got, slices.Sorted(slices.Values(tc.want))) {
				t.Errorf("fields %q, want %q (%v)", got, tc.want, fe)
			}
		})
	}
}

func TestChecksCleanWhatTheyAccept(t *testing.T) {
	topic, err := admin.CheckTopic(admin.TopicInput{Slug: "t", Title: "  Passports ", Description: "Fees.\r\nRenewals.",
		Match: store.Rule{Keywords: []string{" passport ", "", "passport", "fees"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if topic.Title != "Passports" || topic.Description != "Fees.\nRenewals." || !slices.Equal(topic.Rule.Keywords, []string{"passport", "fees"}) {
		t.Errorf("topic = %+v", topic)
	}
	src, err := admin.CheckSource(admin.SourceInput{Name: "n", URL: " https://e.org/f ", Department: "home-office"}, []string{"home-office"})
	if err != nil {
		t.Fatal(err)
	}
	if src.URL != "https://e.org/f" || src.Format != store.FormatAuto || !src.Enabled {
		t.Errorf("source = %+v", src)
	}
}

func TestFieldErrorsIsOneLine(t *testing.T) {
	err := admin.FieldErrors{"title": "is required", "slug": "must not contain line breaks or control characters"}
	if got, want := err.Error(), "invalid input: slug: must not contain line breaks or control characters; title: is required"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestDefinitions(t *testing.T) {
	ops, db := testService(t)
	ctx := context.Background()

	_, err := ops.CreateDepartment(ctx, admin.DepartmentInput{Slug: "home-office", Name: "Again"})
	if fe := fields(t, err); !strings.Contains(fe["slug"], "already taken") {
		t.Errorf("duplicate department: %v", fe)
	}
	if _, err := ops.UpdateDepartment(ctx, "nowhere", admin.DepartmentInput{Name: "X"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown department: %v", err)
	}

	// An update that leaves enabled out keeps it.
	if _, err := ops.SetSourceEnabled(ctx, "ho-news", false); err != nil {
		t.Fatal(err)
	}
	src, err := ops.UpdateSource(ctx, "ho-news", admin.SourceInput{URL: "https://news.example.org/ho2.atom", Department: "home-office"})
	if err != nil || src.Enabled || src.URL != "https://news.example.org/ho2.atom" {
		t.Errorf("update = %+v, %v", src, err)
	}
	_, err = ops.UpdateSource(ctx, "ho-news", admin.SourceInput{Name: "renamed", URL: "https://e.org/f", Department: "home-office"})
	if fe := fields(t, err); fe["name"] == "" {
		t.Errorf("rename: %v", fe)
	}

	in := admin.TopicInput{Slug: "trafficking", Title: "Trafficking", Match: store.Rule{Departments: []string{"home-office"}, Keywords: []string{"trafficking"}}}
	p, err := ops.PreviewTopic(ctx, admin.PreviewInput{Match: in.Match})
	if err != nil || p.Matched != 1 || len(p.Examples) != 1 {
		t.Errorf("preview = %+v, %v", p, err)
	}
	if _, err := ops.CreateTopic(ctx, in); err != nil {
		t.Fatal(err)
	}
	_, err = ops.CreateTopic(ctx, in)
	if fe := fields(t, err); !strings.Contains(fe["slug"], "already taken") {
		t.Errorf("duplicate topic: %v", fe)
	}
	topic, err := ops.RetireTopic(ctx, "trafficking")
	if err != nil || !topic.Retired() {
		t.Errorf("retire = %+v, %v", topic, err)
	}
	// Provisioning brings a retired topic back, as a config file says.
	if topic, err = ops.UpsertTopic(ctx, in); err != nil || topic.Retired() {
		t.Errorf("upsert = %+v, %v", topic, err)
	}
	if _, err := db.TopicBySlug(ctx, "trafficking"); err != nil {
		t.Error(err)
	}
}

func TestSubscriptions(t *testing.T) {
	ops, _ := testService(t)
	ctx := context.Background()
	tests := []struct {
		in   admin.SubscriptionInput
		want []string
	}{
		{admin.SubscriptionInput{Address: "ana@example.org", Department: "home-office"}, nil},
		{admin.SubscriptionInput{Address: "Ana@Example.org", Department: "home-office", Frequency: "daily"}, nil},
		{admin.SubscriptionInput{Address: "not an address", Department: "home-office"}, []string{"address"}},
		{admin.SubscriptionInput{Address: "ben@example.org"}, []string{"topic"}},
		{admin.SubscriptionInput{Address: "ben@example.org", Topic: "t", Department: "home-office"}, []string{"department"}},
		{admin.SubscriptionInput{Address: "ben@example.org", Topic: "nowhere"}, []string{"topic"}},
		{admin.SubscriptionInput{Address: "ben@example.org", Department: "home-office", Frequency: "hourly"}, []string{"frequency"}},
	}
	for _, tc := range tests {
		_, err := ops.AddSubscription(ctx, tc.in)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%+v: %v", tc.in, err)
			}
			continue
		}
		if got := fields(t, err).Fields(); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: fields %q, want %q", tc.in, got, tc.want)
		}
	}
	// One mailbox, one subscriber, whatever the spelling; the export is
	// what import takes.
	var rows []admin.SubscriptionInput
	err := ops.EachSubscription(ctx, func(r admin.SubscriptionInput) error {
		rows = append(rows, r)
		return nil
	})
	want := []admin.SubscriptionInput{{Address: "ana@example.org", Department: "home-office", Frequency: "daily"}}
	if err != nil || !slices.Equal(rows, want) {
		t.Errorf("export = %+v, %v; want %+v", rows, err, want)
	}
	info, err := ops.LookupSubscriber(ctx, " ANA@example.org ")
	if err != nil || info.Status != "confirmed" || len(info.Subscriptions) != 1 {
		t.Errorf("lookup = %+v, %v", info, err)
	}
	if _, err := ops.LookupSubscriber(ctx, "ana@"); fields(t, err)["address"] == "" {
		t.Errorf("lookup of a bad address: %v", err)
	}
	if err := ops.EraseSubscriber(ctx, "ana@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := ops.EraseSubscriber(ctx, "ana@example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("erasing twice: %v", err)
	}
}
