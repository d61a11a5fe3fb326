package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"herald/store"
)

func TestDashboardCountsDaysInTheSiteZone(t *testing.T) {
	db, now := openTest(t)
	ctx := context.Background()
	src := seed(t, db)
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	// Three pulls: 23:30 UTC on 28 Feb and 00:30 UTC on 1 Mar are two days in
	// London (UTC+0 in winter); 09:00 on 2 Mar is today.
	today := *now
	for i, at := range []time.Time{
		time.Date(2026, 2, 28, 23, 30, 0, 0, time.UTC),
		time.Date(2026, 3, 1, 0, 30, 0, 0, time.UTC),
		time.Date(2026, 3, 1, 0, 40, 0, 0, time.UTC),
		today,
	} {
		*now = at
		entries := []store.Entry{{GUID: fmt.Sprint("g", i), Link: "https://example.org/x", Title: fmt.Sprint("Release ", i), Published: at}}
		if _, err := db.ApplyPull(ctx, src.ID, entries, pullWith(tags(nil))); err != nil {
			t.Fatal(err)
		}
	}
	*now = today
	_, err = db.EnqueueEmails(ctx, []store.OutboxMessage{
		{Key: "k1", Kind: store.KindConfirm, To: "a@example.org", Subject: "s"},
		{Key: "k2", Kind: store.KindConfirm, To: "b@example.org", Subject: "s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().ExecContext(ctx, `UPDATE outbox SET status = 'sent', sent_at = ? WHERE key = 'k1'`,
		store.FormatTime(now.Add(-25*time.Hour))); err != nil {
		t.Fatal(err)
	}

	d, err := db.Dashboard(ctx, 3, london)
	if err != nil {
		t.Fatal(err)
	}
	wantDays := []string{"2026-02-28", "2026-03-01", "2026-03-02"}
	if len(d.ReleasesPerDay) != 3 {
		t.Fatalf("releases per day = %v", d.ReleasesPerDay)
	}
	for i, want := range []int{1, 2, 1} {
		got := d.ReleasesPerDay[i]
		if got.Day.Format(time.DateOnly) != wantDays[i] || got.Count != want {
			t.Errorf("day %d = %s %d, want %s %d", i, got.Day.Format(time.DateOnly), got.Count, wantDays[i], want)
		}
	}
	for i, want := range []int{0, 1, 0} {
		if got := d.EmailsSentPerDay[i].Count; got != want {
			t.Errorf("emails sent on %s = %d, want %d", wantDays[i], got, want)
		}
	}
	if d.Releases != 4 || d.OutboxDepth != 1 || !d.OutboxOldest.Equal(*now) {
		t.Errorf("releases %d, outbox depth %d oldest %v; want 4, 1, %v", d.Releases, d.OutboxDepth, d.OutboxOldest, *now)
	}

	// In New York (UTC-5) the first three instants are all the evening of
	// 28 February.
	ny, _ := time.LoadLocation("America/New_York")
	d, err = db.Dashboard(ctx, 3, ny)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{3, 0, 1} {
		if got := d.ReleasesPerDay[i].Count; got != want {
			t.Errorf("New York day %s = %d, want %d", d.ReleasesPerDay[i].Day.Format(time.DateOnly), got, want)
		}
	}
	if got := d.ReleasesPerDay[0].Day.Format(time.DateOnly); got != "2026-02-28" {
		t.Errorf("New York window starts %s, want 2026-02-28", got)
	}
}

func TestRuleAudienceCountsEachSubscriberOnce(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	seed(t, db)
	topic, err := db.TopicBySlug(ctx, "human-trafficking")
	if err != nil {
		t.Fatal(err)
	}
	ho, _ := db.DepartmentBySlug(ctx, "home-office")
	tr, _ := db.DepartmentBySlug(ctx, "treasury")
	for _, s := range []struct {
		addr   string
		target store.Target
	}{
		{"ana@example.org", store.Target{TopicID: topic.ID}},
		{"ana@example.org", store.Target{DepartmentID: ho.ID}}, // follows both: counted once
		{"ben@example.org", store.Target{DepartmentID: ho.ID}},
		{"cy@example.org", store.Target{DepartmentID: tr.ID}},
	} {
		if _, err := db.ImportSubscription(ctx, s.addr, s.target, store.FrequencyDaily); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		topic string
		depts []string
		want  int
	}{
		{"", nil, 0},
		{"human-trafficking", nil, 1},
		{"", []string{"home-office"}, 2},
		{"human-trafficking", []string{"home-office"}, 2},
		{"human-trafficking", []string{"home-office", "treasury"}, 3},
		{"no-such-topic", []string{"no-such-department"}, 0},
	}
	for _, tc := range tests {
		got, err := db.RuleAudience(ctx, tc.topic, tc.depts)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("RuleAudience(%q, %v) = %d, want %d", tc.topic, tc.depts, got, tc.want)
		}
	}
	// An ended subscription no longer counts.
	ben, err := db.SubscriberByAddress(ctx, "ben@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.EndSubscriptions(ctx, store.EndFilter{SubscriberID: ben.ID}); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.RuleAudience(ctx, "", []string{"home-office"}); got != 1 {
		t.Errorf("after ben left, home-office audience = %d, want 1", got)
	}
}
