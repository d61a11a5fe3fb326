package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"herald/store"
	"herald/store/storetest"
)

func inTx(t *testing.T, db *store.DB, fn func(tx *store.Tx) error) {
	t.Helper()
	if err := db.InTx(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func TestSentMessageFindsTheRowByIDAndByMessageID(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	enqueue(t, db, 2, person)
	m, err := db.SentMessage(ctx, 2)
	if err != nil || m.ID != 2 || m.To != person(1) || m.MessageID == "" || m.SubscriberID != 2 {
		t.Fatalf("SentMessage(2) = %+v, %v", m, err)
	}
	for _, id := range []string{m.MessageID, m.MessageID + "@news.example.org"} {
		got, err := db.SentMessageByMessageID(ctx, id)
		if err != nil || got != m {
			t.Errorf("SentMessageByMessageID(%q) = %+v, %v; want %+v", id, got, err, m)
		}
	}
	for _, id := range []string{"", "nobody@news.example.org"} {
		if _, err := db.SentMessageByMessageID(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SentMessageByMessageID(%q): %v, want ErrNotFound", id, err)
		}
	}
	if _, err := db.SentMessage(ctx, 99); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SentMessage(99): %v, want ErrNotFound", err)
	}
}

func TestMarkReportProcessedOnce(t *testing.T) {
	db, _ := openTest(t)
	mark := func(keys ...string) bool {
		var fresh bool
		inTx(t, db, func(tx *store.Tx) error {
			var err error
			fresh, err = tx.MarkReportProcessed(keys, 7, "permanent", "ses")
			return err
		})
		return fresh
	}
	if !mark("event:ses:a", "message:7:permanent") {
		t.Fatal("a new report was taken for a replay")
	}
	if mark("event:ses:a", "message:7:complaint") {
		t.Error("the same event id was processed twice")
	}
	if mark("event:ses:b", "message:7:permanent") {
		t.Error("the same message and kind were processed twice")
	}
	// The refused replay recorded nothing: its other key is still new.
	if !mark("message:7:complaint") {
		t.Error("a replay left its keys behind")
	}
}

func TestTransientBouncesCountMessagesWithinTheWindow(t *testing.T) {
	db, now := openTest(t)
	addr := "full@example.net"
	add := func(id int64) int {
		var n int
		inTx(t, db, func(tx *store.Tx) error {
			var err error
			n, err = tx.AddTransientBounce(addr, id, now.Add(-14*24*time.Hour))
			return err
		})
		return n
	}
	if n := add(1); n != 1 {
		t.Fatalf("first = %d", n)
	}
	if n := add(1); n != 1 {
		t.Fatalf("the same message counted twice: %d", n)
	}
	*now = now.Add(10 * 24 * time.Hour)
	if n := add(2); n != 2 {
		t.Fatalf("second = %d", n)
	}
	*now = now.Add(5 * 24 * time.Hour) // the first is 15 days old now
	if n := add(3); n != 2 {
		t.Fatalf("third, the first out of the window = %d, want 2", n)
	}
	if err := db.Suppress(context.Background(), addr, "test"); err != nil {
		t.Fatal(err)
	}
	if err := db.LiftSuppression(context.Background(), addr); err != nil {
		t.Fatal(err)
	}
	if n := add(4); n != 1 {
		t.Fatalf("after an admin lifted the suppression = %d, want 1 (the past is forgotten)", n)
	}
}

func TestSuppressAddressKeepsTheReportAndAComplaintWins(t *testing.T) {
	db, now := openTest(t)
	ctx := context.Background()
	addr := "gone@example.net"
	suppress := func(s store.Suppression) bool {
		var changed bool
		inTx(t, db, func(tx *store.Tx) error {
			var err error
			changed, err = tx.SuppressAddress(s)
			return err
		})
		return changed
	}
	raw := "Status: 5.1.1\r\n\x00" + strings.Repeat("x", 40<<10) + "\xff"
	if !suppress(store.Suppression{Address: addr, Cause: store.CauseBounce, Reason: "5.1.1 user unknown", Source: "pipe", OutboxID: 3, Report: raw}) {
		t.Fatal("first suppression changed nothing")
	}
	*now = now.Add(time.Hour)
	if suppress(store.Suppression{Address: addr, Cause: store.CauseBounce, Reason: "again", Source: "smtp", OutboxID: 4}) {
		t.Error("a second bounce changed the suppression")
	}
	list, err := db.ListSuppressions(ctx, store.SuppressionFilter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("list = %+v, %v", list, err)
	}
	s := list[0]
	if s.Cause != store.CauseBounce || s.Reason != "5.1.1 user unknown" || s.Source != "pipe" || s.OutboxID != 3 ||
		!strings.HasPrefix(s.Report, "Status: 5.1.1\r\n") || strings.Contains(s.Report, "\x00") || len(s.Report) > 17<<10 ||
		!s.CreatedAt.Equal(now.Add(-time.Hour)) {
		t.Fatalf("suppression = %+v (report %d bytes)", s, len(s.Report))
	}
	if !suppress(store.Suppression{Address: addr, Cause: store.CauseComplaint, Reason: "abuse", Source: "ses", OutboxID: 5}) {
		t.Fatal("a complaint did not replace a bounce suppression")
	}
	if suppress(store.Suppression{Address: addr, Cause: store.CauseBounce, Reason: "later", Source: "pipe", OutboxID: 6}) {
		t.Error("a bounce replaced a complaint")
	}
	var lifted bool
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		lifted, err = tx.LiftBounceSuppression(addr)
		return err
	})
	if lifted {
		t.Error("a fresh opt-in lifted a complaint")
	}
	if ok, _ := db.IsSuppressed(ctx, addr); !ok {
		t.Error("the complaint suppression is gone")
	}
	if rec, err := db.SubscriberRecord(ctx, addr); err != nil || rec.Delivery.SuppressionCause != store.CauseComplaint {
		t.Errorf("record = %+v, %v", rec.Delivery, err)
	}
}

