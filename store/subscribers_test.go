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
	"herald/store/storetest"
)

func subActive(t *testing.T, db *store.DB, addr string, target store.Target, freq string) storetest.Subscription {
	t.Helper()
	return storetest.Subscribe(t, db, addr, target, freq)
}

// TestSubscriptionRecords holds the transaction steps the subscription
// side builds its state changes from (alerts tests the decisions).
func TestSubscriptionRecords(t *testing.T) {
	ctx := context.Background()
	db, now := openTest(t)
	dept, err := db.UpsertDepartment(ctx, store.Department{Slug: "home-office", Name: "Home Office"})
	if err != nil {
		t.Fatal(err)
	}
	target := store.Target{DepartmentID: dept.ID}
	var first store.Subscription
	var ana store.Subscriber
	err = db.InTx(ctx, func(tx *store.Tx) error {
		if ana, err = tx.EnsureSubscriber("ana@example.org"); err != nil {
			return err
		}
		if again, err := tx.EnsureSubscriber("ana@example.org"); err != nil || again.ID != ana.ID {
			t.Errorf("a known address made a second subscriber: %+v, %v", again, err)
		}
		if _, err := tx.PendingSubscription(ana.ID, target, "daily"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("pending before any request: %v", err)
		}
		if first, err = tx.AddSubscription(ana.ID, target, "daily"); err != nil {
			return err
		}
		if p, err := tx.PendingSubscription(ana.ID, target, "daily"); err != nil || p.ID != first.ID || p.Status != store.SubscriptionPending {
			t.Errorf("pending: %+v, %v", p, err)
		}
		if _, err := tx.PendingSubscription(ana.ID, target, "weekly"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("pending at another frequency: %v", err)
		}
		_, err = tx.Enqueue(store.OutboxMessage{Key: "confirm:1:a", Kind: store.KindConfirm, SubscriberID: ana.ID, To: ana.Address})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// A step that fails rolls back the whole transaction.
	boom := errors.New("boom")
	err = db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Enqueue(store.OutboxMessage{Key: "confirm:1:b", Kind: store.KindConfirm, SubscriberID: ana.ID, To: ana.Address}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx returned %v, want fn's error", err)
	}
	*now = now.Add(time.Minute)
	err = db.InTx(ctx, func(tx *store.Tx) error {
		n, err := tx.CountMail(ana.ID, []string{store.KindConfirm, store.KindManage}, now.Add(-time.Hour))
		if err != nil || n != 1 {
			t.Errorf("CountMail = %d, %v; want 1 (the rolled back message is not there)", n, err)
		}
		if n, _ := tx.CountMail(ana.ID, []string{store.KindConfirm}, *now); n != 0 {
			t.Errorf("CountMail since now = %d", n)
		}
		renewed, err := tx.RenewSubscription(first.ID)
		if err != nil || !renewed.CreatedAt.Equal(*now) {
			t.Errorf("renewed: %+v, %v", renewed, err)
		}
		if _, err := tx.ActiveSubscription(ana.ID, target); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("active before confirmation: %v", err)
		}
		active, err := tx.SetSubscriptionStatus(first.ID, store.SubscriptionActive)
		if err != nil || active.Status != store.SubscriptionActive || !active.ConfirmedAt.Equal(*now) {
			t.Fatalf("activate: %+v, %v", active, err)
		}
		if err := tx.MarkSubscriberConfirmed(ana.ID); err != nil {
			return err
		}
		if got, err := tx.ActiveSubscription(ana.ID, target); err != nil || got.ID != first.ID {
			t.Errorf("active: %+v, %v", got, err)
		}
		if _, err := tx.SetSubscriptionStatus(first.ID, store.SubscriptionPending); err == nil {
			t.Errorf("set back to pending")
		}
		if _, err := tx.SetSubscriptionStatus(9999, store.SubscriptionEnded); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown subscription: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sub, _ := db.SubscriberByID(ctx, ana.ID); !sub.ConfirmedAt.Equal(*now) {
		t.Errorf("confirmed_at = %v, want %v", sub.ConfirmedAt, *now)
	}
	// The schema itself refuses a second active subscription to one target.
	err = db.InTx(ctx, func(tx *store.Tx) error {
		second, err := tx.AddSubscription(ana.ID, target, "weekly")
		if err != nil {
			return err
		}
		_, err = tx.SetSubscriptionStatus(second.ID, store.SubscriptionActive)
		return err
	})
	if err == nil {
		t.Fatalf("two active subscriptions to one department were stored")
	}
	subs, _ := db.Subscriptions(ctx, ana.ID)
	if len(subs) != 1 || subs[0].Frequency != "daily" || subs[0].Name != "Home Office" || subs[0].Kind != "department" {
		t.Fatalf("subscriptions: %+v", subs)
	}
	if _, err := db.ChangeFrequency(ctx, ana.ID+1, subs[0].ID, "daily"); !errors.Is(err, store.ErrNotFound) {
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
	sub, _ := db.SubscriberByID(ctx, ana.ID)
	if !sub.LastEndedAt.Equal(*now) {
		t.Errorf("last_ended_at = %v, want %v", sub.LastEndedAt, *now)
	}
}

func TestPendingAddress(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	ana := storetest.Subscribe(t, db, "ana@example.org", store.Target{DepartmentID: storetest.Department(t, db, "home-office", "Home Office").ID}, "daily")
	ben := storetest.Request(t, db, "ben@example.org", store.Target{DepartmentID: ana.Subscription.DepartmentID}, "daily")
	err := db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.SetPendingAddress(9999, "x@example.org", 1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown subscriber: %v", err)
		}
		s, err := tx.SetPendingAddress(ana.Subscriber.ID, "ben@example.org", 7)
		if err != nil || s.PendingAddress != "ben@example.org" || s.PendingNonce != 7 {
			t.Fatalf("pending address: %+v, %v", s, err)
		}
		if _, err := tx.AdoptPendingAddress(ana.Subscriber.ID); !errors.Is(err, store.ErrConflict) {
			t.Errorf("adopting a taken address: %v, want ErrConflict", err)
		}
		if _, err := tx.SetPendingAddress(ana.Subscriber.ID, "anna@example.org", 8); err != nil {
			return err
		}
		s, err = tx.AdoptPendingAddress(ana.Subscriber.ID)
		if err != nil || s.Address != "anna@example.org" || s.PendingAddress != "" || s.PendingNonce != 0 {
			t.Fatalf("adopt: %+v, %v", s, err)
		}
		if _, err := tx.AdoptPendingAddress(ana.Subscriber.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("adopting with nothing pending: %v, want ErrNotFound", err)
		}
		if s, err := tx.SubscriberByAddress("ben@example.org"); err != nil || s.ID != ben.Subscriber.ID {
			t.Errorf("by address: %+v, %v", s, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
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
			freq := store.Frequencies()[rng.IntN(3)]
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
		for _, freq := range store.Frequencies() {
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

// TestImportSubscriptionsBatch: one batch confirms a pending address,
// brings back an idle subscriber, leaves a confirmed one's date alone,
// keeps the later of two rows for one target, and counts only the
// subscribers it created.
func TestImportSubscriptionsBatch(t *testing.T) {
	ctx := context.Background()
	db, now := openTest(t)
	ho, _ := db.UpsertDepartment(ctx, store.Department{Slug: "home-office", Name: "Home Office"})
	target := store.Target{DepartmentID: ho.ID}
	confirmedAt := *now
	if _, err := db.ImportSubscription(ctx, "confirmed@example.org", target, "daily"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ImportSubscription(ctx, "idle@example.org", target, "daily"); err != nil {
		t.Fatal(err)
	}
	idle, _ := db.SubscriberByAddress(ctx, "idle@example.org")
	if _, err := db.EndSubscriptions(ctx, store.EndFilter{SubscriberID: idle.ID}); err != nil {
		t.Fatal(err)
	}
	err := db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.EnsureSubscriber("pending@example.org")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	*now = now.Add(time.Hour)
	rows := []store.ImportRow{
		{Address: "pending@example.org", Target: target, Frequency: "daily"},
		{Address: "idle@example.org", Target: target, Frequency: "weekly"},
		{Address: "confirmed@example.org", Target: target, Frequency: "weekly"},
		{Address: "new@example.org", Target: target, Frequency: "daily"},
		{Address: "new@example.org", Target: target, Frequency: "immediately"},
	}
	n, err := db.ImportSubscriptions(ctx, rows)
	if err != nil || n != 1 {
		t.Fatalf("ImportSubscriptions = %d new, %v; want 1", n, err)
	}
	for addr, want := range map[string]struct {
		confirmed time.Time
		freq      string
	}{
		"pending@example.org":   {*now, "daily"},
		"idle@example.org":      {confirmedAt, "weekly"},
		"confirmed@example.org": {confirmedAt, "weekly"},
		"new@example.org":       {*now, "immediately"},
	} {
		sub, err := db.SubscriberByAddress(ctx, addr)
		if err != nil || !sub.ConfirmedAt.Equal(want.confirmed) || !sub.LastEndedAt.IsZero() {
			t.Errorf("%s: %+v, %v; want confirmed at %v and not idle", addr, sub, err, want.confirmed)
			continue
		}
		subs, _ := db.Subscriptions(ctx, sub.ID)
		var active []string
		for _, s := range subs {
			if s.Status == store.SubscriptionActive {
				active = append(active, s.Frequency)
			}
		}
		if len(active) != 1 || active[0] != want.freq {
			t.Errorf("%s: active subscriptions %v, want one %s", addr, active, want.freq)
		}
	}
	if _, err := db.ImportSubscriptions(ctx, []store.ImportRow{{Address: "x@example.org", Frequency: "daily"}}); err == nil {
		t.Error("a row without a target was accepted")
	}
}
