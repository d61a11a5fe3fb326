package admin_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"herald/store"
	"herald/store/storetest"
	"herald/web/admin"
)

func TestProposeTopic(t *testing.T) {
	for _, tc := range []struct {
		search store.Search
		want   admin.Promotion
	}{
		{store.Search{Query: "trafficking"},
			admin.Promotion{Topic: admin.TopicInput{Slug: "trafficking", Title: "Trafficking", Match: store.Rule{Keywords: []string{"trafficking"}}},
				Differences: []string{admin.DiffBody}}},
		{store.Search{Query: `"flood defences" coast*`, DepartmentSlug: "environment-agency", Type: "press_release", TopicSlug: "flooding"},
			admin.Promotion{Topic: admin.TopicInput{Slug: "flood-defences-coast", Title: "Flood defences coast",
				Match: store.Rule{Departments: []string{"environment-agency"}, Keywords: []string{"flood defences coast"}}},
				Differences: []string{admin.DiffBody, admin.DiffAllWords, admin.DiffPrefix, admin.DiffType, admin.DiffTopic}}},
		{store.Search{Query: "café ελλάδα"},
			admin.Promotion{Topic: admin.TopicInput{Slug: "cafe", Title: "Café ελλάδα", Match: store.Rule{Keywords: []string{"café ελλάδα"}}},
				Differences: []string{admin.DiffBody, admin.DiffAllWords, admin.DiffAccents}}},
	} {
		got := admin.ProposeTopic(tc.search)
		if got.Topic.Slug != tc.want.Topic.Slug || got.Topic.Title != tc.want.Topic.Title ||
			!slices.Equal(got.Topic.Match.Keywords, tc.want.Topic.Match.Keywords) ||
			!slices.Equal(got.Topic.Match.Departments, tc.want.Topic.Match.Departments) || len(got.Topic.Match.Categories) != 0 ||
			!slices.Equal(got.Differences, tc.want.Differences) {
			t.Errorf("ProposeTopic(%q):\n got %+v\nwant %+v", tc.search.Query, got, tc.want)
		}
	}
}

func TestSearchesAndPromotion(t *testing.T) {
	ops, db := testService(t)
	ctx := context.Background()
	ho, err := db.DepartmentBySlug(ctx, "home-office")
	if err != nil {
		t.Fatal(err)
	}
	s := storetest.Search(t, db, store.SearchSpec{Query: "human trafficking", DepartmentID: ho.ID})
	storetest.Subscribe(t, db, "a@example.org", store.Target{SearchID: s.ID}, store.FrequencyDaily)
	storetest.Subscribe(t, db, "b@example.org", store.Target{SearchID: s.ID}, store.FrequencyImmediately)

	list, err := ops.Searches(ctx, 0)
	if err != nil || len(list) != 1 || list[0].ActiveTotal() != 2 || list[0].DepartmentSlug != "home-office" {
		t.Fatalf("searches: %+v, %v", list, err)
	}
	for _, bad := range []int{-1, admin.SearchesLimit + 1} {
		if _, err := ops.Searches(ctx, bad); fields(t, err)["limit"] == "" {
			t.Errorf("limit %d: %v", bad, err)
		}
	}
	d, err := ops.Search(ctx, s.ID)
	if err != nil || d.Proposal.Topic.Slug != "human-trafficking" {
		t.Fatalf("search detail: %+v, %v", d, err)
	}
	if _, err := ops.Search(ctx, 999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown search: %v", err)
	}

	// A bad topic is refused, field by field, and moves nothing.
	if _, err := ops.PromoteSearch(ctx, s.ID, admin.TopicInput{Slug: "Bad Slug"}); fields(t, err)["slug"] == "" {
		t.Errorf("bad slug: %v", err)
	}
	if f, _ := db.SearchByID(ctx, s.ID); f.ActiveTotal() != 2 {
		t.Fatalf("a refused promotion moved subscriptions: %+v", f)
	}
	// Empty fields take the proposal's.
	p, err := ops.PromoteSearch(ctx, s.ID, admin.TopicInput{Title: "Human trafficking"})
	if err != nil || p.Moved != 2 || p.Topic.Slug != "human-trafficking" || !slices.Equal(p.Topic.Rule.Departments, []string{"home-office"}) {
		t.Fatalf("promote: %+v, %v", p, err)
	}
	rs, err := db.Releases(ctx, store.ReleaseFilter{Topic: "human-trafficking"})
	if err != nil || len(rs) != 1 {
		t.Errorf("the new topic tags the archive: %d releases, %v", len(rs), err)
	}
	// The slug is taken now.
	s2 := storetest.Search(t, db, store.SearchSpec{Query: "trafficking human"})
	if _, err := ops.PromoteSearch(ctx, s2.ID, admin.TopicInput{Slug: "human-trafficking"}); fields(t, err)["slug"] == "" {
		t.Errorf("taken slug: %v", err)
	}
}

// Export writes search subscriptions in their own column, and import
// reads them back.
func TestSearchSubscriptionsExportAndImport(t *testing.T) {
	ops, db := testService(t)
	ctx := context.Background()
	ho, _ := db.DepartmentBySlug(ctx, "home-office")
	s := storetest.Search(t, db, store.SearchSpec{Query: "passport fees", DepartmentID: ho.ID})
	storetest.Subscribe(t, db, "a@example.org", store.Target{SearchID: s.ID}, store.FrequencyWeekly)
	var rows []admin.SubscriptionInput
	if err := ops.EachSubscription(ctx, func(in admin.SubscriptionInput) error { rows = append(rows, in); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Search != "department=home-office&q=passport+fees" || rows[0].Topic != "" || rows[0].Department != "" {
		t.Fatalf("export: %+v", rows)
	}
	info, err := ops.LookupSubscriber(ctx, "a@example.org")
	if err != nil || len(info.Subscriptions) != 1 || info.Subscriptions[0].Search != rows[0].Search {
		t.Errorf("look-up: %+v, %v", info, err)
	}
	// Written another way, it names the same search.
	if _, err := ops.AddSubscription(ctx, admin.SubscriptionInput{Address: "b@example.org", Search: "q=Passport+FEES&department=home-office&page=2", Frequency: "daily"}); err != nil {
		t.Fatal(err)
	}
	if f, _ := db.SearchByID(ctx, s.ID); f.Active[store.FrequencyDaily] != 1 {
		t.Errorf("imported subscription: %+v", f)
	}
	for _, bad := range []admin.SubscriptionInput{
		{Address: "c@example.org", Search: "q=never+followed"},
		{Address: "c@example.org", Search: "q=passport+fees&department=home-office", Department: "home-office"},
	} {
		if _, err := ops.AddSubscription(ctx, bad); fields(t, err)["search"] == "" {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}
