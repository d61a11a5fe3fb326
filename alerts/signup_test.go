package alerts_test

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"herald/alerts"
	"herald/alerts/alertstest"
	"herald/store"
	"herald/store/storetest"
)

// The pages (package web) choose their words and status from what the
// operations return; these tests hold the operations to that contract.
// The pages themselves are tested end to end in web.

func TestCheckRequestProblems(t *testing.T) {
	f := newSubFixture(t, nil)
	if err := f.db.RetireTopic(f.ctx, "budget"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                           string
		email, topic, department, freq string
		fields                         []string
		targetErr                      error
	}{
		{"good", "Ana@Example.org", "immigration", "", "daily", nil, nil},
		{"everything wrong", "not-an-address", "", "", "hourly", []string{"target", "email", "frequency"}, alerts.ErrInvalid},
		{"both targets", "ana@example.org", "immigration", "treasury", "daily", []string{"target"}, alerts.ErrInvalid},
		{"unknown topic", "ana@example.org", "nope", "", "daily", []string{"target"}, store.ErrNotFound},
		{"unknown department", "ana@example.org", "", "nope", "daily", []string{"target"}, store.ErrNotFound},
		{"ended topic", "ana@example.org", "budget", "", "daily", []string{"target"}, alerts.ErrTopicEnded},
		{"frequency with a line break", "ana@example.org", "", "treasury", "daily\r\n", []string{"frequency"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := f.svc.CheckRequest(f.ctx, tc.email, alerts.TargetFields{Topic: tc.topic, Department: tc.department}, tc.freq)
			if tc.fields == nil {
				if err != nil || req.Address() != "ana@example.org" || req.Target().Slug != "immigration" || req.Frequency() != "daily" {
					t.Fatalf("request %+v, %v", req, err)
				}
				return
			}
			var fe alerts.FieldErrors
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want FieldErrors", err)
			}
			var got []string
			for _, p := range fe {
				got = append(got, p.Field)
			}
			if len(got) != len(tc.fields) {
				t.Fatalf("fields %v, want %v", got, tc.fields)
			}
			for i := range got {
				if got[i] != tc.fields[i] {
					t.Fatalf("fields %v, want %v", got, tc.fields)
				}
			}
			if p, ok := fe.Get("target"); ok != (tc.targetErr != nil) || (ok && !errors.Is(p.Err, tc.targetErr)) {
				t.Errorf("target problem %+v, want one of kind %v", p, tc.targetErr)
			}
			if tc.targetErr == nil && req.Target().Slug != "treasury" {
				t.Errorf("the target found is not kept beside other problems: %+v", req.Target())
			}
		})
	}
}

func TestLinkErrors(t *testing.T) {
	f := newSubFixture(t, nil)
	pending := storetest.Request(t, f.db, "ana@example.org", store.Target{TopicID: f.immig.ID}, "daily")
	confirm := f.keys.Sign(alerts.Token{Purpose: alerts.PurposeConfirm, Subject: pending.Subscription.ID, Expires: f.clock.Now().Add(alerts.ConfirmTTL)})
	expired := f.keys.Sign(alerts.Token{Purpose: alerts.PurposeConfirm, Subject: pending.Subscription.ID, Expires: f.clock.Now()})
	manage := f.keys.Sign(alerts.Token{Purpose: alerts.PurposeManage, Subject: pending.Subscriber.ID, Expires: f.clock.Now().Add(alerts.ManageTTL)})
	for name, tc := range map[string]struct {
		err  error
		want error
	}{
		"forged":        {func() error { _, err := f.svc.PendingSubscription(f.ctx, "forged"); return err }(), alerts.ErrTokenInvalid},
		"expired":       {func() error { _, err := f.svc.Confirm(f.ctx, expired); return err }(), alerts.ErrTokenExpired},
		"wrong purpose": {func() error { _, err := f.svc.ManageSubscriber(f.ctx, confirm); return err }(), alerts.ErrTokenInvalid},
		"bad unsubscribe frequency": {func() error {
			_, err := f.svc.CheckUnsubscribe(f.ctx, f.keys.Sign(alerts.Token{Purpose: alerts.PurposeUnsubscribeAll, Subject: pending.Subscriber.ID, Aux: 9}))
			return err
		}(), alerts.ErrTokenInvalid},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", name, tc.err, tc.want)
		}
	}
	if sub, err := f.svc.PendingSubscription(f.ctx, confirm); err != nil || sub.Status != store.SubscriptionPending {
		t.Fatalf("pending subscription %+v, %v", sub, err)
	}
	// A request cancelled with its unsubscribe link no longer confirms.
	if _, err := f.svc.Unsubscribe(f.ctx, f.keys.Sign(alerts.Token{Purpose: alerts.PurposeUnsubscribe, Subject: pending.Subscription.ID})); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.PendingSubscription(f.ctx, confirm); !errors.Is(err, alerts.ErrLinkGone) {
		t.Errorf("cancelled request: %v, want ErrLinkGone", err)
	}
	if _, err := f.svc.Confirm(f.ctx, confirm); !errors.Is(err, alerts.ErrLinkGone) {
		t.Errorf("confirming a cancelled request: %v, want ErrLinkGone", err)
	}
	// A subscriber erased since the link was sent.
	if err := f.svc.EraseSubscriber(f.ctx, "ana@example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ManageSubscriber(f.ctx, manage); !errors.Is(err, alerts.ErrLinkGone) {
		t.Errorf("manage link of an erased subscriber: %v, want ErrLinkGone", err)
	}
}

