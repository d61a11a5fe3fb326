package web_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"herald/alerts"
	"herald/alerts/alertstest"
	"herald/store"
	"herald/web"
)

// subscribeForm fetches the form for topic and returns a filled POST body.
func subscribeForm(t *testing.T, b *subBrowser, email, topic, freq string) url.Values {
	t.Helper()
	p := b.get("/subscribe?topic=" + topic)
	if p.Status != http.StatusOK {
		t.Fatalf("GET /subscribe?topic=%s: %d\n%s", topic, p.Status, p.Body)
	}
	return url.Values{"email": {email}, "topic": {topic}, "frequency": {freq}, "csrf_token": {subCSRF(t, p)}}
}

func TestSubscribeConfirmWelcome(t *testing.T) {
	f := newSubFixture(t, nil)
	b := newSubBrowser(t, f.server())

	p := b.post("/subscribe", subscribeForm(t, b, "Ana@Example.org", "human-trafficking", "daily"))
	f.svc.Wait()
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Check your email") {
		t.Fatalf("POST /subscribe: %d\n%s", p.Status, p.Body)
	}
	if got := p.Header.Get("Cache-Control"); got != "private, no-store" {
		t.Errorf("Cache-Control = %q", got)
	}
	rows := f.outbox(nil)
	if len(rows) != 1 {
		t.Fatalf("outbox has %d rows, want 1 confirmation", len(rows))
	}
	c := rows[0]
	if c.Kind != store.KindConfirm || c.To != "ana@example.org" || !strings.HasPrefix(c.Key, "confirm:") || c.Unsubscribe == "" {
		t.Fatalf("confirmation row = %+v", c)
	}
	if strings.ContainsAny(c.Subject, "\r\n") || !strings.Contains(c.Subject, "Human trafficking") {
		t.Errorf("subject %q", c.Subject)
	}
	if strings.Contains(c.HTML, "<script") || !strings.Contains(c.HTML, "<table") {
		t.Errorf("confirmation HTML should use tables and no scripts")
	}
	link := subLink(t, c.Text, "/subscribe/confirm?token=")
	if !strings.Contains(c.HTML, strings.ReplaceAll(link, "&", "&amp;")) {
		t.Errorf("HTML part lacks the confirmation link %s", link)
	}
	// No address in any link.
	for _, l := range subLinks(c.Text, "/") {
		if strings.Contains(strings.ToLower(l), "ana") {
			t.Errorf("link reveals the address: %s", l)
		}
	}

	// Following the link shows a button and changes nothing: scanners
	// that fetch links confirm no one.
	for range 2 {
		p = b.get(link)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "Confirm my subscription") {
			t.Fatalf("GET confirm: %d\n%s", p.Status, p.Body)
		}
	}
	sub, err := f.db.SubscriberByAddress(f.ctx, "ana@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if subs, _ := f.db.Subscriptions(f.ctx, sub.ID); len(subs) != 0 {
		t.Fatalf("GET confirmed the subscription: %+v", subs)
	}
	tok := regexpValue(t, p.Body, "token")
	p = b.post("/subscribe/confirm", url.Values{"token": {tok}, "csrf_token": {subCSRF(t, p)}})
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "You are subscribed") {
		t.Fatalf("POST confirm: %d\n%s", p.Status, p.Body)
	}
	subs, err := f.db.Subscriptions(f.ctx, sub.ID)
	if err != nil || len(subs) != 1 || subs[0].Frequency != "daily" || subs[0].Slug != "human-trafficking" {
		t.Fatalf("subscriptions = %+v, %v", subs, err)
	}
	welcome := f.outbox(alertstest.Kind(store.KindWelcome))
	if len(welcome) != 1 {
		t.Fatalf("%d welcome messages, want 1", len(welcome))
	}
	if w := welcome[0]; w.Unsubscribe == "" || len(subLinks(w.Text, "/manage/")) != 1 || len(subLinks(w.Text, "/unsubscribe/")) != 1 {
		t.Errorf("welcome lacks manage and unsubscribe links:\n%s", w.Text)
	}
	// Confirming twice changes nothing and sends nothing more.
	p = b.post("/subscribe/confirm", url.Values{"token": {tok}, "csrf_token": {subCSRF(t, b.get("/manage"))}})
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "already subscribed") {
		t.Fatalf("second confirm: %d\n%s", p.Status, p.Body)
	}
	if n := len(f.outbox(alertstest.Kind(store.KindWelcome))); n != 1 {
		t.Errorf("%d welcome messages after a second confirmation, want 1", n)
	}
}