func TestListSuppressionsFilters(t *testing.T) {
	db, now := openTest(t)
	ctx := context.Background()
	for i, s := range []store.Suppression{
		{Address: "ann@example.net", Cause: store.CauseBounce},
		{Address: "bob@example.org", Cause: store.CauseComplaint},
		{Address: "an_n@example.org", Cause: store.CauseBounce},
	} {
		*now = now.Add(time.Duration(i) * time.Minute)
		inTx(t, db, func(tx *store.Tx) error { _, err := tx.SuppressAddress(s); return err })
	}
	*now = now.Add(time.Minute)
	if err := db.Suppress(ctx, "carol@example.net", "asked by phone"); err != nil {
		t.Fatal(err)
	}
	addrs := func(f store.SuppressionFilter) string {
		list, err := db.ListSuppressions(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range list {
			out = append(out, s.Address)
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		f    store.SuppressionFilter
		want string
	}{
		{store.SuppressionFilter{}, "carol@example.net an_n@example.org bob@example.org ann@example.net"},
		{store.SuppressionFilter{Cause: store.CauseBounce}, "an_n@example.org ann@example.net"},
		{store.SuppressionFilter{Cause: store.CauseManual}, "carol@example.net"},
		{store.SuppressionFilter{Search: "AN"}, "an_n@example.org ann@example.net"},
		{store.SuppressionFilter{Search: "an_"}, "an_n@example.org"},
		{store.SuppressionFilter{Search: "%"}, ""},
		{store.SuppressionFilter{Search: ".org", Cause: store.CauseComplaint}, "bob@example.org"},
		{store.SuppressionFilter{Limit: 1}, "carol@example.net"},
	} {
		if got := addrs(tc.f); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestEndSubscriptionsOfAnAddress(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	d := storetest.Department(t, db, "home-office", "Home Office")
	e := storetest.Department(t, db, "treasury", "Treasury")
	a := storetest.Subscribe(t, db, "ann@example.net", store.Target{DepartmentID: d.ID}, store.FrequencyDaily)
	storetest.Request(t, db, "ann@example.net", store.Target{DepartmentID: e.ID}, store.FrequencyWeekly)
	other := storetest.Subscribe(t, db, "bob@example.net", store.Target{DepartmentID: d.ID}, store.FrequencyDaily)
	var n int
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		n, err = tx.EndSubscriptionsOf("ann@example.net")
		return err
	})
	if n != 2 {
		t.Fatalf("ended %d, want 2", n)
	}
	subs, _ := db.Subscriptions(ctx, a.Subscriber.ID)
	for _, s := range subs {
		if s.Status != store.SubscriptionEnded {
			t.Errorf("subscription %+v still %s", s, s.Status)
		}
	}
	if sub, _ := db.SubscriberByID(ctx, a.Subscriber.ID); sub.LastEndedAt.IsZero() {
		t.Error("the subscriber is not marked for erasure later")
	}
	if s, _ := db.SubscriptionByID(ctx, other.Subscription.ID); s.Status != store.SubscriptionActive {
		t.Errorf("another address's subscription is %s", s.Status)
	}
	inTx(t, db, func(tx *store.Tx) error {
		n, err := tx.EndSubscriptionsOf("nobody@example.net")
		if n != 0 {
			t.Errorf("ended %d of an unknown address", n)
		}
		return err
	})
}

func TestConfirmationRequestsReachAnAddressThatBouncedOnly(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	inTx(t, db, func(tx *store.Tx) error {
		if _, err := tx.SuppressAddress(store.Suppression{Address: "bounced@example.net", Cause: store.CauseBounce}); err != nil {
			return err
		}
		_, err := tx.SuppressAddress(store.Suppression{Address: "complained@example.net", Cause: store.CauseComplaint})
		return err
	})
	var msgs []store.OutboxMessage
	for _, a := range []string{"bounced@example.net", "complained@example.net"} {
		for _, kind := range []string{store.KindConfirm, store.KindDigest, store.KindManage} {
			msgs = append(msgs, store.OutboxMessage{Key: kind + ":" + a, Kind: kind, To: a, Subject: "s", Text: "t"})
		}
	}
	if _, err := db.EnqueueEmails(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	rows, err := db.OutboxMessages(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range rows {
		got[m.Key] = m.Status
	}
	want := map[string]string{
		"confirm:bounced@example.net": store.StatusPending, "digest:bounced@example.net": store.StatusSuppressed,
		"manage:bounced@example.net": store.StatusSuppressed, "confirm:complained@example.net": store.StatusSuppressed,
		"digest:complained@example.net": store.StatusSuppressed, "manage:complained@example.net": store.StatusSuppressed,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %s, want %s", k, got[k], w)
		}
	}
	// The claim decides the same way for rows queued before the
	// suppression.
	if _, err := db.EnqueueEmails(ctx, []store.OutboxMessage{
		{Key: "confirm:late@example.net", Kind: store.KindConfirm, To: "late@example.net", Subject: "s", Text: "t"},
		{Key: "digest:late@example.net", Kind: store.KindDigest, To: "late@example.net", Subject: "s", Text: "t"},
	}); err != nil {
		t.Fatal(err)
	}
	inTx(t, db, func(tx *store.Tx) error {
		_, err := tx.SuppressAddress(store.Suppression{Address: "late@example.net", Cause: store.CauseBounce})
		return err
	})
	claim, err := db.ClaimDue(ctx, 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, m := range claim.Messages {
		keys = append(keys, m.Key)
	}
	if strings.Join(keys, " ") != "confirm:bounced@example.net confirm:late@example.net" || claim.Suppressed != 1 {
		t.Fatalf("claimed %v, %d suppressed", keys, claim.Suppressed)
	}
}
