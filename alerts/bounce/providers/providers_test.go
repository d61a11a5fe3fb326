package providers_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"herald/alerts/bounce"
	"herald/alerts/bounce/providers"
	"herald/alerts/bounce/providers/providerstest"
)

const topic = "arn:aws:sns:eu-west-2:111122223333:herald-bounces"

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkResult compares a parse's reports and skipped count.
func checkResult(t *testing.T, source string, res providers.Result, want []brief, skipped int) {
	t.Helper()
	if diff := cmp.Diff(want, briefs(t, source, res.Reports)); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
	if res.Skipped != skipped {
		t.Errorf("Skipped = %d, want %d", res.Skipped, skipped)
	}
}

// brief is what the tests compare of a report (Raw is checked apart).
type brief struct {
	EventID, MessageID, Recipient, Status string
	Kind                                  bounce.Kind
}

func briefs(t *testing.T, source string, rs []bounce.Report) []brief {
	t.Helper()
	var out []brief
	for _, r := range rs {
		if r.Source != source {
			t.Errorf("report Source = %q, want %q", r.Source, source)
		}
		if len(r.Raw) == 0 || r.At.IsZero() {
			t.Errorf("report %s has no Raw or At", r.EventID)
		}
		out = append(out, brief{EventID: r.EventID, MessageID: r.MessageID, Recipient: r.Recipient, Status: r.Status, Kind: r.Kind})
	}
	return out
}

func newSES(t *testing.T, sns *providerstest.SNS) *providers.SES {
	t.Helper()
	p, err := providers.NewSES(sns.Config(topic))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSESNotifications(t *testing.T) {
	sns := providerstest.NewSNS(t)
	p := newSES(t, sns)
	subject := "Amazon SES Email Event Notification"
	tests := []struct {
		file    string
		version int
		subject *string
		want    []brief
		skipped int
	}{
		{"ses_bounce_permanent.json", 1, nil, []brief{{
			EventID:   "0100017a1b2c3d4e-5f6a7b8c-1d2e-4f3a-9b8c-7d6e5f4a3b2c-000000/0",
			MessageID: "immediate.4711.1740906845@news.example.org", Recipient: "gone@subscribers.example.net",
			Status: "5.1.1", Kind: bounce.Permanent}}, 0},
		{"ses_bounce_transient.json", 2, &subject, []brief{
			{EventID: "0100017a1b2c9f00-11223344-5566-4778-8990-aabbccddeeff-000000/0", MessageID: "digest.daily.2026-03-02.88@news.example.org",
				Recipient: "full@subscribers.example.net", Status: "4.2.2", Kind: bounce.Transient},
			{EventID: "0100017a1b2c9f00-11223344-5566-4778-8990-aabbccddeeff-000000/1", MessageID: "digest.daily.2026-03-02.88@news.example.org",
				Recipient: "also-full@subscribers.example.net", Status: "4.2.2", Kind: bounce.Transient},
		}, 0},
		{"ses_complaint.json", 2, nil, []brief{{
			EventID:   "0100017a1c000000-99887766-5544-4332-8110-ffeeddccbbaa-000000/0",
			MessageID: "immediate.4712.1740906845@news.example.org", Recipient: "annoyed@subscribers.example.net",
			Kind: bounce.Complaint}}, 0},
		{"ses_delivery.json", 2, nil, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m := sns.Notification(topic, "sns-"+tt.file, string(sample(t, tt.file)))
			m.Version, m.Subject = tt.version, tt.subject
			res, err := p.Parse(context.Background(), nil, sns.Sign(m))
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, "ses", res, tt.want, tt.skipped)
		})
	}
	if n := sns.CertFetches(); n != 1 {
		t.Errorf("signing certificate fetched %d times, want once", n)
	}
}