// regexpValue returns the value of a hidden input.
func regexpValue(t *testing.T, body, name string) string {
	t.Helper()
	i := strings.Index(body, `name="`+name+`" value="`)
	if i < 0 {
		t.Fatalf("no input %q in\n%s", name, body)
	}
	rest := body[i+len(`name="`+name+`" value="`):]
	return rest[:strings.IndexByte(rest, '"')]
}

func TestResubscribingChangesFrequencyAfterConfirmation(t *testing.T) {
	f := newSubFixture(t, nil)
	b := newSubBrowser(t, f.server())
	confirm := func(freq string) subPage {
		b.post("/subscribe", subscribeForm(t, b, "ben@example.org", "immigration", freq))
		f.svc.Wait()
		rows := f.outbox(alertstest.Kind(store.KindConfirm))
		link := subLink(t, rows[len(rows)-1].Text, "/subscribe/confirm")
		p := b.get(link)
		return b.post("/subscribe/confirm", url.Values{"token": {regexpValue(t, p.Body, "token")}, "csrf_token": {subCSRF(t, p)}})
	}
	confirm("immediately")
	sub, _ := f.db.SubscriberByAddress(f.ctx, "ben@example.org")
	b.post("/subscribe", subscribeForm(t, b, "ben@example.org", "immigration", "weekly"))
	f.svc.Wait()
	// Until the new request is confirmed, nothing changes.
	if subs, _ := f.db.Subscriptions(f.ctx, sub.ID); len(subs) != 1 || subs[0].Frequency != "immediately" {
		t.Fatalf("before confirmation: %+v", subs)
	}
	p := confirm("weekly")
	if !strings.Contains(p.Body, "now come once a week, instead of as soon as something is published") {
		t.Errorf("confirmation page does not say the frequency changed:\n%s", p.Body)
	}
	subs, _ := f.db.Subscriptions(f.ctx, sub.ID)
	if len(subs) != 1 || subs[0].Frequency != "weekly" {
		t.Fatalf("after confirmation: %+v", subs)
	}
}

func TestSubscribeDoesNotRevealKnownAddresses(t *testing.T) {
	f := newSubFixture(t, nil)
	f.subscribe("known@example.org", store.Target{TopicID: f.traffick.ID}, "daily")
	b := newSubBrowser(t, f.server())
	known := b.post("/subscribe", subscribeForm(t, b, "known@example.org", "human-trafficking", "daily"))
	unknown := b.post("/subscribe", subscribeForm(t, b, "stranger@example.org", "human-trafficking", "daily"))
	f.svc.Wait()
	if known.Status != unknown.Status {
		t.Fatalf("status %d for a known address, %d for an unknown one", known.Status, unknown.Status)
	}
	if a, b := strings.ReplaceAll(known.Body, "known@", "X@"), strings.ReplaceAll(unknown.Body, "stranger@", "X@"); a != b {
		t.Errorf("pages differ for a known and an unknown address:\n%s\n---\n%s", known.Body, unknown.Body)
	}
	for _, h := range []string{"Set-Cookie", "Cache-Control", "Content-Length"} {
		if known.Header.Get(h) != unknown.Header.Get(h) && h != "Content-Length" {
			t.Errorf("header %s differs", h)
		}
	}
	// Both get a confirmation: the owner of the known address learns
	// about the request from their own mailbox only.
	if n := len(f.outbox(alertstest.Kind(store.KindConfirm))); n != 2 {
		t.Errorf("%d confirmations, want 2", n)
	}

	// The manage form answers the same for both, and mails only the known.
	p := b.get("/manage")
	known = b.post("/manage", url.Values{"email": {"known@example.org"}, "csrf_token": {subCSRF(t, p)}})
	unknown = b.post("/manage", url.Values{"email": {"stranger@example.org"}, "csrf_token": {subCSRF(t, p)}})
	f.svc.Wait()
	if known.Status != http.StatusOK || known.Status != unknown.Status {
		t.Fatalf("manage: %d and %d", known.Status, unknown.Status)
	}
	if a, b := strings.ReplaceAll(known.Body, "known@", "X@"), strings.ReplaceAll(unknown.Body, "stranger@", "X@"); a != b {
		t.Errorf("manage pages differ:\n%s\n---\n%s", known.Body, unknown.Body)
	}
	rows := f.outbox(alertstest.Kind(store.KindManage))
	if len(rows) != 1 || rows[0].To != "known@example.org" {
		t.Errorf("manage messages = %+v, want one to the known address", rows)
	}
}

