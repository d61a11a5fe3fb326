package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/alerts/bounce"
	"herald/alerts/bounce/providers"
	"herald/alerts/bounce/providers/providerstest"
	"herald/web"
)

// recordingProcessor stands in for the bounce processor, which another
// part of Herald owns: it records every report it is handed and, as the
// real one does, applies a report once per source and event id.
type recordingProcessor struct {
	mu      sync.Mutex
	reports []bounce.Report
	seen    map[string]bool
	fail    error
}

func (p *recordingProcessor) Process(_ context.Context, r bounce.Report) (bounce.Outcome, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return bounce.Outcome{}, p.fail
	}
	p.reports = append(p.reports, r)
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	key := r.Source + "\x00" + r.EventID
	if p.seen[key] {
		return bounce.Outcome{Ignored: "already processed"}, nil
	}
	p.seen[key] = true
	return bounce.Outcome{Applied: true, OutboxID: 1, Suppressed: r.Kind != bounce.Transient}, nil
}

func (p *recordingProcessor) got() []bounce.Report {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]bounce.Report(nil), p.reports...)
}

const (
	sesTopic       = "arn:aws:sns:eu-west-2:111122223333:herald-bounces"
	postmarkUser   = "postmark-hooks"
	postmarkPass   = "a long postmark webhook password"
	mailgunKey     = "mailgun-signing-key-for-tests-0123"
	addressDomain  = "subscribers.example.net"
	providerSample = "../alerts/bounce/providers/testdata"
)

// hooks are the four providers, set up with keys the test generated.
type hooks struct {
	sns      *providerstest.SNS
	sendgrid *providerstest.SendGridKey
	proc     *recordingProcessor
}

func newHookSite(t *testing.T, opts ...siteOption) (*site, *hooks) {
	t.Helper()
	h := &hooks{sns: providerstest.NewSNS(t), sendgrid: providerstest.NewSendGridKey(t), proc: &recordingProcessor{}}
	ses, err := providers.NewSES(h.sns.Config(sesTopic))
	if err != nil {
		t.Fatal(err)
	}
	pm, err := providers.NewPostmark(providers.PostmarkConfig{Username: postmarkUser, Password: postmarkPass})
	if err != nil {
		t.Fatal(err)
	}
	sg, err := providers.NewSendGrid(providers.SendGridConfig{PublicKey: h.sendgrid.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	mg, err := providers.NewMailgun(providers.MailgunConfig{SigningKey: mailgunKey})
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]siteOption{withDeps(func(d *web.Deps) {
		d.Bounces = h.proc
		d.Webhooks = []web.WebhookProvider{ses, pm, sg, mg}
	})}, opts...)
	return newSite(t, opts...), h
}

func providerSampleFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(providerSample, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hook posts body to /webhooks/{provider} with header.
func (s *site) hook(provider string, body []byte, header http.Header) response {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url("/webhooks/"+provider), bytes.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return s.do(req)
}

func postmarkAuth(user, pass string) http.Header {
	req, _ := http.NewRequest(http.MethodPost, "/", nil)
	req.SetBasicAuth(user, pass)
	return req.Header
}

// wantReports checks the event ids the processor has been handed so far.
func wantReports(t *testing.T, p *recordingProcessor, ids ...string) {
	t.Helper()
	var got []string
	for _, r := range p.got() {
		got = append(got, r.Source+" "+r.EventID)
	}
	if strings.Join(got, "\n") != strings.Join(ids, "\n") {
		t.Fatalf("processor was handed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(ids, "\n"))
	}
}

func TestWebhookSES(t *testing.T) {
	s, h := newHookSite(t)

	// SNS asks first; Herald confirms, and nothing is processed.
	r := s.hook("ses", h.sns.Sign(h.sns.SubscriptionConfirmation(sesTopic, "sub-1", "tok-1")), nil)
	wantStatus(t, r, http.StatusOK)
	if got := h.sns.Confirmed(); len(got) != 1 || got[0] != "tok-1" {
		t.Fatalf("confirmed %v, want [tok-1]", got)
	}
	wantReports(t, h.proc)

	note := h.sns.Sign(h.sns.Notification(sesTopic, "sns-msg-1", string(providerSampleFile(t, "ses_bounce_permanent.json"))))
	wantStatus(t, s.hook("ses", note, nil), http.StatusOK)
	id := "ses 0100017a1b2c3d4e-5f6a7b8c-1d2e-4f3a-9b8c-7d6e5f4a3b2c-000000/0"
	wantReports(t, h.proc, id)
	rep := h.proc.got()[0]
	if rep.MessageID != "immediate.4711.1740906845@news.example.org" || rep.Recipient != "gone@"+addressDomain || rep.Kind != bounce.Permanent {
		t.Errorf("report = %+v", rep)
	}

	// The same request again reaches the processor with the same event
	// id, which is how it refuses the replay.
	wantStatus(t, s.hook("ses", note, nil), http.StatusOK)
	wantReports(t, h.proc, id, id)

	// A forger can name SNS's real certificate but cannot sign with its key.
	forger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	forged := h.sns.SignWith(h.sns.Notification(sesTopic, "sns-msg-2", string(providerSampleFile(t, "ses_complaint.json"))), forger)
	wantStatus(t, s.hook("ses", forged, nil), http.StatusUnauthorized)
	wantStatus(t, s.hook("ses", []byte(`{"Type": "Notification", "Message": `), nil), http.StatusBadRequest)
	wantReports(t, h.proc, id, id)
}

func TestWebhookPostmark(t *testing.T) {
	s, h := newHookSite(t)
	body := providerSampleFile(t, "postmark_hard_bounce.json")
	wantStatus(t, s.hook("postmark", body, postmarkAuth(postmarkUser, "a long postmark webhook passwore")), http.StatusUnauthorized)
	wantStatus(t, s.hook("postmark", body, nil), http.StatusUnauthorized)
	wantReports(t, h.proc)

	auth := postmarkAuth(postmarkUser, postmarkPass)
	wantStatus(t, s.hook("postmark", body, auth), http.StatusOK)
	wantStatus(t, s.hook("postmark", providerSampleFile(t, "postmark_spam_complaint.json"), auth), http.StatusOK)
	wantReports(t, h.proc, "postmark 4323372036854775807", "postmark 4323372036854776001")
	if got := h.proc.got()[1]; got.Kind != bounce.Complaint || got.MessageID != "immediate.4712.1740906845@news.example.org" {
		t.Errorf("complaint report = %+v", got)
	}
	wantStatus(t, s.hook("postmark", []byte(`{"RecordType": "Bounce", "ID": `), auth), http.StatusBadRequest)
}

func TestWebhookSendGrid(t *testing.T) {
	s, h := newHookSite(t)
	body := providerSampleFile(t, "sendgrid_events.json")
	forger := providerstest.NewSendGridKey(t)
	wantStatus(t, s.hook("sendgrid", body, forger.Sign(body, time.Now())), http.StatusUnauthorized)
	wantStatus(t, s.hook("sendgrid", body, h.sendgrid.Sign(body, time.Now().Add(-time.Hour))), http.StatusUnauthorized)
	wantReports(t, h.proc)

	r := s.hook("sendgrid", body, h.sendgrid.Sign(body, time.Now()))
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(r.body, `"reports": 4`) {
		t.Errorf("answer %s, want 4 reports", r.body)
	}
	wantReports(t, h.proc, "sendgrid Ym91bmNlLTQ3MTE", "sendgrid YmxvY2tlZC00NzEz", "sendgrid ZHJvcHBlZC00NzE0", "sendgrid c3BhbXJlcG9ydC00NzEy")

	broken := []byte(`[{"event": "bounce"`)
	wantStatus(t, s.hook("sendgrid", broken, h.sendgrid.Sign(broken, time.Now())), http.StatusBadRequest)
}

func TestWebhookMailgun(t *testing.T) {
	s, h := newHookSite(t)
	ev := providerSampleFile(t, "mailgun_failed_permanent.json")
	wantStatus(t, s.hook("mailgun", providerstest.Mailgun("someone-elses-key", ev, time.Now()), nil), http.StatusUnauthorized)
	wantReports(t, h.proc)
	wantStatus(t, s.hook("mailgun", providerstest.Mailgun(mailgunKey, ev, time.Now()), nil), http.StatusOK)
	wantStatus(t, s.hook("mailgun", providerstest.Mailgun(mailgunKey, providerSampleFile(t, "mailgun_complained.json"), time.Now()), nil), http.StatusOK)
	wantReports(t, h.proc, "mailgun Yp3kT8qLRe2vN0aXc4mB7w", "mailgun Q29tcGxhaW5lZC00NzEy")
	wantStatus(t, s.hook("mailgun", []byte(`{"signature": `), nil), http.StatusBadRequest)
}

// TestWebhookRequests: the answers that do not depend on the provider,
// the log line and the metric.
func TestWebhookRequests(t *testing.T) {
	s, h := newHookSite(t, withMaxBody(64<<10))
	auth := postmarkAuth(postmarkUser, postmarkPass)

	wantStatus(t, s.hook("sparkpost", []byte(`{}`), nil), http.StatusNotFound)
	wantStatus(t, s.get("/webhooks/postmark"), http.StatusMethodNotAllowed)
	big := append([]byte(`{"RecordType": "Bounce", "Details": "`), bytes.Repeat([]byte("x"), 70<<10)...)
	big = append(big, `"}`...)
	wantStatus(t, s.hook("postmark", big, auth), http.StatusRequestEntityTooLarge)
	// Without a Content-Length the limit is met while reading.
	req, _ := http.NewRequest(http.MethodPost, s.url("/webhooks/postmark"), io.MultiReader(bytes.NewReader(big)))
	req.Header = auth
	wantStatus(t, s.do(req), http.StatusRequestEntityTooLarge)
	wantReports(t, h.proc)

	h.proc.fail = errors.New("database is gone")
	wantStatus(t, s.hook("postmark", providerSampleFile(t, "postmark_hard_bounce.json"), auth), http.StatusInternalServerError)
	h.proc.fail = nil
	wantStatus(t, s.hook("postmark", providerSampleFile(t, "postmark_hard_bounce.json"), auth), http.StatusOK)
	wantStatus(t, s.hook("postmark", providerSampleFile(t, "postmark_hard_bounce.json"), postmarkAuth("x", "y")), http.StatusUnauthorized)

	logs := s.logs.String()
	if strings.Contains(logs, addressDomain) {
		t.Errorf("the log names an address:\n%s", logs)
	}
	if strings.Contains(logs, postmarkPass) {
		t.Errorf("the log shows the webhook password:\n%s", logs)
	}
	for _, want := range []string{`"msg":"webhook","provider":"postmark","status":200,"reports":1,"applied":1`,
		`"msg":"webhook rejected","provider":"postmark","status":401`, `"msg":"webhook failed","provider":"postmark","status":500`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %s:\n%s", want, logs)
		}
	}
	metrics := s.api(http.MethodGet, "/metrics", nil).body
	for _, want := range []string{
		`herald_webhook_requests_total{provider="other",result="not_configured"} 1`,
		`herald_webhook_requests_total{provider="postmark",result="ok"} 1`,
		`herald_webhook_requests_total{provider="postmark",result="unauthenticated"} 1`,
		`herald_webhook_requests_total{provider="postmark",result="error"} 1`,
		`herald_webhook_requests_total{provider="postmark",result="too_large"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestWebhookNotConfigured: a provider Herald was not given, and every
// webhook when there is no processor, answer 404.
func TestWebhookNotConfigured(t *testing.T) {
	proc := &recordingProcessor{}
	pm, err := providers.NewPostmark(providers.PostmarkConfig{Username: postmarkUser, Password: postmarkPass})
	if err != nil {
		t.Fatal(err)
	}
	s := newSite(t, withDeps(func(d *web.Deps) { d.Bounces, d.Webhooks = proc, []web.WebhookProvider{pm} }))
	ev := providerSampleFile(t, "mailgun_failed_permanent.json")
	wantStatus(t, s.hook("mailgun", providerstest.Mailgun(mailgunKey, ev, time.Now()), nil), http.StatusNotFound)
	wantStatus(t, s.hook("postmark", providerSampleFile(t, "postmark_hard_bounce.json"), postmarkAuth(postmarkUser, postmarkPass)), http.StatusOK)

	off := newSite(t, withDeps(func(d *web.Deps) { d.Webhooks = []web.WebhookProvider{pm} }))
	wantStatus(t, off.hook("postmark", providerSampleFile(t, "postmark_hard_bounce.json"), postmarkAuth(postmarkUser, postmarkPass)), http.StatusNotFound)
	wantReports(t, proc, "postmark 4323372036854775807")
}
