package web_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"herald/alerts"
	"herald/alerts/delivery"
	"herald/alerts/smtptest"
	"herald/store"
	"herald/web"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// browser starts a headless Chromium for the test, or skips the test when
// there is none, unless HERALD_REQUIRE_BROWSER=1 (as in CI), when a
// missing browser fails it.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("HERALD_REQUIRE_BROWSER") == "1" {
			t.Fatalf("browser tests need %s (apt-get install chromium): %v", chromiumPath, err)
		}
		t.Skipf("skipping browser test: %s not found (apt-get install chromium, or set HERALD_REQUIRE_BROWSER=1 to make this a failure)", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return bctx
}

// artifacts is where screenshots go: $HERALD_ARTIFACTS, or the test's
// temporary directory.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("HERALD_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// submit clicks a button that sends a form and waits for the page that
// answers, failing unless it is a success.
func submit(t *testing.T, ctx context.Context, css string) {
	t.Helper()
	res, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("submitting with %s: %v", css, err)
	}
	if res.Status >= 400 {
		t.Fatalf("submitting with %s: %d %s", css, res.Status, res.URL)
	}
}

func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("text of %s: %v", css, err)
	}
	return strings.Join(strings.Fields(s), " ")
}

func saveScreenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 10_000 {
		t.Fatalf("%s: not a PNG of a rendered page (%d bytes)", name, len(png))
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// An admin signs in, previews a topic rule, creates the topic and finds it
// on the public site, with the keyboard-visible parts checked on the way.
func TestBrowserAdminCreatesTopic(t *testing.T) {
	ctx := browser(t)
	s := newSite(t)

	do(t, ctx, chromedp.Navigate(s.url("/admin/")))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.Contains(loc, "/admin/login") {
		t.Fatalf("signed out, /admin/ went to %q (%v)", loc, err)
	}
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("token"), "not-the-token"),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("token-error")),
	)
	if got := text(t, ctx, "#token-error"); !strings.Contains(got, "That token is not valid") {
		t.Errorf("wrong token message = %q", got)
	}
	// The refused form comes back with the field empty.
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("token"), adminToken),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(".cards")),
	)
	if got := text(t, ctx, "h1"); got != "Dashboard" {
		t.Fatalf("after sign-in the page is %q", got)
	}

	do(t, ctx,
		chromedp.Click(chromedp.CSS(`nav a[href="/admin/topics"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/admin/topics/new"]`)),
		chromedp.Click(chromedp.CSS(`a[href="/admin/topics/new"]`)),
		chromedp.WaitVisible(chromedp.ID("slug")),
		chromedp.SendKeys(chromedp.ID("slug"), "passports"),
		chromedp.SendKeys(chromedp.ID("title"), "Passports and travel"),
		chromedp.SendKeys(chromedp.ID("keywords"), "passports"),
		chromedp.Click(chromedp.ID("dept-home-office")),
		chromedp.Click(chromedp.CSS(`button[formaction="/admin/topics/preview"]`)),
		chromedp.WaitVisible(chromedp.ID("preview-heading")),
	)
	if got := text(t, ctx, "#preview p"); !strings.Contains(got, "would have matched 23 releases") {
		t.Errorf("preview says %q", got)
	}
	if got := text(t, ctx, "ol.examples li:first-child a"); got != "Home Office notice 23 on passports" {
		t.Errorf("first example = %q", got)
	}
	// The preview keeps what was typed.
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.ID("title"))); v != "Passports and travel" {
		t.Errorf("title after preview = %q", v)
	}

	do(t, ctx,
		chromedp.Click(chromedp.CSS(`.buttons button:not([formaction])`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if got := text(t, ctx, ".notice"); got != "Topic “Passports and travel” created." {
		t.Errorf("confirmation = %q", got)
	}

	do(t, ctx,
		chromedp.Click(chromedp.CSS(`a[href="/topics/passports"]`)),
		chromedp.WaitVisible(chromedp.CSS("ol.releases")),
	)
	if got := text(t, ctx, "h1"); got != "Passports and travel" {
		t.Errorf("public topic page h1 = %q", got)
	}
	if got := text(t, ctx, "ol.releases li:first-child h3"); got != "Home Office notice 23 on passports" {
		t.Errorf("newest release on the topic page = %q", got)
	}
	do(t, ctx, chromedp.Navigate(s.url("/")))
	if got := text(t, ctx, "#topics-heading + ul"); !strings.Contains(got, "Passports and travel") {
		t.Errorf("home page topics = %q", got)
	}
}

// Screenshots of a release page and of the dashboard, kept as artifacts, and
// the first Tab stop (the skip link) shown on screen when focused.
func TestBrowserScreenshots(t *testing.T) {
	ctx := browser(t)
	s := newSite(t)
	dir := artifacts(t)
	id := s.releaseID("UK and Romania pledge to tackle human trafficking")

	do(t, ctx, chromedp.Navigate(s.url("/releases/"+strconv.FormatInt(id, 10))), chromedp.WaitVisible(chromedp.CSS("article.release")))
	if got := text(t, ctx, "h1"); got != "UK and Romania pledge to tackle human trafficking" {
		t.Fatalf("release h1 = %q", got)
	}
	saveScreenshot(t, ctx, dir, "release.png")

	do(t, ctx, chromedp.KeyEvent("\t"))
	focus, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`(() => {
		const a = document.activeElement, r = a.getBoundingClientRect(), st = getComputedStyle(a);
		return {text: a.textContent, left: r.left, top: r.top, bg: st.backgroundColor};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if focus["text"] != "Skip to main content" || focus["left"].(float64) < 0 || focus["bg"] != "rgb(255, 221, 0)" {
		t.Errorf("first Tab stop = %v, want the skip link, on screen, highlighted", focus)
	}

	do(t, ctx, chromedp.Navigate(s.url("/releases/"+strconv.FormatInt(id, 10)+"?print=1")), chromedp.WaitVisible(chromedp.CSS("article.release")))
	hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`getComputedStyle(document.querySelector("header.site")).display === "none"`))
	if err != nil || !hidden {
		t.Errorf("printable version still shows the site header (%v)", err)
	}
	saveScreenshot(t, ctx, dir, "release-print.png")

	do(t, ctx, chromedp.Navigate(s.url("/admin/login")),
		chromedp.SendKeys(chromedp.ID("token"), adminToken),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(".charts svg rect")),
	)
	saveScreenshot(t, ctx, dir, "dashboard.png")

	// Narrow screens get one column and no sideways scrolling.
	do(t, ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(s.url("/departments/home-office")), chromedp.WaitVisible(chromedp.CSS(".subscribe")))
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	if err != nil || overflow {
		t.Errorf("the department page scrolls sideways on a phone (%v)", err)
	}
	saveScreenshot(t, ctx, dir, "department-phone.png")
}

// mailText returns the decoded text/plain part of a message as received.
func mailText(t *testing.T, raw []byte) string {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var find func(h textproto.MIMEHeader, body io.Reader) string
	find = func(h textproto.MIMEHeader, body io.Reader) string {
		mt, params, _ := mime.ParseMediaType(h.Get("Content-Type"))
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err != nil {
					return ""
				}
				if s := find(p.Header, p); s != "" {
					return s
				}
			}
		}
		if mt != "text/plain" && mt != "" {
			return ""
		}
		switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
		case "quoted-printable":
			body = quotedprintable.NewReader(body)
		case "base64":
			body = base64.NewDecoder(base64.StdEncoding, body)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return find(textproto.MIMEHeader(msg.Header), msg.Body)
}

// A visitor subscribes on a topic page, confirms from the email Herald
// sends (read from a real SMTP server), changes the frequency on the manage
// page the welcome email links to, and leaves with the email's unsubscribe
// link: the subscription pages, served by the web server with the alerts
// side doing the work.
func TestBrowserSubscribeConfirmManageUnsubscribe(t *testing.T) {
	ctx := browser(t)
	smtp := smtptest.Start(t, smtptest.Options{})
	var svc *alerts.Service
	var deliverer *delivery.Deliverer
	s := newSite(t, withLiveBaseURL(), withMounts(func(t *testing.T, db *store.DB, d *web.Deps, base string) {
		keys, err := alerts.NewKeys("browser-test-token-key-0123456789abcdef")
		if err != nil {
			t.Fatal(err)
		}
		london, _ := time.LoadLocation("Europe/London")
		if svc, err = alerts.NewService(db, alerts.Config{BaseURL: base, Location: london}, keys, nil, nil); err != nil {
			t.Fatal(err)
		}
		deliverer, err = delivery.New(db, delivery.Config{From: "Herald <alerts@news.example.org>", Transport: "smtp",
			SMTP: delivery.SMTPConfig{Host: smtp.Host(), Port: smtp.Port(), TLS: "none"}, Concurrency: 1, Now: db.Now}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		d.Alerts = svc
	}))
	// The subscription pages get the site's security policy too.
	for _, p := range []string{"/subscribe?topic=human-trafficking", "/manage"} {
		r := s.get(p)
		wantStatus(t, r, 200)
		if got := r.Header.Get("Content-Security-Policy"); !strings.HasPrefix(got, "default-src 'self'") {
			t.Errorf("%s: Content-Security-Policy = %q", p, got)
		}
	}
	const reader = "reader@example.org"
	// deliver sends what the outbox holds and returns the text of the
	// newest message to the reader.
	deliver := func(want int) string {
		t.Helper()
		svc.Wait()
		if _, err := deliverer.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		msgs := smtp.Messages()
		if len(msgs) != want {
			t.Fatalf("%d messages delivered, want %d", len(msgs), want)
		}
		last := msgs[len(msgs)-1]
		if len(last.To) != 1 || last.To[0] != reader {
			t.Fatalf("message to %v", last.To)
		}
		return mailText(t, last.Data)
	}
	link := func(text, path string) string {
		t.Helper()
		m := regexp.MustCompile(regexp.QuoteMeta(s.srv.URL+path) + `[^\s<>"]+`).FindString(text)
		if m == "" {
			t.Fatalf("no %s link in:\n%s", path, text)
		}
		return m
	}

	do(t, ctx,
		chromedp.Navigate(s.url("/topics/human-trafficking")),
		chromedp.SendKeys(chromedp.ID("subscribe-email"), reader),
		chromedp.Click(chromedp.ID("frequency-daily")),
	)
	submit(t, ctx, ".subscribe button[type=submit]")
	if got := text(t, ctx, "main h1"); got != "Check your email" {
		t.Fatalf("after subscribing the page says %q", got)
	}

	confirm := link(deliver(1), "/subscribe/confirm?token=")
	do(t, ctx, chromedp.Navigate(confirm), chromedp.WaitVisible(chromedp.CSS("main form button")))
	submit(t, ctx, "main form button")
	if got := text(t, ctx, "main h1"); got != "You are subscribed" {
		t.Fatalf("after confirming the page says %q", got)
	}

	welcome := deliver(2)
	manage, unsubscribe := link(welcome, "/manage/"), link(welcome, "/unsubscribe/")
	do(t, ctx,
		chromedp.Navigate(manage),
		chromedp.WaitVisible(chromedp.CSS(`select[name="frequency"]`)),
		chromedp.SetValue(chromedp.CSS(`select[name="frequency"]`), "weekly"),
	)
	submit(t, ctx, `form:has(select[name="frequency"]) button`)
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS(".notice")))
	saveScreenshot(t, ctx, artifacts(t), "manage.png")
	if v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`select[name="frequency"]`))); err != nil || v != "weekly" {
		t.Errorf("frequency after the change = %q (%v)", v, err)
	}
	sub, err := s.db.SubscriberByAddress(context.Background(), reader)
	if err != nil {
		t.Fatal(err)
	}
	subs, err := s.db.Subscriptions(context.Background(), sub.ID)
	if err != nil || len(subs) != 1 || subs[0].Frequency != "weekly" || subs[0].Status != "active" {
		t.Fatalf("subscriptions after the change = %+v (%v)", subs, err)
	}

	do(t, ctx, chromedp.Navigate(unsubscribe), chromedp.WaitVisible(chromedp.CSS("main form button")))
	submit(t, ctx, "main form button")
	if got := text(t, ctx, "main h1"); got != "You have unsubscribed" {
		t.Errorf("after unsubscribing the page says %q", got)
	}
	record, err := s.db.SubscriberRecord(context.Background(), reader)
	if err != nil || len(record.Subscriptions) != 1 || record.Subscriptions[0].Status != store.SubscriptionEnded {
		t.Errorf("subscriptions after unsubscribing = %+v (%v)", record.Subscriptions, err)
	}
	logs := s.logs.String()
	if strings.Contains(logs, reader) {
		t.Error("the subscriber's address reached the web log")
	}
	for _, l := range []string{confirm, manage, unsubscribe} {
		if tok := l[strings.LastIndexAny(l, "/=")+1:]; strings.Contains(logs, tok) {
			t.Errorf("a token from %s reached the web log", l)
		}
	}
	if !strings.Contains(logs, `"path":"/manage/{token}"`) {
		t.Error("the manage page's access log line is missing")
	}
}

