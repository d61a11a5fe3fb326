package web_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"herald/alerts"
	"herald/alerts/alertstest"
	"herald/alerts/delivery"
	"herald/alerts/smtptest"
	"herald/store"
	"herald/store/storetest"
)

var emailSubject = regexp.MustCompile(`<dd id="email-subject">([^<]*)</dd>`)

// The console shows every kind of email as it would go: subject, headers,
// the text part, and the HTML part in a sandboxed frame under a policy of
// its own.
func TestConsolePreviewsEveryEmail(t *testing.T) {
	s := newSite(t)
	wantStatus(t, s.get("/admin/emails"), http.StatusSeeOther)
	s.login()
	index := s.get("/admin/emails")
	wantStatus(t, index, http.StatusOK)
	if !strings.Contains(s.get("/admin/").body, `href="/admin/emails"`) {
		t.Error("the console's navigation does not link the emails")
	}
	subjects := map[string]string{
		"confirm":        "Confirm your subscription to Human trafficking and modern slavery",
		"welcome":        "You are subscribed to Human trafficking and modern slavery",
		"immediate":      "Home Office: UK and Romania pledge to tackle human trafficking",
		"daily-digest":   "Herald daily digest for ",
		"weekly-digest":  "Herald weekly digest for the week to ",
		"manage":         "Manage your Herald subscriptions",
		"address-change": "Confirm your new address for Herald",
	}
	for _, kind := range alerts.EmailKinds() {
		t.Run(kind, func(t *testing.T) {
			if !strings.Contains(index.body, `href="/admin/emails/`+kind+`"`) {
				t.Errorf("the index does not link %s", kind)
			}
			r := s.get("/admin/emails/" + kind)
			wantStatus(t, r, http.StatusOK)
			m := emailSubject.FindStringSubmatch(r.body)
			if m == nil || !strings.HasPrefix(html.UnescapeString(m[1]), subjects[kind]) {
				t.Errorf("subject %q, want %q…", m, subjects[kind])
			}
			for _, want := range []string{
				`<iframe class="email-preview" id="email-html" sandbox src="/admin/emails/` + kind + `/html"`,
				`<pre class="email-text" id="email-text">`,
				`<dt>List-Id</dt>`, `<dt>From</dt><dd>&#34;Herald&#34; &lt;alerts@news.example.org&gt;</dd>`,
				`<dt>To</dt><dd>&lt;name@example.org&gt;</dd>`,
				`action="/admin/emails/` + kind + `/test"`,
			} {
				if !strings.Contains(r.body, want) {
					t.Errorf("preview page lacks %s", want)
				}
			}
			frame := s.get("/admin/emails/" + kind + "/html")
			wantStatus(t, frame, http.StatusOK)
			csp := frame.Header.Get("Content-Security-Policy")
			if !strings.HasPrefix(csp, "default-src 'none';") || !strings.Contains(csp, "sandbox") || strings.Contains(csp, "script") ||
				!strings.Contains(csp, "frame-ancestors 'self'") || frame.Header.Get("X-Frame-Options") != "SAMEORIGIN" {
				t.Errorf("frame policy %q, X-Frame-Options %q", csp, frame.Header.Get("X-Frame-Options"))
			}
			if !strings.HasPrefix(frame.body, "<!DOCTYPE html>") || !strings.Contains(frame.body, `<html lang="en">`) {
				t.Errorf("frame body:\n%s", excerptBody(frame.body))
			}
		})
	}
	// The console's own pages keep the site's policy.
	if csp := s.get("/admin/emails/welcome").Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("console page policy %q", csp)
	}
}