func TestSESSubscriptionConfirmation(t *testing.T) {
	sns := providerstest.NewSNS(t)
	p := newSES(t, sns)
	res, err := p.Parse(context.Background(), nil, sns.Sign(sns.SubscriptionConfirmation(topic, "sub-1", "token-abc")))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Reports) != 0 || !strings.Contains(res.Note, "confirmed") {
		t.Errorf("result = %+v, want a confirmation note and no reports", res)
	}
	if got := sns.Confirmed(); !cmp.Equal(got, []string{"token-abc"}) {
		t.Errorf("confirmed %v, want [token-abc]", got)
	}

	// A confirmation for a topic Herald was not told about, or one whose
	// SubscribeURL leaves SNS, confirms nothing.
	other := sns.SubscriptionConfirmation("arn:aws:sns:eu-west-2:999999999999:someone-else", "sub-2", "token-other")
	if _, err := p.Parse(context.Background(), nil, sns.Sign(other)); !errors.Is(err, providers.ErrUnauthenticated) {
		t.Errorf("other topic: err = %v, want ErrUnauthenticated", err)
	}
	away := sns.SubscriptionConfirmation(topic, "sub-3", "token-away")
	away.SubscribeURL = "https://attacker.example.com/confirm?Token=token-away"
	if _, err := p.Parse(context.Background(), nil, sns.Sign(away)); !errors.Is(err, providers.ErrUnauthenticated) {
		t.Errorf("SubscribeURL off SNS: err = %v, want ErrUnauthenticated", err)
	}
	if got := sns.Confirmed(); len(got) != 1 {
		t.Errorf("confirmed %v, want only the first", got)
	}
}

func TestSESRefuses(t *testing.T) {
	sns := providerstest.NewSNS(t)
	p := newSES(t, sns)
	msg := string(sample(t, "ses_bounce_permanent.json"))
	forger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tampered := string(sns.Sign(sns.Notification(topic, "n-1", msg)))
	tampered = strings.Replace(tampered, "gone@subscribers", "someone@subscribers", 1)

	tests := []struct {
		name string
		body []byte
		want error
	}{
		{"signed with another key", sns.SignWith(sns.Notification(topic, "n-1", msg), forger), providers.ErrUnauthenticated},
		{"changed after signing", []byte(tampered), providers.ErrUnauthenticated},
		{"topic not configured", sns.Sign(sns.Notification("arn:aws:sns:eu-west-2:111122223333:other", "n-1", msg)), providers.ErrUnauthenticated},
		{"too old", func() []byte {
			m := sns.Notification(topic, "n-1", msg)
			m.Timestamp = time.Now().Add(-6 * time.Minute)
			return sns.Sign(m)
		}(), providers.ErrUnauthenticated},
		{"certificate off SNS", func() []byte {
			m := sns.Notification(topic, "n-1", msg)
			m.CertURL = "https://certs.example.com/SimpleNotificationService-test.pem"
			return sns.Sign(m)
		}(), providers.ErrUnauthenticated},
		{"certificate over http", func() []byte {
			m := sns.Notification(topic, "n-1", msg)
			m.CertURL = strings.Replace(sns.CertURL, "https://", "http://", 1)
			return sns.Sign(m)
		}(), providers.ErrUnauthenticated},
		{"unknown signature version", func() []byte {
			m := sns.Notification(topic, "n-1", msg)
			m.Version = 3
			return sns.Sign(m)
		}(), providers.ErrUnauthenticated},
		{"broken JSON", []byte(`{"Type": "Notification",`), providers.ErrMalformed},
		{"signed, but the SES message is broken", sns.Sign(sns.Notification(topic, "n-1", "{not json")), providers.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := p.Parse(context.Background(), nil, tt.body)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if len(res.Reports) != 0 {
				t.Errorf("reports %v from a refused message", res.Reports)
			}
		})
	}
}

