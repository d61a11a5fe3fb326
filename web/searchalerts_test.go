package web_test

import (
	"bytes"
	"context"
	"html"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"herald/alerts"
	"herald/alerts/delivery"
	"herald/alerts/smtptest"
	"herald/feeds/rules"
	"herald/store"
	"herald/store/storetest"
	plaintext "herald/templates/text"
	"herald/web"
)

// searchAlertSite is a site with the real subscription side and delivery
// through a real SMTP server on loopback.
type searchAlertSite struct {
	*site
	clock     *storetest.Clock
	svc       *alerts.Service
	deliverer *delivery.Deliverer
	smtp      *smtptest.Server
	// seen counts the messages the SMTP server had already received.
	seen int
}

func newSearchAlertSite(t *testing.T) *searchAlertSite {
	t.Helper()
	a := &searchAlertSite{smtp: smtptest.Start(t, smtptest.Options{})}
	a.site = newSite(t, withLiveBaseURL(), func(c *siteConfig) { a.clock = c.clock },
		withMounts(func(t *testing.T, db *store.DB, d *web.Deps, base string) {
			keys, err := alerts.NewKeys("search-alerts-token-key-0123456789abcdef")
			if err != nil {
				t.Fatal(err)
			}
			london, _ := time.LoadLocation("Europe/London")
			if a.svc, err = alerts.NewService(db, alerts.Config{BaseURL: base, Location: london}, keys, nil, nil); err != nil {
				t.Fatal(err)
			}
			a.deliverer, err = delivery.New(db, delivery.Config{From: "Herald <alerts@news.example.org>", Transport: "smtp",
				SMTP: delivery.SMTPConfig{Host: a.smtp.Host(), Port: a.smtp.Port(), TLS: "none"}, Concurrency: 1, Now: db.Now}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			d.Alerts = a.svc
		}))
	return a
}

// delivered sends what the outbox holds and returns the text of each new
// message, by recipient.
func (a *searchAlertSite) delivered() map[string][]string {
	a.t.Helper()
	a.svc.Wait()
	if _, err := a.deliverer.Drain(context.Background()); err != nil {
		a.t.Fatal(err)
	}
	msgs := a.smtp.Messages()
	out := map[string][]string{}
	for _, m := range msgs[a.seen:] {
		for _, to := range m.To {
			out[to] = append(out[to], mailText(a.t, m.Data))
		}
	}
	a.seen = len(msgs)
	return out
}

// lastHeader is a header of the newest message the SMTP server received.
func (a *searchAlertSite) lastHeader(name string) string {
	a.t.Helper()
	msgs := a.smtp.Messages()
	m, err := mail.ReadMessage(bytes.NewReader(msgs[len(msgs)-1].Data))
	if err != nil {
		a.t.Fatal(err)
	}
	return m.Header.Get(name)
}

// link finds the link to path on the site in an email's text.
func (a *searchAlertSite) link(text, path string) string {
	a.t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(a.srv.URL+path) + `[^\s<>"]*`).FindString(text)
	if m == "" {
		a.t.Fatalf("no %s link in:\n%s", path, text)
	}
	return m
}

// pull stores entries as a new pull of the Home Office's source.
func (a *searchAlertSite) pull(entries ...store.Entry) {
	a.t.Helper()
	ctx := context.Background()
	src, err := a.db.SourceByName(ctx, "home-office-news")
	if err != nil {
		a.t.Fatal(err)
	}
	for i, e := range entries {
		entries[i].PlainSummary = plaintext.Plain(e.Summary)
	}
	if _, err := a.db.ApplyPull(ctx, src.ID, entries, store.PullOptions{Topics: &rules.Topics{}, Alert: rules.AlertNew(0), Realert: rules.Realert}); err != nil {
		a.t.Fatal(err)
	}
}