// A preview can use a real release and a real topic or department.
func TestConsolePreviewWithRealData(t *testing.T) {
	s := newSite(t)
	s.login()
	id := s.releaseID("Spring statement published")
	r := s.get("/admin/emails/immediate?release=" + strconv.FormatInt(id, 10) + "&target=department:treasury")
	wantStatus(t, r, http.StatusOK)
	if m := emailSubject.FindStringSubmatch(r.body); m == nil || m[1] != "Treasury: Spring statement published" {
		t.Errorf("subject %q", m)
	}
	if !strings.Contains(r.body, `<option value="department:treasury" selected>Treasury (department)</option>`) ||
		!strings.Contains(r.body, `<option value="`+strconv.FormatInt(id, 10)+`" selected>`) {
		t.Error("the choices are not kept")
	}
	if !strings.Contains(r.body, `src="/admin/emails/immediate/html?release=`+strconv.FormatInt(id, 10)+`&amp;target=department%3Atreasury"`) {
		t.Errorf("the frame does not show the same choices:\n%s", excerptBody(r.body))
	}
	// A digest of a department lists its latest releases.
	d := s.get("/admin/emails/weekly-digest?target=department:treasury")
	wantStatus(t, d, http.StatusOK)
	for _, want := range []string{"Spring statement published", "Customs checks on trafficking routes", "== Treasury (department) =="} {
		if !strings.Contains(html.UnescapeString(d.body), want) {
			t.Errorf("digest preview lacks %q", want)
		}
	}
	w := s.get("/admin/emails/welcome?target=topic:human-trafficking&frequency=weekly")
	if !strings.Contains(html.UnescapeString(w.body), "You will get emails about Human trafficking (topic) once a week.") {
		t.Errorf("welcome preview:\n%s", excerptBody(w.body))
	}

	for path, want := range map[string]struct {
		status int
		msg    string
	}{
		"/admin/emails/immediate?release=999999":          {404, "Not found."},
		"/admin/emails/immediate?release=x":               {400, "Release must be a release&#39;s number."},
		"/admin/emails/confirm?target=topic:no-such-one":  {400, "There is no topic called “no-such-one”."},
		"/admin/emails/welcome?frequency=hourly":          {400, "Choose immediately, daily or weekly."},
		"/admin/emails/nothing-of-the-kind":               {404, "There is no email called “nothing-of-the-kind”."},
		"/admin/emails/nothing-of-the-kind/html?target=x": {404, "There is no email called"},
	} {
		r := s.get(path)
		if r.StatusCode != want.status || !strings.Contains(r.body, want.msg) {
			t.Errorf("%s: %d, want %d with %q\n%s", path, r.StatusCode, want.status, want.msg, excerptBody(r.body))
		}
	}
}