func TestSNSHost(t *testing.T) {
	for host, want := range map[string]bool{
		"sns.eu-west-2.amazonaws.com":              true,
		"sns.cn-north-1.amazonaws.com.cn":          true,
		"sns.us-gov-west-1.amazonaws.com":          true,
		"sns.eu-west-2.amazonaws.com.evil.example": false,
		"evil-sns.eu-west-2.amazonaws.com":         false,
		"sns.amazonaws.com":                        false,
		"s3.eu-west-2.amazonaws.com":               false,
	} {
		if got := providers.SNSHost(host); got != want {
			t.Errorf("SNSHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestNewSESChecksTopics(t *testing.T) {
	for _, arns := range [][]string{nil, {"herald-bounces"}, {"arn:aws:sqs:eu-west-2:111122223333:queue"}} {
		if _, err := providers.NewSES(providers.SESConfig{TopicARNs: arns}); err == nil {
			t.Errorf("NewSES(%v): no error", arns)
		}
	}
}

func basicAuth(user, pass string) http.Header {
	r, _ := http.NewRequest("POST", "/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header
}

func TestPostmark(t *testing.T) {
	p, err := providers.NewPostmark(providers.PostmarkConfig{Username: "postmark", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	auth := basicAuth("postmark", "correct horse battery")
	tests := []struct {
		file    string
		want    []brief
		skipped int
	}{
		// Herald's Message-ID comes from the bounce Postmark includes;
		// without it, only Postmark's own id is known.
		{"postmark_hard_bounce.json", []brief{{EventID: "4323372036854775807", MessageID: "immediate.4711.1740906845@news.example.org",
			Recipient: "gone@subscribers.example.net", Kind: bounce.Permanent}}, 0},
		{"postmark_soft_bounce.json", []brief{{EventID: "4323372036854775901", Recipient: "full@subscribers.example.net", Kind: bounce.Transient}}, 0},
		{"postmark_spam_complaint.json", []brief{{EventID: "4323372036854776001", MessageID: "immediate.4712.1740906845@news.example.org",
			Recipient: "annoyed@subscribers.example.net", Kind: bounce.Complaint}}, 0},
		{"postmark_auto_responder.json", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			res, err := p.Parse(context.Background(), auth, sample(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, "postmark", res, tt.want, tt.skipped)
		})
	}
	for name, h := range map[string]http.Header{
		"no credentials":   {},
		"wrong password":   basicAuth("postmark", "correct horse"),
		"wrong user":       basicAuth("postmark2", "correct horse battery"),
		"bearer not basic": {"Authorization": {"Bearer correct horse battery"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := p.Parse(context.Background(), h, sample(t, "postmark_hard_bounce.json")); !errors.Is(err, providers.ErrUnauthenticated) {
				t.Errorf("err = %v, want ErrUnauthenticated", err)
			}
		})
	}
	if _, err := p.Parse(context.Background(), auth, []byte(`{"RecordType": "Bounce", `)); !errors.Is(err, providers.ErrMalformed) {
		t.Errorf("broken JSON: err = %v, want ErrMalformed", err)
	}
}

func TestSendGrid(t *testing.T) {
	key := providerstest.NewSendGridKey(t)
	p, err := providers.NewSendGrid(providers.SendGridConfig{PublicKey: key.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	body := sample(t, "sendgrid_events.json")
	res, err := p.Parse(context.Background(), key.Sign(body, time.Now()), body)
	if err != nil {
		t.Fatal(err)
	}
	want := []brief{
		{EventID: "Ym91bmNlLTQ3MTE", MessageID: "immediate.4711.1740906845@news.example.org", Recipient: "gone@subscribers.example.net", Status: "5.1.1", Kind: bounce.Permanent},
		{EventID: "YmxvY2tlZC00NzEz", MessageID: "immediate.4713.1740906845@news.example.org", Recipient: "blocked@subscribers.example.net", Status: "5.7.1", Kind: bounce.Transient},
		{EventID: "ZHJvcHBlZC00NzE0", MessageID: "immediate.4714.1740906845@news.example.org", Recipient: "bounced-before@subscribers.example.net", Status: "5.0.0", Kind: bounce.Permanent},
		{EventID: "c3BhbXJlcG9ydC00NzEy", MessageID: "immediate.4712.1740906845@news.example.org", Recipient: "annoyed@subscribers.example.net", Kind: bounce.Complaint},
	}
	if diff := cmp.Diff(want, briefs(t, "sendgrid", res.Reports)); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
	if res.Skipped != 4 {
		t.Errorf("Skipped = %d, want 4 (processed, delivered, deferred, dropped as unsubscribed)", res.Skipped)
	}
	if got := string(res.Reports[0].Raw); !strings.Contains(got, `"Ym91bmNlLTQ3MTE"`) || strings.Contains(got, "blocked@") {
		t.Errorf("Raw of the first report is not its own event: %s", got)
	}

	other := providerstest.NewSendGridKey(t)
	broken := []byte(`[{"event": "bounce",`)
	for name, req := range map[string]struct {
		h    http.Header
		body []byte
		want error
	}{
		"signed by another key": {other.Sign(body, time.Now()), body, providers.ErrUnauthenticated},
		"changed after signing": {key.Sign(body, time.Now()), append([]byte(" "), body...), providers.ErrUnauthenticated},
		"too old":               {key.Sign(body, time.Now().Add(-10*time.Minute)), body, providers.ErrUnauthenticated},
		"no signature":          {http.Header{}, body, providers.ErrUnauthenticated},
		"signed broken JSON":    {key.Sign(broken, time.Now()), broken, providers.ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := p.Parse(context.Background(), req.h, req.body); !errors.Is(err, req.want) {
				t.Errorf("err = %v, want %v", err, req.want)
			}
		})
	}
	for _, k := range []string{"", "not base64!", "aGVsbG8="} {
		if _, err := providers.NewSendGrid(providers.SendGridConfig{PublicKey: k}); err == nil {
			t.Errorf("NewSendGrid(%q): no error", k)
		}
	}
}

func TestMailgun(t *testing.T) {
	const signingKey = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
	p, err := providers.NewMailgun(providers.MailgunConfig{SigningKey: signingKey})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file    string
		want    []brief
		skipped int
	}{
		{"mailgun_failed_permanent.json", []brief{{EventID: "Yp3kT8qLRe2vN0aXc4mB7w", MessageID: "immediate.4711.1740906845@news.example.org",
			Recipient: "gone@subscribers.example.net", Status: "5.1.1", Kind: bounce.Permanent}}, 0},
		{"mailgun_failed_temporary.json", []brief{{EventID: "Qm9xZnVsbC10ZW1wb3Jhcnk", MessageID: "digest.daily.2026-03-02.88@news.example.org",
			Recipient: "full@subscribers.example.net", Kind: bounce.Transient}}, 0},
		{"mailgun_complained.json", []brief{{EventID: "Q29tcGxhaW5lZC00NzEy", MessageID: "immediate.4712.1740906845@news.example.org",
			Recipient: "annoyed@subscribers.example.net", Kind: bounce.Complaint}}, 0},
		{"mailgun_delivered.json", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			res, err := p.Parse(context.Background(), nil, providerstest.Mailgun(signingKey, sample(t, tt.file), time.Now()))
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, "mailgun", res, tt.want, tt.skipped)
		})
	}
	ev := sample(t, "mailgun_failed_permanent.json")
	for name, req := range map[string]struct {
		body []byte
		want error
	}{
		"signed with another key": {providerstest.Mailgun("key-someone-else", ev, time.Now()), providers.ErrUnauthenticated},
		"too old":                 {providerstest.Mailgun(signingKey, ev, time.Now().Add(-time.Hour)), providers.ErrUnauthenticated},
		"unsigned":                {[]byte(`{"event-data": ` + string(ev) + `}`), providers.ErrUnauthenticated},
		"broken JSON":             {[]byte(`{"signature": {`), providers.ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := p.Parse(context.Background(), nil, req.body); !errors.Is(err, req.want) {
				t.Errorf("err = %v, want %v", err, req.want)
			}
		})
	}
}

// FuzzPostmark feeds authenticated Postmark records (bounce dumps
// included, which are MIME) to the parser: it must never panic, and what
// it reports must name a recipient.
func FuzzPostmark(f *testing.F) {
	for _, name := range []string{"postmark_hard_bounce.json", "postmark_spam_complaint.json", "postmark_soft_bounce.json"} {
		f.Add(sample(f, name))
	}
	p, err := providers.NewPostmark(providers.PostmarkConfig{Username: "u", Password: "p"})
	if err != nil {
		f.Fatal(err)
	}
	auth := basicAuth("u", "p")
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := p.Parse(context.Background(), auth, body)
		if err != nil && !errors.Is(err, providers.ErrMalformed) {
			t.Fatalf("unexpected error %v", err)
		}
		for _, r := range res.Reports {
			if r.Recipient == "" || r.EventID == "" {
				t.Fatalf("report without recipient or event id: %+v", r)
			}
		}
	})
}