// signUp follows "Get emails about this search" from the search page at
// search, subscribes addr at freq and confirms from the email.
func (a *searchAlertSite) signUp(b *subBrowser, search, addr, freq string) {
	a.t.Helper()
	t := a.t
	p := b.get("/search?" + search)
	follow := regexp.MustCompile(`<a href="(/subscribe\?search=[^"]+)">Get emails about this search</a>`).FindStringSubmatch(p.Body)
	if p.Status != http.StatusOK || follow == nil {
		t.Fatalf("GET /search?%s: %d, no sign-up link\n%s", search, p.Status, p.Body)
	}
	form := b.get(strings.ReplaceAll(follow[1], "&amp;", "&"))
	if form.Status != http.StatusOK || !strings.Contains(form.Body, `name="search"`) {
		t.Fatalf("the sign-up form: %d\n%s", form.Status, form.Body)
	}
	p = b.post("/subscribe", url.Values{"email": {addr}, "frequency": {freq}, "search": {html.UnescapeString(regexpValue(t, form.Body, "search"))},
		"csrf_token": {subCSRF(t, form)}})
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Check your email") {
		t.Fatalf("POST /subscribe: %d\n%s", p.Status, p.Body)
	}
	mail := a.delivered()[addr]
	if len(mail) != 1 {
		t.Fatalf("%d messages to %s, want the confirmation", len(mail), addr)
	}
	confirm := b.get(strings.TrimPrefix(a.link(mail[0], "/subscribe/confirm?token="), a.srv.URL))
	if confirm.Status != http.StatusOK || strings.Count(confirm.Body, "<button") != 1 || !strings.Contains(confirm.Body, "Confirm my subscription") ||
		!strings.Contains(confirm.Body, "Get emails about Search: victims of trafficking in Home Office (search)") {
		t.Fatalf("the confirmation page: %d\n%s", confirm.Status, confirm.Body)
	}
	p = b.post("/subscribe/confirm", url.Values{"token": {regexpValue(t, confirm.Body, "token")}, "csrf_token": {subCSRF(t, confirm)}})
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "You are subscribed") {
		t.Fatalf("POST confirm: %d\n%s", p.Status, p.Body)
	}
	if welcome := a.delivered()[addr]; len(welcome) != 1 {
		t.Fatalf("%d messages to %s after confirming, want the welcome", len(welcome), addr)
	}
}