// A visitor on the search page follows "Get emails about this search",
// chooses daily emails, and confirms from the email: the search sign-up
// in a browser, with the alerts side doing the work.
func TestBrowserFollowASearch(t *testing.T) {
	ctx := browser(t)
	a := newSearchAlertSite(t)
	const reader = "reader@example.org"
	do(t, ctx,
		chromedp.Navigate(a.url("/search?q=victims+of+trafficking&department=home-office")),
		chromedp.WaitVisible(chromedp.CSS(".follow a")),
	)
	submit(t, ctx, ".follow a")
	if got := text(t, ctx, "main h1"); got != "Get emails about Search: victims of trafficking in Home Office" {
		t.Fatalf("the sign-up page says %q", got)
	}
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("email"), reader),
		chromedp.Click(chromedp.ID("frequency-daily")),
	)
	submit(t, ctx, "main form button[type=submit]")
	if got := text(t, ctx, "main h1"); got != "Check your email" {
		t.Fatalf("after signing up the page says %q", got)
	}
	mail := a.delivered()[reader]
	if len(mail) != 1 {
		t.Fatalf("%d messages to the reader, want the confirmation", len(mail))
	}
	do(t, ctx, chromedp.Navigate(a.link(mail[0], "/subscribe/confirm?token=")), chromedp.WaitVisible(chromedp.CSS("main form button")))
	submit(t, ctx, "main form button")
	if got := text(t, ctx, "main h1"); got != "You are subscribed" {
		t.Fatalf("after confirming the page says %q", got)
	}
	list, err := a.db.SearchesFollowed(context.Background(), 10)
	if err != nil || len(list) != 1 || list[0].Active[store.FrequencyDaily] != 1 {
		t.Errorf("followed searches: %+v, %v", list, err)
	}
}
