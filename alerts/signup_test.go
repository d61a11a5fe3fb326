package alerts_test

import (
	"errors"
	"testing"
	"time"

	"herald/alerts"
	"herald/store"
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
			req, err := f.svc.CheckRequest(f.ctx, tc.email, tc.topic, tc.department, tc.freq)
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
	pending, err := f.db.RequestSubscription(f.ctx, store.SubscriptionRequest{Address: "ana@example.org",
		Target: store.Target{TopicID: f.immig.ID}, Frequency: "daily"})
	if err != nil {
		t.Fatal(err)
	}
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
