package alerts_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"herald/alerts/alertstest"
	"herald/store"
	"herald/store/storetest"
)

func TestExportAndErase(t *testing.T) {
	f := newSubFixture(t, nil)
	ana := f.subscribe("ana@example.org", store.Target{DepartmentID: f.home.ID}, "immediately")
	anaBudget := f.subscribe("ana@example.org", store.Target{TopicID: f.budget.ID}, "weekly")
	other := f.subscribe("other@example.org", store.Target{DepartmentID: f.home.ID}, "immediately")
	f.pull(f.src, traffickingEntry("r1", "Patrols against trafficking"))
	if _, err := f.svc.ProcessPending(f.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.EndSubscriptions(f.ctx, store.EndFilter{SubscriberID: ana.Subscriber.ID, Frequency: "weekly"}); err != nil {
		t.Fatal(err)
	}

	raw, err := f.svc.ExportSubscriber(f.ctx, "ana@example.org")
	if err != nil {
		t.Fatal(err)
	}
	var got store.SubscriberData
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("export is not JSON: %v\n%s", err, raw)
	}
	if len(got.Subscribers) != 1 || got.Subscribers[0].Address != "ana@example.org" || len(got.Subscriptions) != 2 {
		t.Fatalf("export: %s", raw)
	}
	if len(got.Messages) != 1 || got.Messages[0].Kind != store.KindImmediate || !strings.Contains(got.Messages[0].Text, "Patrols") {
		t.Fatalf("exported messages: %+v", got.Messages)
	}
	if strings.Contains(string(raw), "other@example.org") {
		t.Errorf("the export leaks another subscriber")
	}

	if err := f.svc.EraseSubscriber(f.ctx, "ana@example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ExportSubscriber(f.ctx, "ana@example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("export after erasure: %v", err)
	}
	if err := f.svc.EraseSubscriber(f.ctx, "ana@example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second erasure: %v", err)
	}
	if rows := f.outbox(func(m alertstest.Message) bool {
		return m.To == "ana@example.org" || m.SubscriberID == ana.Subscriber.ID
	}); len(rows) != 0 {
		t.Errorf("outbox rows left: %+v", rows)
	}
	for _, id := range []int64{ana.Subscription.ID, anaBudget.Subscription.ID} {
		if _, err := f.db.SubscriptionByID(f.ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("subscription %d left: %v", id, err)
		}
	}
	if subs, _ := f.db.Subscriptions(f.ctx, other.Subscriber.ID); len(subs) != 1 || len(f.outbox(func(m alertstest.Message) bool { return m.To == "other@example.org" })) != 1 {
		t.Errorf("erasure touched another subscriber")
	}
}

func TestHousekeep(t *testing.T) {
	f := newSubFixture(t, nil)
	left := f.subscribe("left@example.org", store.Target{DepartmentID: f.home.ID}, "daily")
	recent := f.subscribe("recent@example.org", store.Target{DepartmentID: f.home.ID}, "daily")
	stays := f.subscribe("stays@example.org", store.Target{DepartmentID: f.home.ID}, "daily")
	f.subscribe("stays@example.org", store.Target{TopicID: f.budget.ID}, "daily")
	if _, err := f.db.EndSubscriptions(f.ctx, store.EndFilter{SubscriberID: left.Subscriber.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.EndSubscriptions(f.ctx, store.EndFilter{SubscriberID: stays.Subscriber.ID, SubscriptionID: stays.Subscription.ID}); err != nil {
		t.Fatal(err)
	}
	// A message sent now has its body purged after 7 days.
	if _, err := f.db.EnqueueEmails(f.ctx, []store.OutboxMessage{{Key: "welcome:test", Kind: store.KindWelcome, SubscriberID: stays.Subscriber.ID,
		To: "stays@example.org", Subject: "Welcome", Text: "hello", HTML: "<p>hello</p>"}}); err != nil {
		t.Fatal(err)
	}
	storetest.Deliver(t, f.db, "welcome:test", store.StatusSent, "")
	never := storetest.Request(t, f.db, "never@example.org", store.Target{TopicID: f.immig.ID}, "daily")
	f.clock.Add(27 * 24 * time.Hour)
	if _, err := f.db.EndSubscriptions(f.ctx, store.EndFilter{SubscriberID: recent.Subscriber.ID}); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(2 * 24 * time.Hour)
	rep, err := f.svc.Housekeep(f.ctx, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExpiredPending != 1 || rep.Erased != 2 || rep.PurgedBodies != 1 {
		t.Errorf("report %+v; want the expired request, two erasures and one purged body", rep)
	}
	if rows := f.outbox(func(m alertstest.Message) bool { return m.Key == "welcome:test" }); len(rows) != 1 || rows[0].Text != "" || rows[0].HTML != "" {
		t.Errorf("sent body not purged: %+v", rows)
	}
	for addr, want := range map[string]bool{"left@example.org": false, "never@example.org": false, "recent@example.org": true, "stays@example.org": true} {
		_, err := f.db.SubscriberByAddress(f.ctx, addr)
		if got := err == nil; got != want {
			t.Errorf("%s kept = %v, want %v (%v)", addr, got, want, err)
		}
	}
	if _, err := f.db.SubscriptionByID(f.ctx, never.Subscription.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired pending subscription kept: %v", err)
	}
	// Nothing more to do the same day.
	if rep, err := f.svc.Housekeep(f.ctx, f.clock.Now()); err != nil || rep.Erased != 0 || rep.ExpiredPending != 0 {
		t.Errorf("second run: %+v, %v", rep, err)
	}
}

// TestHousekeepPurgesOnlyOldBodies: the bodies of messages settled more
// than PurgeBodiesAfter ago go; those of newer messages stay.
func TestHousekeepPurgesOnlyOldBodies(t *testing.T) {
	f := newSubFixture(t, nil)
	send := func(key string) {
		t.Helper()
		if _, err := f.db.EnqueueEmails(f.ctx, []store.OutboxMessage{{Key: key, Kind: store.KindWelcome,
			To: key + "@example.org", Subject: "Welcome", Text: "hello", HTML: "<p>hello</p>"}}); err != nil {
			t.Fatal(err)
		}
		storetest.Deliver(t, f.db, key, store.StatusSent, "")
	}
	for i := range 5 {
		send(fmt.Sprintf("old%d", i))
	}
	f.clock.Add(8 * 24 * time.Hour)
	send("fresh0")
	send("fresh1")
	rep, err := f.svc.Housekeep(f.ctx, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.PurgedBodies != 5 {
		t.Errorf("purged %d bodies, want only the 5 old messages'", rep.PurgedBodies)
	}
	for _, m := range f.outbox(nil) {
		old := strings.HasPrefix(m.Key, "old")
		if purged := m.Text == "" && m.HTML == ""; purged != old {
			t.Errorf("%s: body purged = %v, want %v", m.Key, purged, old)
		}
	}
}