func TestSubscribeRejectsBadInput(t *testing.T) {
	f := newSubFixture(t, nil)
	b := newSubBrowser(t, f.server())
	good := subscribeForm(t, b, "ok@example.org", "human-trafficking", "daily")
	with := func(k, v string) url.Values {
		out := url.Values{}
		for kk, vv := range good {
			out[kk] = append([]string(nil), vv...)
		}
		out.Set(k, v)
		return out
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		want   string
	}{
		{"no address", with("email", ""), 422, "Your email address is required."},
		{"not an address", with("email", "not-an-address"), 422, "Your email address must contain an @, like name@example.org."},
		{"display name", with("email", "Ana <ana@example.org>"), 422, "Your email address must be the bare address"},
		{"no dot in domain", with("email", "ana@localhost"), 422, "Your email address must have a full domain with a dot"},
		{"CRLF in address", with("email", "ana@example.org\r\nBcc: x@example.org"), 422, "must not contain line breaks"},
		{"CRLF in topic", with("topic", "human-trafficking\r\nX: y"), 400, "must not contain line breaks"},
		{"CRLF in frequency", with("frequency", "daily\r\n"), 422, "must not contain line breaks"},
		{"bad frequency", with("frequency", "hourly"), 422, "Choose immediately, daily or weekly."},
		{"no frequency", with("frequency", ""), 422, "Choose how often you want emails."},
		{"unknown topic", with("topic", "no-such-topic"), 404, "There is no topic called"},
		{"topic and department", with("department", "treasury"), 400, "not several"},
		{"missing CSRF", with("csrf_token", ""), 403, "This form had expired"},
		{"forged CSRF", with("csrf_token", strings.Repeat("A", 43)), 403, "This form had expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := b.post("/subscribe", tc.form)
			f.svc.Wait()
			if p.Status != tc.status || !strings.Contains(p.Body, tc.want) {
				t.Errorf("status %d (want %d), body lacks %q:\n%s", p.Status, tc.status, tc.want, p.Body)
			}
			if p.Header.Get("Cache-Control") != "private, no-store" {
				t.Errorf("Cache-Control = %q", p.Header.Get("Cache-Control"))
			}
			if strings.Contains(p.Body, "\r\nBcc") {
				t.Errorf("the page repeats the injected header")
			}
			if n := len(f.outbox(nil)); n != 0 {
				t.Errorf("%d messages queued for a bad request", n)
			}
		})
	}
	t.Run("no cookie at all", func(t *testing.T) {
		p := newSubBrowser(t, b.srv).post("/subscribe", good)
		if p.Status != http.StatusForbidden {
			t.Errorf("status %d, want 403", p.Status)
		}
	})
	t.Run("oversized body", func(t *testing.T) {
		p := b.post("/subscribe", with("email", strings.Repeat("a", 20<<10)+"@example.org"))
		if p.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413", p.Status)
		}
	})
	if n := len(f.outbox(nil)); n != 0 {
		t.Errorf("%d messages queued for bad requests", n)
	}
}

func TestSubscribePages(t *testing.T) {
	f := newSubFixture(t, nil)
	if err := f.db.RetireTopic(f.ctx, "budget"); err != nil {
		t.Fatal(err)
	}
	b := newSubBrowser(t, f.server())
	tests := []struct {
		path   string
		status int
		want   string
	}{
		{"/subscribe", 200, `href="/subscribe?topic=human-trafficking"`},
		{"/subscribe?topic=human-trafficking", 200, "Get emails about Human trafficking"},
		{"/subscribe?department=treasury", 200, `name="department" value="treasury"`},
		{"/subscribe?topic=nope", 404, "There is no topic called"},
		{"/subscribe?department=nope", 404, "There is no department called"},
		{"/subscribe?topic=Bad%20Slug%3Cscript%3E", 404, "There is no topic called “Bad Slug&lt;script&gt;”"},
		{"/subscribe?topic=budget", 410, "has ended"},
		{"/subscribe?topic=immigration&department=treasury", 400, "not several"},
		{"/subscribe/confirm?token=forged", 400, "This link is not valid"},
		{"/manage", 200, "Send me a link"},
		{"/manage/forged", 400, "This link is not valid"},
		{"/manage/address/forged", 400, "This link is not valid"},
		{"/unsubscribe/forged", 400, "This unsubscribe link is not valid"},
	}
	for _, tc := range tests {
		p := b.get(tc.path)
		if p.Status != tc.status || !strings.Contains(p.Body, tc.want) {
			t.Errorf("GET %s: status %d (want %d), body lacks %q:\n%s", tc.path, p.Status, tc.status, tc.want, p.Body)
		}
		if p.Header.Get("Cache-Control") != "private, no-store" || p.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: headers %v", tc.path, p.Header)
		}
	}
}

