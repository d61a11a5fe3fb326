package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"herald/store"
)

func subActive(t *testing.T, db *store.DB, addr string, target store.Target, freq string) store.ConfirmResult {
	t.Helper()
	ctx := context.Background()
	req, err := db.RequestSubscription(ctx, store.SubscriptionRequest{Address: addr, Target: target, Frequency: freq})
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.ConfirmSubscription(ctx, req.Subscription.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestSubscriptionLifecycle(t *testing.T) {
	ctx := context.Background()
	db, now := openTest(t)
	dept, err := db.UpsertDepartment(ctx, store.Department{Slug: "home-office", Name: "Home Office"})
	if err != nil {
		t.Fatal(err)
	}
	target := store.Target{DepartmentID: dept.ID}
	composed := 0
	compose := func(s store.Subscriber, p store.Subscription) ([]store.OutboxMessage, error) {
		composed++
		return []store.OutboxMessage{{Key: fmt.Sprintf("confirm:%d:%d", s.ID, composed), Kind: store.KindConfirm, SubscriberID: s.ID, To: s.Address}}, nil
	}
	limit := store.MailLimit{Max: 2, Since: now.Add(-time.Hour)}
	var first store.SubscriptionRequestResult
	for i := range 3 {
		res, err := db.RequestSubscription(ctx, store.SubscriptionRequest{Address: "ana@example.org", Target: target, Frequency: "daily", Limit: limit, Compose: compose})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = res
		}
		if res.Subscriber.Address != "ana@example.org" || res.Subscription.ID != first.Subscription.ID || res.Subscription.Status != store.SubscriptionPending {
			t.Fatalf("request %d: %+v (a repeated request should reuse the pending subscription)", i, res)
		}
		if wantLimited := i == 2; res.Limited != wantLimited || (res.Queued == 1) == wantLimited {
			t.Fatalf("request %d: limited %v queued %d", i, res.Limited, res.Queued)
		}
	}
	if composed != 2 {
		t.Errorf("composed %d messages, want 2 (the third was over the limit)", composed)
	}

	res, err := db.ConfirmSubscription(ctx, first.Subscription.ID, nil)
	if err != nil || res.Subscription.Status != store.SubscriptionActive || res.AlreadyActive || res.Subscriber.ConfirmedAt.IsZero() {
		t.Fatalf("confirm: %+v, %v", res, err)
	}
	if res, err = db.ConfirmSubscription(ctx, first.Subscription.ID, nil); err != nil || !res.AlreadyActive {
		t.Fatalf("second confirm: %+v, %v", res, err)
	}
	// Another frequency for the same department replaces it on confirmation.
	weekly, err := db.RequestSubscription(ctx, store.SubscriptionRequest{Address: "ana@example.org", Target: target, Frequency: "weekly"})
	if err != nil {
		t.Fatal(err)
	}
	res, err = db.ConfirmSubscription(ctx, weekly.Subscription.ID, nil)
	if err != nil || res.Replaced == nil || res.Replaced.ID != first.Subscription.ID {
		t.Fatalf("replace: %+v, %v", res, err)
	}
	subs, _ := db.Subscriptions(ctx, res.Subscriber.ID)
	if len(subs) != 1 || subs[0].Frequency != "weekly" || subs[0].Name != "Home Office" || subs[0].Kind != "department" {
		t.Fatalf("subscriptions: %+v", subs)
	}
	// The schema itself refuses a second active subscription to one target.
	_, err = db.SQL().Exec(`INSERT INTO subscriptions (subscriber_id, department_id, frequency, status, created_at) VALUES (?, ?, 'daily', 'active', 'x')`,
		res.Subscriber.ID, dept.ID)
	if err == nil {
		t.Fatalf("two active subscriptions to one department were stored")
	}
	if _, err := db.ConfirmSubscription(ctx, first.Subscription.ID, nil); !errors.Is(err, store.ErrSubscriptionEnded) {
		t.Errorf("confirming a replaced subscription: %v", err)
	}
	if _, err := db.ChangeFrequency(ctx, res.Subscriber.ID+1, subs[0].ID, "daily"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("changing another subscriber's subscription: %v", err)
	}

	*now = now.Add(time.Hour)
	ended, err := db.EndSubscriptions(ctx, store.EndFilter{SubscriptionID: subs[0].ID})
	if err != nil || len(ended) != 1 || ended[0].Status != store.SubscriptionEnded {
		t.Fatalf("end: %+v, %v", ended, err)
	}
	if again, err := db.EndSubscriptions(ctx, store.EndFilter{SubscriptionID: subs[0].ID}); err != nil || len(again) != 0 {
		t.Fatalf("ending twice: %+v, %v", again, err)
	}
	sub, _ := db.SubscriberByID(ctx, res.Subscriber.ID)
	if !sub.LastEndedAt.Equal(*now) {
		t.Errorf("last_ended_at = %v, want %v", sub.LastEndedAt, *now)
	}
	if _, err := db.ConfirmSubscription(ctx, 9999, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown subscription: %v", err)
	}
}

func TestAlertRecipientsPaging(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	var topics, depts []int64
	for i := range 40 {
		tp, err := db.UpsertTopic(ctx, store.Topic{Slug: fmt.Sprintf("t%d", i), Title: fmt.Sprintf("Topic %d", i), Rule: store.Rule{Keywords: []string{"x"}}}, tags(nil))
		if err != nil {
			t.Fatal(err)
		}
		topics = append(topics, tp.ID)
	}
	for i := range 3 {
		d, err := db.UpsertDepartment(ctx, store.Department{Slug: fmt.Sprintf("d%d", i), Name: fmt.Sprintf("Dept %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		depts = append(depts, d.ID)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	type sub struct {
		subscriber int64
		target     store.Target
		freq       string
	}
	var all []sub
	for i := range 80 {
		addr := fmt.Sprintf("s%d@example.org", i)
		n := rng.IntN(4)
		used := map[store.Target]bool{}
		for range n {
			tg := store.Target{TopicID: topics[rng.IntN(len(topics))]}
			if rng.IntN(3) == 0 {
				tg = store.Target{DepartmentID: depts[rng.IntN(len(depts))]}
			}
			if used[tg] {
				continue
			}
			used[tg] = true
			freq := store.Frequencies[rng.IntN(3)]
			r := subActive(t, db, addr, tg, freq)
			all = append(all, sub{r.Subscriber.ID, tg, freq})
		}
	}
	tests := []struct {
		name   string
		topics []int64
		depts  []int64
	}{
		{"one department", nil, depts[:1]},
		{"department and topics (merged scans)", topics[:5], depts[1:2]},
		{"many topics (one filtered scan)", topics, depts},
	}
	for _, tc := range tests {
		for _, freq := range store.Frequencies {
			want := map[int64][]int64{}
			for _, s := range all {
				if s.freq == freq && (slices.Contains(tc.topics, s.target.TopicID) || slices.Contains(tc.depts, s.target.DepartmentID)) {
					want[s.subscriber] = append(want[s.subscriber], s.target.TopicID+1000*s.target.DepartmentID)
				}
			}
			for _, limit := range []int{1, 3, 7, 1000} {
				t.Run(fmt.Sprintf("%s/%s/%d", tc.name, freq, limit), func(t *testing.T) {
					got := map[int64][]int64{}
					q := store.RecipientQuery{Frequency: freq, TopicIDs: tc.topics, DepartmentIDs: tc.depts, Limit: limit}
					last := int64(0)
					for pages := 0; ; pages++ {
						if pages > 200 {
							t.Fatal("paging does not end")
						}
						page, err := db.AlertRecipients(ctx, q)
						if err != nil {
							t.Fatal(err)
						}
						for _, r := range page.Recipients {
							if r.SubscriberID <= last {
								t.Fatalf("subscriber %d out of order or repeated", r.SubscriberID)
							}
							last = r.SubscriberID
							if r.Address == "" {
								t.Fatalf("no address for %d", r.SubscriberID)
							}
							for _, s := range r.Subscriptions {
								if s.SubscriberID != r.SubscriberID || s.Frequency != freq || s.Status != store.SubscriptionActive {
									t.Fatalf("wrong subscription %+v for %d", s, r.SubscriberID)
								}
								got[r.SubscriberID] = append(got[r.SubscriberID], s.TopicID+1000*s.DepartmentID)
							}
						}
						if page.Done {
							break
						}
						q.After = page.Next
					}
					for k := range want {
						slices.Sort(want[k])
						slices.Sort(got[k])
					}
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Fatalf("got %v\nwant %v", got, want)
					}
				})
			}
		}
	}
}

func TestSubscriberStatistics(t *testing.T) {
	ctx := context.Background()
	db, now := openTest(t)
	ho, _ := db.UpsertDepartment(ctx, store.Department{Slug: "home-office", Name: "Home Office"})
	tr, _ := db.UpsertDepartment(ctx, store.Department{Slug: "treasury", Name: "Treasury"})
	tp, err := db.UpsertTopic(ctx, store.Topic{Slug: "visas", Title: "Visas", Rule: store.Rule{Keywords: []string{"visa"}}}, tags(nil))
	if err != nil {
		t.Fatal(err)
	}
	subActive(t, db, "a@example.org", store.Target{TopicID: tp.ID}, "daily")
	subActive(t, db, "a@example.org", store.Target{DepartmentID: ho.ID}, "daily")
	*now = now.Add(24 * time.Hour)
	subActive(t, db, "b@example.org", store.Target{TopicID: tp.ID}, "weekly")
	subActive(t, db, "b@example.org", store.Target{DepartmentID: tr.ID}, "immediately")
	subActive(t, db, "c@example.org", store.Target{DepartmentID: ho.ID}, "immediately")
	gone := subActive(t, db, "d@example.org", store.Target{DepartmentID: ho.ID}, "weekly")
	if _, err := db.EndSubscriptions(ctx, store.EndFilter{SubscriberID: gone.Subscriber.ID}); err != nil {
		t.Fatal(err)
	}

	counts, err := db.SubscriberCounts(ctx)
	if err != nil || fmt.Sprint(counts) != "map[visas:map[daily:1 weekly:1]]" {
		t.Errorf("topic counts %v, %v", counts, err)
	}
	dcounts, err := db.DepartmentSubscriberCounts(ctx)
	if err != nil || fmt.Sprint(dcounts) != "map[home-office:map[daily:1 immediately:1] treasury:map[immediately:1]]" {
		t.Errorf("department counts %v, %v", dcounts, err)
	}
	for _, tc := range []struct {
		slugs []string
		want  int
	}{{nil, 0}, {[]string{"home-office"}, 2}, {[]string{"home-office", "treasury"}, 3}, {[]string{"nowhere"}, 0}} {
		if n, err := db.CountDepartmentSubscribers(ctx, tc.slugs); n != tc.want || err != nil {
			t.Errorf("CountDepartmentSubscribers(%v) = %d, %v; want %d", tc.slugs, n, err, tc.want)
		}
	}
	days, err := db.SubscribersPerDay(ctx, 3, time.UTC)
	if err != nil || len(days) != 3 || days[0].Count != 0 || days[1].Count != 1 || days[2].Count != 3 {
		t.Errorf("per day %+v, %v", days, err)
	}
}

func TestImportAndEachSubscription(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	ho, _ := db.UpsertDepartment(ctx, store.Department{Slug: "home-office", Name: "Home Office"})
	tp, err := db.UpsertTopic(ctx, store.Topic{Slug: "visas", Title: "Visas", Rule: store.Rule{Keywords: []string{"visa"}}}, tags(nil))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		addr    string
		target  store.Target
		freq    string
		wantNew bool
	}{
		{"a@example.org", store.Target{TopicID: tp.ID}, "daily", true},
		{"a@example.org", store.Target{DepartmentID: ho.ID}, "weekly", false},
		{"a@example.org", store.Target{TopicID: tp.ID}, "immediately", false},
		{"b@example.org", store.Target{TopicID: tp.ID}, "weekly", true},
	}
	for _, s := range steps {
		isNew, err := db.ImportSubscription(ctx, s.addr, s.target, s.freq)
		if err != nil || isNew != s.wantNew {
			t.Fatalf("import %+v: new %v, %v", s, isNew, err)
		}
	}
	if _, err := db.ImportSubscription(ctx, "c@example.org", store.Target{}, "daily"); err == nil {
		t.Errorf("an import without a target was accepted")
	}
	if n, err := db.CountSubscriptions(ctx); n != 3 || err != nil {
		t.Fatalf("CountSubscriptions = %d, %v", n, err)
	}
	var got []string
	err = db.EachSubscription(ctx, func(addr string, s store.Subscription) error {
		got = append(got, addr+" "+s.Slug+" "+s.Frequency)
		return nil
	})
	want := []string{"a@example.org visas immediately", "a@example.org home-office weekly", "b@example.org visas weekly"}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("EachSubscription: %v, %v; want %v", got, err, want)
	}
	a, err := db.SubscriberByAddress(ctx, "a@example.org")
	if err != nil || a.ConfirmedAt.IsZero() {
		t.Errorf("imported subscriber should be confirmed: %+v, %v", a, err)
	}
	stop := errors.New("stop")
	if err := db.EachSubscription(ctx, func(string, store.Subscription) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("EachSubscription did not return fn's error: %v", err)
	}
}
