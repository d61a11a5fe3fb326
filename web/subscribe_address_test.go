package web_test

import (
	"html"
	"net/http"
	"strings"
	"testing"

	"herald/alerts"
	"herald/alerts/address/addresstest"
	"herald/alerts/alertstest"
	"herald/store"
	"herald/web"
)

// TestSubscribeFormAddresses sends the shared address table through the
// public subscribe form: each address is refused with the rule's words or
// stored in its canonical form, and spellings of one mailbox make one
// subscriber. The console, the API, the CLI and CSV import run the same
// table.
func TestSubscribeFormAddresses(t *testing.T) {
	f := newSubFixture(t, func(_ *alerts.Config, w *web.Config) { w.ConfirmPerIPHour = 1000 })
	b := newSubBrowser(t, f.server())
	for _, tc := range addresstest.Cases() {
		t.Run(tc.Name, func(t *testing.T) {
			p := b.post("/subscribe", subscribeForm(t, b, tc.Input, "human-trafficking", "daily"))
			f.svc.Wait()
			if !tc.Accepted() {
				if want := "Your email address " + tc.Problem + "."; p.Status != http.StatusUnprocessableEntity || !strings.Contains(html.UnescapeString(p.Body), want) {
					t.Errorf("status %d (want 422), body lacks %q:\n%s", p.Status, want, p.Body)
				}
				return
			}
			if p.Status != http.StatusOK {
				t.Fatalf("status %d, want 200:\n%s", p.Status, p.Body)
			}
			if _, err := f.db.SubscriberByAddress(f.ctx, tc.Want); err != nil {
				t.Errorf("no subscriber %q: %v", tc.Want, err)
			}
		})
	}
	// Every confirmation went to a canonical address, and the spellings
	// of one mailbox reached one subscriber.
	subscriber := map[string]int64{}
	for _, r := range f.outbox(alertstest.Kind(store.KindConfirm)) {
		if id, ok := subscriber[r.To]; ok && id != r.SubscriberID {
			t.Errorf("%s is subscribers %d and %d", r.To, id, r.SubscriberID)
		}
		subscriber[r.To] = r.SubscriberID
	}
	want := addresstest.Canonical()
	if len(subscriber) != len(want) {
		t.Errorf("confirmations went to %d addresses, want %d", len(subscriber), len(want))
	}
	for _, a := range want {
		if _, ok := subscriber[a]; !ok {
			t.Errorf("no confirmation to %s", a)
		}
	}
}