func TestConfirmationRateLimits(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		f := newSubFixture(t, func(a *alerts.Config, w *web.Config) { a.ConfirmPerHour = 3; w.ConfirmPerIPHour = 100 })
		b := newSubBrowser(t, f.server())
		var first subPage
		for i := range 5 {
			p := b.post("/subscribe", subscribeForm(t, b, "ana@example.org", "immigration", "daily"))
			f.svc.Wait()
			if i == 0 {
				first = p
			} else if p.Status != first.Status || p.Body != first.Body {
				t.Fatalf("request %d answered differently:\n%s", i, p.Body)
			}
		}
		if n := len(f.outbox(alertstest.Kind(store.KindConfirm))); n != 3 {
			t.Fatalf("%d confirmations, want 3", n)
		}
		// Another address is not affected; the same one is after an hour.
		b.post("/subscribe", subscribeForm(t, b, "ben@example.org", "immigration", "daily"))
		f.clock.Add(61 * time.Minute)
		b.post("/subscribe", subscribeForm(t, b, "ana@example.org", "immigration", "daily"))
		f.svc.Wait()
		if n := len(f.outbox(alertstest.Kind(store.KindConfirm))); n != 5 {
			t.Fatalf("%d confirmations, want 5", n)
		}
	})
	t.Run("per client", func(t *testing.T) {
		f := newSubFixture(t, func(a *alerts.Config, w *web.Config) { a.ConfirmPerHour = 100; w.ConfirmPerIPHour = 2 })
		b := newSubBrowser(t, f.server())
		var pages []subPage
		for _, a := range []string{"a@example.org", "b@example.org", "c@example.org", "d@example.org"} {
			pages = append(pages, b.post("/subscribe", subscribeForm(t, b, a, "immigration", "daily")))
		}
		f.svc.Wait()
		if n := len(f.outbox(alertstest.Kind(store.KindConfirm))); n != 2 {
			t.Fatalf("%d confirmations from one client, want 2", n)
		}
		if pages[3].Status != http.StatusOK || !strings.Contains(pages[3].Body, "Check your email") {
			t.Errorf("a limited request must look like any other:\n%s", pages[3].Body)
		}
		f.clock.Add(time.Hour)
		b.post("/subscribe", subscribeForm(t, b, "e@example.org", "immigration", "daily"))
		f.svc.Wait()
		if n := len(f.outbox(alertstest.Kind(store.KindConfirm))); n != 3 {
			t.Errorf("%d confirmations an hour later, want 3", n)
		}
	})
}