func TestManageActionErrors(t *testing.T) {
	f := newSubFixture(t, func(c *alerts.Config) { c.ConfirmPerHour = 1 })
	ana := f.subscribe("ana@example.org", store.Target{TopicID: f.traffick.ID}, "daily")
	ben := f.subscribe("ben@example.org", store.Target{TopicID: f.traffick.ID}, "daily")
	sub := ana.Subscriber
	apply := func(a alerts.ManageAction) error { return f.svc.ApplyManageAction(f.ctx, sub, a) }
	field := func(err error) string {
		var fe alerts.FieldErrors
		if !errors.As(err, &fe) || len(fe) != 1 {
			return ""
		}
		return fe[0].Field
	}
	if err := apply(alerts.ManageAction{Action: alerts.ActionFrequency, Subscription: ana.Subscription.ID, Frequency: "hourly"}); field(err) != "frequency" {
		t.Errorf("bad frequency: %v", err)
	}
	if err := apply(alerts.ManageAction{Action: alerts.ActionFrequency, Subscription: ben.Subscription.ID, Frequency: "weekly"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another subscriber's subscription: %v, want store.ErrNotFound", err)
	}
	if err := apply(alerts.ManageAction{Action: alerts.ActionEnd}); !errors.Is(err, alerts.ErrInvalid) {
		t.Errorf("end without a subscription: %v, want ErrInvalid", err)
	}
	if err := apply(alerts.ManageAction{Action: "explode"}); !errors.Is(err, alerts.ErrInvalid) {
		t.Errorf("unknown action: %v, want ErrInvalid", err)
	}
	if err := apply(alerts.ManageAction{Action: alerts.ActionAddress, Email: "ANA@example.org"}); field(err) != "email" {
		t.Errorf("the same address: %v", err)
	}
	if err := apply(alerts.ManageAction{Action: alerts.ActionAddress, Email: "ben@example.org"}); err != nil {
		t.Fatal(err)
	}
	if err := apply(alerts.ManageAction{Action: alerts.ActionAddress, Email: "ben@example.org"}); !errors.Is(err, alerts.ErrTooManyLinks) {
		t.Errorf("a second link within the hour: %v, want ErrTooManyLinks", err)
	}
	// Only ben can follow the link sent to ben's address: the change is
	// refused, since that address has its own subscriptions.
	sub, err := f.db.SubscriberByID(f.ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	link := f.keys.Sign(alerts.Token{Purpose: alerts.PurposeAddressChange, Subject: sub.ID, Aux: sub.PendingNonce, Expires: f.clock.Now().Add(time.Hour)})
	if _, err := f.svc.PendingAddressChange(f.ctx, link); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ChangeAddress(f.ctx, link); !errors.Is(err, alerts.ErrAddressTaken) {
		t.Errorf("change to a taken address: %v, want ErrAddressTaken", err)
	}
}

// confirmToken is the token in the confirmation link of an email.
func confirmToken(t *testing.T, text string) string {
	t.Helper()
	u, err := url.Parse(subLink(t, text, "/subscribe/confirm"))
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}

func TestSubscriptionLifecycle(t *testing.T) {
	f := newSubFixture(t, func(c *alerts.Config) { c.ConfirmPerHour = 2 })
	request := func(freq string) {
		t.Helper()
		req, err := f.svc.CheckRequest(f.ctx, "ana@example.org", alerts.TargetFields{Department: "home-office"}, freq)
		if err != nil {
			t.Fatal(err)
		}
		f.svc.RequestSubscription(f.ctx, req)
		f.svc.Wait()
	}
	for range 3 {
		request("daily")
	}
	confirms := f.outbox(alertstest.Kind(store.KindConfirm))
	if len(confirms) != 2 {
		t.Fatalf("%d confirmations queued, want 2 (the third was over the limit)", len(confirms))
	}
	first := confirmToken(t, confirms[0].Text)
	p1, err := f.svc.PendingSubscription(f.ctx, first)
	if err != nil || p1.Status != store.SubscriptionPending {
		t.Fatalf("pending: %+v, %v", p1, err)
	}
	if p2, err := f.svc.PendingSubscription(f.ctx, confirmToken(t, confirms[1].Text)); err != nil || p2.ID != p1.ID {
		t.Fatalf("a repeated request should reuse the pending subscription: %+v, %v", p2, err)
	}

	res, err := f.svc.Confirm(f.ctx, first)
	if err != nil || res.Subscription.Status != store.SubscriptionActive || res.AlreadyActive || res.Subscriber.ConfirmedAt.IsZero() || res.Queued != 1 {
		t.Fatalf("confirm: %+v, %v", res, err)
	}
	if res, err = f.svc.Confirm(f.ctx, first); err != nil || !res.AlreadyActive || res.Queued != 0 {
		t.Fatalf("second confirm: %+v, %v", res, err)
	}
	// Another frequency for the same department replaces it on confirmation
	// (once the hourly limit allows another link).
	f.clock.Add(time.Hour + time.Minute)
	request("weekly")
	confirms = f.outbox(alertstest.Kind(store.KindConfirm))
	res, err = f.svc.Confirm(f.ctx, confirmToken(t, confirms[len(confirms)-1].Text))
	if err != nil || res.Replaced == nil || res.Replaced.ID != p1.ID || res.Replaced.Status != store.SubscriptionEnded {
		t.Fatalf("replace: %+v, %v", res, err)
	}
	subs, _ := f.db.Subscriptions(f.ctx, res.Subscriber.ID)
	if len(subs) != 1 || subs[0].Frequency != "weekly" || subs[0].Name != "Home Office" || subs[0].Kind != "department" {
		t.Fatalf("subscriptions: %+v", subs)
	}
	if _, err := f.svc.Confirm(f.ctx, first); !errors.Is(err, alerts.ErrLinkGone) {
		t.Errorf("confirming a replaced subscription: %v, want ErrLinkGone", err)
	}
	// The same wish twice keeps the older subscription and drops the new one.
	request("weekly")
	confirms = f.outbox(alertstest.Kind(store.KindConfirm))
	dup := confirmToken(t, confirms[len(confirms)-1].Text)
	res, err = f.svc.Confirm(f.ctx, dup)
	if err != nil || !res.AlreadyActive || res.Subscription.ID != subs[0].ID || res.Queued != 0 {
		t.Fatalf("same wish twice: %+v, %v", res, err)
	}
	if _, err := f.svc.PendingSubscription(f.ctx, dup); !errors.Is(err, alerts.ErrLinkGone) {
		t.Errorf("the duplicate request is still pending: %v", err)
	}
	unknown := f.keys.Sign(alerts.Token{Purpose: alerts.PurposeConfirm, Subject: 9999, Expires: f.clock.Now().Add(time.Hour)})
	if _, err := f.svc.Confirm(f.ctx, unknown); !errors.Is(err, alerts.ErrLinkGone) {
		t.Errorf("unknown subscription: %v, want ErrLinkGone", err)
	}
	if n := len(f.outbox(alertstest.Kind(store.KindWelcome))); n != 2 {
		t.Errorf("%d welcome messages, want one per subscription made active", n)
	}
}

func TestConfirmingLiftsABounceSuppressionButNotAComplaint(t *testing.T) {
	f := newSubFixture(t, nil)
	for _, tc := range []struct {
		address, cause string
		lifted         bool
	}{
		{"bounced@example.org", store.CauseBounce, true},
		{"complained@example.org", store.CauseComplaint, false},
	} {
		t.Run(tc.cause, func(t *testing.T) {
			err := f.db.InTx(f.ctx, func(tx *store.Tx) error {
				_, err := tx.SuppressAddress(store.Suppression{Address: tc.address, Cause: tc.cause, Reason: "5.1.1"})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			req, err := f.svc.CheckRequest(f.ctx, tc.address, alerts.TargetFields{Department: "home-office"}, "daily")
			if err != nil {
				t.Fatal(err)
			}
			// The form's answer is the same for any address: the request
			// returns nothing that tells them apart.
			f.svc.RequestSubscription(f.ctx, req)
			f.svc.Wait()
			var confirm subOutboxRow
			for _, m := range f.outbox(alertstest.Kind(store.KindConfirm)) {
				if m.To == tc.address {
					confirm = m
				}
			}
			wantStatus := store.StatusPending
			if !tc.lifted {
				wantStatus = store.StatusSuppressed
			}
			if confirm.Status != wantStatus {
				t.Fatalf("confirmation request is %q, want %q", confirm.Status, wantStatus)
			}
			if _, err := f.svc.Confirm(f.ctx, confirmToken(t, confirm.Text)); err != nil {
				t.Fatal(err)
			}
			suppressed, err := f.db.IsSuppressed(f.ctx, tc.address)
			if err != nil || suppressed == tc.lifted {
				t.Fatalf("suppressed after confirming = %v, %v; want %v", suppressed, err, !tc.lifted)
			}
		})
	}
}