// A visitor signs up for the search they are looking at, confirms, and
// gets an immediate email for a matching new release and a digest entry
// for it, and nothing for one that does not match; the email's one-click
// unsubscribe ends it.
func TestFollowASearchEndToEnd(t *testing.T) {
	a := newSearchAlertSite(t)
	const now, later = "ana@example.org", "bo@example.org"
	search := "q=Victims+of+trafficking&department=home-office"
	a.signUp(newSubBrowser(t, a.srv), search, now, "immediately")
	a.signUp(newSubBrowser(t, a.srv), search, later, "daily")

	a.clock.Set(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	a.pull(
		store.Entry{GUID: "s-1", Link: "https://home-office.example.org/news/s-1", Title: "Longer support for victims of trafficking",
			Summary: "<p>Help with housing and work.</p>", Published: a.clock.Now().Add(-10 * time.Minute)},
		store.Entry{GUID: "s-2", Link: "https://home-office.example.org/news/s-2", Title: "Passport fees to change",
			Summary: "<p>Nothing about victims.</p>", Published: a.clock.Now().Add(-5 * time.Minute)},
	)
	if _, err := a.svc.ProcessPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	mail := a.delivered()
	if len(mail[now]) != 1 || len(mail[later]) != 0 || len(mail) != 1 {
		t.Fatalf("immediate emails: %v", mail)
	}
	alert := mail[now][0]
	if !strings.Contains(alert, "Longer support for victims of trafficking") || strings.Contains(alert, "Passport fees") ||
		!strings.Contains(strings.Join(strings.Fields(alert), " "), "Search: victims of trafficking in Home Office (search)") {
		t.Errorf("the immediate email:\n%s", alert)
	}
	oneClick := a.lastHeader("List-Unsubscribe")

	// The daily digest holds the matching release only.
	if _, err := a.svc.RunDue(context.Background(), store.FrequencyDaily, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	a.clock.Set(time.Date(2026, 3, 3, 8, 30, 0, 0, time.UTC))
	if _, err := a.svc.RunDue(context.Background(), store.FrequencyDaily, a.clock.Now()); err != nil {
		t.Fatal(err)
	}
	mail = a.delivered()
	if len(mail[later]) != 1 || len(mail) != 1 {
		t.Fatalf("digests: %v", mail)
	}
	if d := mail[later][0]; !strings.Contains(d, "== Search: victims of trafficking in Home Office (search) ==") ||
		!strings.Contains(d, "Longer support for victims of trafficking") || strings.Contains(d, "Passport fees") {
		t.Errorf("the digest:\n%s", d)
	}

	// The manage page names the search and links to its results.
	manage := newSubBrowser(t, a.srv).get(strings.TrimPrefix(a.link(alert, "/manage/"), a.srv.URL))
	if !strings.Contains(manage.Body, `/search?department=home-office&amp;q=victims&#43;of&#43;trafficking">Search: victims of trafficking in Home Office</a>`) {
		t.Errorf("the manage page does not list the search:\n%s", manage.Body)
	}

	// One click, as a mail client does it (RFC 8058), and nothing more.
	u := regexp.MustCompile(`<(http[^>]+/unsubscribe/[^>]+)>`).FindStringSubmatch(oneClick)
	if u == nil {
		t.Fatalf("List-Unsubscribe = %q", oneClick)
	}
	resp, err := http.Post(u[1], "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("one-click unsubscribe: %d", resp.StatusCode)
	}
	a.clock.Set(time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC))
	a.pull(store.Entry{GUID: "s-3", Link: "https://home-office.example.org/news/s-3", Title: "Victims of trafficking: new guidance",
		Published: a.clock.Now().Add(-time.Minute)})
	if _, err := a.svc.ProcessPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if mail := a.delivered(); len(mail) != 0 {
		t.Errorf("after unsubscribing: %v", mail)
	}
}

// Bad searches get a one-line reason and store nothing.
func TestFollowASearchRejectsBadInput(t *testing.T) {
	a := newSearchAlertSite(t)
	b := newSubBrowser(t, a.srv)
	csrf := subCSRF(t, b.get("/subscribe?search=q%3Dflood"))
	for _, tc := range []struct {
		search string
		status int
		says   string
	}{
		{"q=", http.StatusBadRequest, "Type some words to search for"},
		{"q=%3F%3F%3F&department=home-office", http.StatusBadRequest, "Type some words to search for"},
		{"q=flood&department=nowhere", http.StatusNotFound, "There is no department called “nowhere”."},
		{"q=flood&type=leaflet", http.StatusNotFound, "There is no document type called “leaflet”."},
		{"q=" + strings.Repeat("flood+", 40), http.StatusBadRequest, "This search is too long to follow by email"},
	} {
		p := b.post("/subscribe", url.Values{"email": {"ana@example.org"}, "frequency": {"daily"}, "search": {tc.search}, "csrf_token": {csrf}})
		if p.Status != tc.status || !strings.Contains(p.Body, tc.says) {
			t.Errorf("%q: %d, want %d saying %q\n%s", tc.search, p.Status, tc.status, tc.says, p.Body)
		}
		g := b.get("/subscribe?" + url.Values{"search": {tc.search}}.Encode())
		if g.Status != tc.status || !strings.Contains(g.Body, tc.says) {
			t.Errorf("GET %q: %d, want %d saying %q", tc.search, g.Status, tc.status, tc.says)
		}
	}
	a.svc.Wait()
	if list, err := a.db.SearchesFollowed(context.Background(), 10); err != nil || len(list) != 0 {
		t.Errorf("bad requests stored searches: %+v, %v", list, err)
	}
	if _, err := a.db.SubscriberByAddress(context.Background(), "ana@example.org"); err == nil {
		t.Error("bad requests stored the address")
	}
}

// The search page filters by document type, offers the types sources
// declared under their labels, and its sign-up carries the filters.
func TestSearchPageDocumentTypes(t *testing.T) {
	a := newSearchAlertSite(t)
	a.pull(
		store.Entry{GUID: "g-1", Title: "Passport office press notice", Categories: []string{"Press release"}, DocumentType: "press_release",
			Published: a.clock.Now().Add(-time.Minute)},
		store.Entry{GUID: "g-2", Title: "Passport statistics", Categories: []string{"Official statistics"}, DocumentType: "official_statistics",
			Published: a.clock.Now().Add(-2 * time.Minute)},
		store.Entry{GUID: "g-3", Title: "Passport speech", Categories: []string{"press-release"}, Published: a.clock.Now().Add(-3 * time.Minute)},
	)
	r := a.get("/search?q=passport&type=press_release")
	wantStatus(t, r, 200)
	for _, w := range []string{"2 results", `<option value="press_release" selected>Press release</option>`,
		`<option value="official_statistics">Official statistics</option>`,
		`href="/subscribe?search=q%3Dpassport%26type%3Dpress_release"`} {
		if !strings.Contains(r.body, w) {
			t.Errorf("search page lacks %q", w)
		}
	}
	if n := len(releaseItem.FindAllString(r.body, -1)); n != 2 {
		t.Errorf("%d results listed, want the press notice and the speech", n)
	}
	feed := a.get("/feeds/search.atom?q=passport&type=Official+statistics")
	wantStatus(t, feed, 200)
	if !strings.Contains(feed.body, "Passport statistics") || strings.Contains(feed.body, "Passport speech") ||
		!strings.Contains(feed.body, "(Official statistics)") {
		t.Errorf("search feed with a type:\n%s", excerptBody(feed.body))
	}
	form := newSubBrowser(t, a.srv).get("/subscribe?search=" + url.QueryEscape("q=passport&type=press_release&department=home-office"))
	if form.Status != http.StatusOK || !strings.Contains(form.Body, "Get emails about Search: passport in Home Office, Press release") {
		t.Errorf("sign-up form for a search with filters: %d\n%s", form.Status, form.Body)
	}
	// Without words there is nothing to follow.
	if r := a.get("/search?department=home-office"); strings.Contains(r.body, "Get emails about this search") {
		t.Error("a search without words offers emails")
	}
	types, err := a.db.DocumentTypes(context.Background())
	if err != nil || !slices.Equal(types, []string{"official_statistics", "press_release"}) {
		t.Errorf("document types: %v, %v", types, err)
	}
}