func TestConfirmLinks(t *testing.T) {
	f := newSubFixture(t, nil)
	b := newSubBrowser(t, f.server())
	b.post("/subscribe", subscribeForm(t, b, "ana@example.org", "immigration", "daily"))
	f.svc.Wait()
	link := subLink(t, f.outbox(nil)[0].Text, "/subscribe/confirm")
	tok := link[strings.Index(link, "token=")+len("token="):]

	t.Run("forged", func(t *testing.T) {
		forged := tok[:len(tok)-2] + map[bool]string{true: "AA", false: "BB"}[!strings.HasSuffix(tok, "AA")]
		if p := b.get("/subscribe/confirm?token=" + forged); p.Status != http.StatusBadRequest {
			t.Errorf("forged token: %d", p.Status)
		}
		other, _ := alerts.NewKeys("another key, not the service's one")
		p := b.get("/subscribe/confirm?token=" + other.Sign(alerts.Token{Purpose: alerts.PurposeConfirm, Subject: 1, Expires: f.clock.Now().Add(time.Hour)}))
		if p.Status != http.StatusBadRequest {
			t.Errorf("token from another key: %d", p.Status)
		}
		wrong := f.keys.Sign(alerts.Token{Purpose: alerts.PurposeManage, Subject: 1, Expires: f.clock.Now().Add(time.Hour)})
		if p := b.get("/subscribe/confirm?token=" + wrong); p.Status != http.StatusBadRequest {
			t.Errorf("manage token used to confirm: %d", p.Status)
		}
	})
	t.Run("missing CSRF", func(t *testing.T) {
		p := b.post("/subscribe/confirm", url.Values{"token": {tok}})
		if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "press the button again") {
			t.Fatalf("status %d\n%s", p.Status, p.Body)
		}
		sub, _ := f.db.SubscriberByAddress(f.ctx, "ana@example.org")
		if subs, _ := f.db.Subscriptions(f.ctx, sub.ID); len(subs) != 0 {
			t.Errorf("confirmed without a CSRF token")
		}
	})
	t.Run("expired", func(t *testing.T) {
		f.clock.Add(alerts.ConfirmTTL)
		p := b.get(link)
		if p.Status != http.StatusGone || !strings.Contains(p.Body, "expired") {
			t.Errorf("expired link: %d\n%s", p.Status, p.Body)
		}
		p = b.post("/subscribe/confirm", url.Values{"token": {tok}, "csrf_token": {subCSRF(t, b.get("/manage"))}})
		if p.Status != http.StatusGone {
			t.Errorf("POST with an expired link: %d", p.Status)
		}
	})
}