// testSite is a site whose test emails are delivered to a real SMTP
// server on loopback.
func testSite(t *testing.T) (*site, *delivery.Deliverer, *smtptest.Server) {
	t.Helper()
	srv := smtptest.Start(t, smtptest.Options{})
	s := newSite(t)
	d, err := delivery.New(s.db, delivery.Config{From: "Herald <alerts@news.example.org>", Transport: "smtp",
		SMTP: delivery.SMTPConfig{Host: srv.Host(), Port: srv.Port(), TLS: "none"}, Concurrency: 1, Now: s.db.Now}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, d, srv
}

// A test goes through the outbox and the relay like any email, marked as
// a test, and the log says which kind went, never to whom.
func TestConsoleSendsATestEmail(t *testing.T) {
	s, d, srv := testSite(t)
	s.login()
	const to = "tester@example.org"
	tok := s.csrf("/admin/emails/welcome?target=topic:human-trafficking")

	// Without the session's CSRF token nothing is sent.
	r := s.postForm("/admin/emails/welcome/test", url.Values{"to": {to}})
	wantStatus(t, r, http.StatusForbidden)
	if n := len(alertstest.Outbox(t, s.db, alertstest.Kind(alerts.KindTest))); n != 0 {
		t.Fatalf("%d tests queued without a CSRF token", n)
	}

	r = s.postForm("/admin/emails/welcome/test", url.Values{"csrf_token": {tok}, "to": {"not-an-address"}, "target": {"topic:human-trafficking"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if !strings.Contains(r.body, "Your email address must contain an @, like name@example.org.") || !strings.Contains(r.body, `value="not-an-address"`) {
		t.Errorf("refused address:\n%s", excerptBody(r.body))
	}

	r = s.postForm("/admin/emails/welcome/test", url.Values{"csrf_token": {tok}, "to": {to}, "target": {"topic:human-trafficking"}})
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "/admin/emails/welcome?target=topic%3Ahuman-trafficking" {
		t.Errorf("redirect to %q", loc)
	}
	if page := s.get(r.Header.Get("Location")); !strings.Contains(page.body, "A test of the welcome email is queued") {
		t.Errorf("no notice:\n%s", excerptBody(page.body))
	}
	rows := alertstest.Outbox(t, s.db, alertstest.Kind(alerts.KindTest))
	if len(rows) != 1 || rows[0].To != to || rows[0].Subject != "[Test] You are subscribed to Human trafficking" || rows[0].SubscriberID != 0 {
		t.Fatalf("outbox: %+v", rows)
	}
	if sent, err := d.Drain(context.Background()); sent != 1 || err != nil {
		t.Fatalf("Drain = %d, %v", sent, err)
	}
	got := srv.Messages()
	if len(got) != 1 || len(got[0].To) != 1 || got[0].To[0] != to || !strings.Contains(string(got[0].Data), "Subject: [Test] You are subscribed") {
		t.Fatalf("delivered: %+v", got)
	}
	logs := s.logs.String()
	if !strings.Contains(logs, `"msg":"admin sent a test email","kind":"welcome"`) {
		t.Errorf("the test is not in the log:\n%s", logs)
	}
	if strings.Contains(logs, to) {
		t.Error("the test's address reached the log")
	}
}

// At most alerts.TestsPerHour tests go in an hour, whoever asks.
func TestTestEmailsAreLimited(t *testing.T) {
	var clock *storetest.Clock
	s := newSite(t, func(c *siteConfig) { clock = c.clock })
	var msgs []store.OutboxMessage
	for i := range alerts.TestsPerHour {
		msgs = append(msgs, store.OutboxMessage{Key: "test:manage:" + strconv.Itoa(i), Kind: alerts.KindTest, To: "a@example.org",
			Subject: "[Test]", Text: "x"})
	}
	if _, err := s.db.EnqueueEmails(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	r := s.api(http.MethodPost, "/api/v1/emails/manage/test", map[string]string{"to": "tester@example.org"})
	wantStatus(t, r, http.StatusTooManyRequests)
	if !strings.Contains(r.body, "Test emails are limited to 20 an hour") {
		t.Errorf("%s", r.body)
	}
	s.login()
	tok := s.csrf("/admin/emails/manage")
	r = s.postForm("/admin/emails/manage/test", url.Values{"csrf_token": {tok}, "to": {"tester@example.org"}})
	wantStatus(t, r, http.StatusTooManyRequests)
	if !strings.Contains(r.body, "Test emails are limited to 20 an hour") {
		t.Errorf("console:\n%s", excerptBody(r.body))
	}
	if n := len(alertstest.Outbox(t, s.db, alertstest.Kind(alerts.KindTest))); n != alerts.TestsPerHour {
		t.Errorf("%d tests in the outbox", n)
	}
	// An hour on, tests go again.
	clock.Add(time.Hour + time.Minute)
	wantStatus(t, s.api(http.MethodPost, "/api/v1/emails/manage/test", map[string]string{"to": "tester@example.org"}), http.StatusAccepted)
}

// The admin API previews and tests every email as the console does.
func TestAPIEmails(t *testing.T) {
	s := newSite(t)
	var kinds []string
	r := s.api(http.MethodGet, "/api/v1/emails", nil)
	wantStatus(t, r, http.StatusOK)
	r.json(t, &kinds)
	if strings.Join(kinds, ",") != strings.Join(alerts.EmailKinds(), ",") {
		t.Errorf("kinds %v", kinds)
	}
	wantStatus(t, s.api(http.MethodGet, "/api/v1/emails/welcome/preview", nil, "wrong-token"), http.StatusUnauthorized)

	var p struct {
		Kind, Subject, Text, HTML string
		Headers                   []struct{ Name, Value string }
	}
	r = s.api(http.MethodGet, "/api/v1/emails/daily-digest/preview?department=home-office", nil)
	wantStatus(t, r, http.StatusOK)
	r.json(t, &p)
	if p.Kind != "daily-digest" || !strings.HasPrefix(p.Subject, "Herald daily digest for ") || !strings.Contains(p.Text, "UK and Romania pledge") ||
		!strings.Contains(p.HTML, "<h2") || len(p.Headers) < 5 {
		t.Errorf("preview %+v", p)
	}
	for _, h := range p.Headers {
		if h.Name == "Subject" && h.Value != p.Subject {
			t.Errorf("Subject header %q, subject %q", h.Value, p.Subject)
		}
	}

	r = s.api(http.MethodGet, "/api/v1/emails/nope/preview", nil)
	wantStatus(t, r, http.StatusNotFound)
	r = s.api(http.MethodGet, "/api/v1/emails/confirm/preview?topic=nope", nil)
	wantStatus(t, r, http.StatusBadRequest)
	if f := r.fieldErrors(t); f["target"] != "There is no topic called “nope”." {
		t.Errorf("fields %v", f)
	}

	r = s.api(http.MethodPost, "/api/v1/emails/confirm/test", map[string]any{"to": "bad"})
	wantStatus(t, r, http.StatusBadRequest)
	if f := r.fieldErrors(t); !strings.HasPrefix(f["to"], "Your email address must contain an @") {
		t.Errorf("fields %v", f)
	}
	r = s.api(http.MethodPost, "/api/v1/emails/confirm/test", map[string]any{"to": "tester@example.org", "topic": "human-trafficking", "frequency": "weekly"})
	wantStatus(t, r, http.StatusAccepted)
	rows := alertstest.Outbox(t, s.db, alertstest.Kind(alerts.KindTest))
	if len(rows) != 1 || rows[0].Subject != "[Test] Confirm your subscription to Human trafficking" || !strings.Contains(rows[0].Text, "once a week") {
		t.Errorf("outbox %+v", rows)
	}
	if strings.Contains(s.logs.String(), "tester@example.org") {
		t.Error("the test's address reached the log")
	}
}