func TestManage(t *testing.T) {
	f := newSubFixture(t, nil)
	a := f.subscribe("ana@example.org", store.Target{TopicID: f.traffick.ID}, "daily")
	f.subscribe("ana@example.org", store.Target{DepartmentID: f.treasury.ID}, "weekly")
	f.subscribe("other@example.org", store.Target{DepartmentID: f.treasury.ID}, "weekly")
	b := newSubBrowser(t, f.server())

	p := b.get("/manage")
	b.post("/manage", url.Values{"email": {"ANA@example.org"}, "csrf_token": {subCSRF(t, p)}})
	f.svc.Wait()
	rows := f.outbox(alertstest.Kind(store.KindManage))
	if len(rows) != 1 || rows[0].To != "ana@example.org" || rows[0].Unsubscribe == "" {
		t.Fatalf("manage messages: %+v", rows)
	}
	link := subLink(t, rows[0].Text, "/manage/")
	p = b.get(link)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Human trafficking") || !strings.Contains(p.Body, "Treasury") {
		t.Fatalf("manage page: %d\n%s", p.Status, p.Body)
	}
	if p.Header.Get("Cache-Control") != "private, no-store" {
		t.Errorf("Cache-Control = %q", p.Header.Get("Cache-Control"))
	}
	csrf := subCSRF(t, p)
	subs, _ := f.db.Subscriptions(f.ctx, a.Subscriber.ID)
	var trafficking store.Subscription
	for _, s := range subs {
		if s.Slug == "human-trafficking" {
			trafficking = s
		}
	}
	id := func(s store.Subscription) string { return strconv.FormatInt(s.ID, 10) }

	// No CSRF token: nothing changes.
	p = b.post(link, url.Values{"action": {"frequency"}, "subscription": {id(trafficking)}, "frequency": {"weekly"}})
	if p.Status != http.StatusForbidden {
		t.Fatalf("without CSRF: %d", p.Status)
	}
	p = b.post(link, url.Values{"action": {"frequency"}, "subscription": {id(trafficking)}, "frequency": {"hourly"}, "csrf_token": {csrf}})
	if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "Choose immediately, daily or weekly.") {
		t.Fatalf("bad frequency: %d\n%s", p.Status, p.Body)
	}
	if s, _ := f.db.SubscriptionByID(f.ctx, trafficking.ID); s.Frequency != "daily" {
		t.Fatalf("frequency changed by a rejected request: %s", s.Frequency)
	}
	p = b.post(link, url.Values{"action": {"frequency"}, "subscription": {id(trafficking)}, "frequency": {"immediately"}, "csrf_token": {csrf}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("change frequency: %d\n%s", p.Status, p.Body)
	}
	if s, _ := f.db.SubscriptionByID(f.ctx, trafficking.ID); s.Frequency != "immediately" {
		t.Fatalf("frequency = %s", s.Frequency)
	}
	if p = b.get(p.Header.Get("Location")); !strings.Contains(p.Body, "Your subscription has been changed.") {
		t.Errorf("no notice after the change:\n%s", p.Body)
	}

	// Someone else's subscription cannot be touched with this link.
	others, _ := f.db.SubscriberByAddress(f.ctx, "other@example.org")
	otherSubs, _ := f.db.Subscriptions(f.ctx, others.ID)
	b.post(link, url.Values{"action": {"end"}, "subscription": {id(otherSubs[0])}, "csrf_token": {csrf}})
	if s, _ := f.db.SubscriptionByID(f.ctx, otherSubs[0].ID); s.Status != store.SubscriptionActive {
		t.Fatalf("ended another subscriber's subscription")
	}

	p = b.post(link, url.Values{"action": {"end"}, "subscription": {id(trafficking)}, "csrf_token": {csrf}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("end: %d", p.Status)
	}
	if s, _ := f.db.SubscriptionByID(f.ctx, trafficking.ID); s.Status != store.SubscriptionEnded {
		t.Fatalf("status = %s", s.Status)
	}

	// Change of address: confirmed at the new address before it applies.
	p = b.post(link, url.Values{"action": {"address"}, "email": {"ana@example.org"}, "csrf_token": {csrf}})
	if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "already your address") {
		t.Fatalf("same address: %d", p.Status)
	}
	p = b.post(link, url.Values{"action": {"address"}, "email": {"ana\r\n@example.org"}, "csrf_token": {csrf}})
	if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "must not contain line breaks") {
		t.Fatalf("CRLF address: %d\n%s", p.Status, p.Body)
	}
	p = b.post(link, url.Values{"action": {"address"}, "email": {"ana.new@example.org"}, "csrf_token": {csrf}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("address change: %d\n%s", p.Status, p.Body)
	}
	change := f.outbox(alertstest.Kind(store.KindAddressChange))
	if len(change) != 1 || change[0].To != "ana.new@example.org" {
		t.Fatalf("address change messages: %+v", change)
	}
	if got, _ := f.db.SubscriberByID(f.ctx, a.Subscriber.ID); got.Address != "ana@example.org" {
		t.Fatalf("address changed before confirmation: %s", got.Address)
	}
	clink := subLink(t, change[0].Text, "/manage/address/")
	p = b.get(clink)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "ana.new@example.org") {
		t.Fatalf("address confirmation page: %d\n%s", p.Status, p.Body)
	}
	p = b.post(clink, url.Values{"csrf_token": {subCSRF(t, p)}})
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Your address has changed") {
		t.Fatalf("confirm address: %d\n%s", p.Status, p.Body)
	}
	if got, _ := f.db.SubscriberByID(f.ctx, a.Subscriber.ID); got.Address != "ana.new@example.org" {
		t.Fatalf("address = %s", got.Address)
	}
	if p = b.get(clink); p.Status != http.StatusGone {
		t.Errorf("a used address link: %d", p.Status)
	}

	// An address that has its own subscriptions cannot be taken over.
	p = b.post(link, url.Values{"action": {"address"}, "email": {"other@example.org"}, "csrf_token": {csrf}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("request change to a taken address: %d", p.Status)
	}
	change = f.outbox(func(m alertstest.Message) bool {
		return m.Kind == store.KindAddressChange && m.To == "other@example.org"
	})
	clink = subLink(t, change[0].Text, "/manage/address/")
	p = b.get(clink)
	if p = b.post(clink, url.Values{"csrf_token": {subCSRF(t, p)}}); p.Status != http.StatusConflict {
		t.Fatalf("taken address: %d\n%s", p.Status, p.Body)
	}

	p = b.post(link, url.Values{"action": {"end_all"}, "csrf_token": {csrf}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("end all: %d", p.Status)
	}
	if subs, _ := f.db.Subscriptions(f.ctx, a.Subscriber.ID); len(subs) != 0 {
		t.Fatalf("subscriptions left after end all: %+v", subs)
	}
	if p = b.post(link, url.Values{"action": {"explode"}, "csrf_token": {csrf}}); p.Status != http.StatusBadRequest {
		t.Errorf("unknown action: %d", p.Status)
	}

	f.clock.Add(alerts.ManageTTL)
	if p = b.get(link); p.Status != http.StatusGone || !strings.Contains(p.Body, "expired") {
		t.Errorf("expired manage link: %d", p.Status)
	}
}

func TestUnsubscribeOneClick(t *testing.T) {
	f := newSubFixture(t, nil)
	res := f.subscribe("ana@example.org", store.Target{TopicID: f.traffick.ID}, "immediately")
	keep := f.subscribe("ana@example.org", store.Target{DepartmentID: f.treasury.ID}, "daily")
	srv := f.server()
	tok := f.keys.Sign(alerts.Token{Purpose: alerts.PurposeUnsubscribe, Subject: res.Subscription.ID})

	// A GET (a link scanner) shows a button and unsubscribes nobody.
	b := newSubBrowser(t, srv)
	p := b.get("/unsubscribe/" + tok)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Human trafficking") || !strings.Contains(p.Body, `method="post"`) {
		t.Fatalf("GET unsubscribe: %d\n%s", p.Status, p.Body)
	}
	if s, _ := f.db.SubscriptionByID(f.ctx, res.Subscription.ID); s.Status != store.SubscriptionActive {
		t.Fatalf("GET unsubscribed")
	}
	// RFC 8058: a POST with no cookie and no CSRF token unsubscribes.
	oneClick := func() *http.Response {
		resp, err := http.Post(srv.URL+"/unsubscribe/"+tok, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := oneClick(); resp.StatusCode != http.StatusOK {
		t.Fatalf("one-click POST: %d", resp.StatusCode)
	}
	if s, _ := f.db.SubscriptionByID(f.ctx, res.Subscription.ID); s.Status != store.SubscriptionEnded {
		t.Fatalf("status after one-click = %s", s.Status)
	}
	if s, _ := f.db.SubscriptionByID(f.ctx, keep.Subscription.ID); s.Status != store.SubscriptionActive {
		t.Fatalf("one-click ended another subscription")
	}
	if resp := oneClick(); resp.StatusCode != http.StatusOK {
		t.Fatalf("second one-click POST: %d", resp.StatusCode)
	}
	if p := b.get("/unsubscribe/" + tok); !strings.Contains(p.Body, "You are not subscribed") {
		t.Errorf("GET after unsubscribing:\n%s", p.Body)
	}

	// Unsubscribe-all for one frequency leaves the others.
	f.subscribe("ana@example.org", store.Target{TopicID: f.immig.ID}, "daily")
	week := f.subscribe("ana@example.org", store.Target{TopicID: f.budget.ID}, "weekly")
	all := f.keys.Sign(alerts.Token{Purpose: alerts.PurposeUnsubscribeAll, Subject: res.Subscriber.ID, Aux: 2})
	if p := b.get("/unsubscribe/" + all); !strings.Contains(p.Body, "all your emails sent once a day") {
		t.Errorf("GET unsubscribe-all:\n%s", p.Body)
	}
	p = newSubBrowser(t, srv).post("/unsubscribe/"+all, url.Values{"List-Unsubscribe": {"One-Click"}})
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Treasury") || !strings.Contains(p.Body, "Immigration") {
		t.Fatalf("unsubscribe-all: %d\n%s", p.Status, p.Body)
	}
	subs, _ := f.db.Subscriptions(f.ctx, res.Subscriber.ID)
	if len(subs) != 1 || subs[0].ID != week.Subscription.ID {
		t.Fatalf("left after unsubscribing from daily emails: %+v", subs)
	}
	bad := f.keys.Sign(alerts.Token{Purpose: alerts.PurposeUnsubscribeAll, Subject: res.Subscriber.ID, Aux: 9})
	if p := b.post("/unsubscribe/"+bad, nil); p.Status != http.StatusBadRequest {
		t.Errorf("unknown frequency code: %d", p.Status)
	}
	if p := b.post("/unsubscribe/forged", nil); p.Status != http.StatusBadRequest {
		t.Errorf("forged token: %d", p.Status)
	}
}

func TestPagesCarryTheSiteName(t *testing.T) {
	f := newSubFixture(t, func(_ *alerts.Config, w *web.Config) { w.SiteName = "Valmora News" })
	p := newSubBrowser(t, f.server()).get("/manage")
	if !strings.Contains(p.Body, "<title>Manage your subscriptions – Valmora News</title>") || !strings.Contains(p.Body, `class="brand" href="/">Valmora News</a>`) {
		t.Errorf("site name missing:\n%s", p.Body)
	}
}
