package delivery_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/google/go-cmp/cmp"

	"herald/alerts/delivery"
	"herald/alerts/smtptest"
	"herald/store"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files in testdata")

// sampleMessage is an immediate alert with everything a header can trip on:
// a subject that is not ASCII, a recipient in mixed case (sent in its
// canonical form), long lines, an unsubscribe link.
func sampleMessage() store.OutboxMessage {
	return store.OutboxMessage{
		Key: "immediate:42.1:7", Kind: store.KindImmediate, SubscriberID: 7, To: "Reader.Seven@example.net",
		Subject: "Home Office: Partners pledge to tackle “human trafficking” — joint plan\tagreed",
		Text: "Partners pledge to tackle human trafficking\n\n" +
			"The Home Office and its partners today agreed a joint plan to protect victims of human trafficking and modern slavery, with new funding for specialist support and a shared approach to prosecuting offenders across borders.\n\n" +
			"Read the full release: https://news.example.org/releases/42\n\n" +
			"You get this email because you subscribed to Human trafficking (immediately).\n" +
			"Unsubscribe: https://news.example.org/unsubscribe/tok7\n",
		HTML: `<!DOCTYPE html><html><body style="margin:0"><table role="presentation" width="100%" style="font-family:Arial,sans-serif">` +
			`<tr><td><h1 style="font-size:22px">Partners pledge to tackle human trafficking</h1>` +
			`<p>The Home Office and its partners today agreed a joint plan to protect victims of human trafficking and modern slavery — with new funding.</p>` +
			`<p><a href="https://news.example.org/releases/42">Read the full release</a></p></td></tr></table></body></html>`,
		UnsubscribeURL: "http://127.0.0.1:8080/unsubscribe/tok7",
	}
}

func fileConfig(dir string) delivery.Config {
	return delivery.Config{
		From:        "Herald <alerts@news.example.org>",
		ReplyTo:     "Press Office <press@news.example.org>",
		ListID:      "Herald news alerts <alerts.news.example.org>",
		Transport:   "file",
		Dir:         dir,
		Concurrency: 2,
	}
}

func TestDeliveryMessageFormat(t *testing.T) {
	f := newDeliveryFixture(t, smtptest.Options{})
	want := sampleMessage()
	if _, err := f.db.EnqueueEmails(context.Background(), []store.OutboxMessage{want}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	d := f.deliverer(fileConfig(dir), nil)
	if sent, err := d.Drain(context.Background()); sent != 1 || err != nil {
		t.Fatalf("Drain = %d, %v", sent, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("%d files in the mail dir, want 1 (and no temporary files)", len(entries))
	}
	name := entries[0].Name()
	if !regexp.MustCompile(`^20260302T083000Z-immediate_42.1_7-[0-9a-f]{8}\.eml$`).MatchString(name) {
		t.Fatalf("file name %q", name)
	}
	if info, _ := entries[0].Info(); info.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, want 0600: messages hold personal data", info.Mode().Perm())
	}
	raw, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}

	golden := filepath.Join("testdata", "immediate.eml")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	expected, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(expected), string(raw)); diff != "" {
		t.Errorf("message differs from %s (-want +got):\n%s", golden, diff)
	}

	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Header
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(h.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{
		"Message-Id":            wantMessageID(want.Key),
		"Date":                  "Mon, 02 Mar 2026 08:30:00 +0000",
		"From":                  `"Herald" <alerts@news.example.org>`,
		"To":                    "<reader.seven@example.net>",
		"Reply-To":              `"Press Office" <press@news.example.org>`,
		"List-Id":               "Herald news alerts <alerts.news.example.org>",
		"List-Unsubscribe":      "<http://127.0.0.1:8080/unsubscribe/tok7>",
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		"Auto-Submitted":        "auto-generated",
		"Mime-Version":          "1.0",
	}
	for k, v := range headers {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if wantSubject := strings.ReplaceAll(want.Subject, "\t", " "); subject != wantSubject {
		t.Errorf("subject decodes to %q, want %q", subject, wantSubject)
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Errorf("line of %d bytes", len(line))
		}
		if strings.ContainsAny(line, "\r\n") {
			t.Errorf("bare CR or LF in %q", line)
		}
	}
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type %q: %v", h.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types, bodies []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(p) // quoted-printable is decoded by the reader
		if err != nil {
			t.Fatal(err)
		}
		mt, ps, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types = append(types, mt+"; charset="+ps["charset"])
		bodies = append(bodies, strings.ReplaceAll(string(body), "\r\n", "\n"))
	}
	if !slices.Equal(types, []string{"text/plain; charset=UTF-8", "text/html; charset=UTF-8"}) {
		t.Fatalf("parts %v, want plain text then HTML", types)
	}
	if bodies[0] != want.Text || bodies[1] != want.HTML {
		t.Errorf("parts do not decode to the row's bodies:\n%s", cmp.Diff([]string{want.Text, want.HTML}, bodies))
	}

	// Sent again (after a crash, say), the message is the same file with
	// the same bytes.
	if err := forceResend(f.db, want.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	again, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil || !bytes.Equal(again, raw) {
		t.Fatalf("the resent message differs (or is elsewhere: %v)", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("%d files after sending the same message twice", len(entries))
	}
}

// forceResend puts a sent row back in the queue, as if its sending had
// been cut short by a crash.
func forceResend(db *store.DB, key string) error {
	ctx := context.Background()
	for after := int64(0); ; {
		page, err := db.OutboxMessages(ctx, after, 500)
		if err != nil || len(page) == 0 {
			return fmt.Errorf("no outbox row %q: %v", key, err)
		}
		for _, m := range page {
			if m.Key == key {
				return db.ResendMessage(ctx, m.ID)
			}
			after = m.ID
		}
	}
}

func TestDeliveryDKIMSignatureVerifies(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		key  any
	}{{"rsa", rsaKey}, {"ed25519", edKey}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			der, err := x509.MarshalPKCS8PrivateKey(c.key)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := x509.MarshalPKIXPublicKey(c.key.(crypto.Signer).Public())
			if err != nil {
				t.Fatal(err)
			}
			record := "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pub)
			if c.name == "ed25519" {
				record = "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(c.key.(ed25519.PrivateKey).Public().(ed25519.PublicKey))
			}
			f := newDeliveryFixture(t, smtptest.Options{})
			if _, err := f.db.EnqueueEmails(context.Background(), []store.OutboxMessage{sampleMessage()}); err != nil {
				t.Fatal(err)
			}
			cfg := f.smtpConfig()
			cfg.DKIM = delivery.DKIMConfig{Domain: "news.example.org", Selector: "herald2026",
				PrivateKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})}
			if sent, err := f.deliverer(cfg, nil).Drain(context.Background()); sent != 1 || err != nil {
				t.Fatalf("Drain = %d, %v", sent, err)
			}
			raw := f.srv.Messages()[0].Data
			lookup := func(domain string) ([]string, error) {
				if domain != "herald2026._domainkey.news.example.org" {
					t.Errorf("looked up %q", domain)
				}
				return []string{record}, nil
			}
			verify := func(raw []byte) *dkim.Verification {
				vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{LookupTXT: lookup})
				if err != nil || len(vs) != 1 {
					t.Fatalf("verify: %d signatures, %v", len(vs), err)
				}
				return vs[0]
			}
			v := verify(raw)
			if v.Err != nil || v.Domain != "news.example.org" {
				t.Fatalf("signature: domain %q, %v", v.Domain, v.Err)
			}
			for _, h := range []string{"from", "subject", "message-id", "list-unsubscribe", "list-unsubscribe-post"} {
				if !slices.ContainsFunc(v.HeaderKeys, func(k string) bool { return strings.EqualFold(k, h) }) {
					t.Errorf("%s is not signed (signed: %v)", h, v.HeaderKeys)
				}
			}
			// The check can fail: an altered link breaks the signature.
			tampered := bytes.Replace(raw, []byte("/unsubscribe/tok7>"), []byte("/unsubscribe/tok8>"), 1)
			if bytes.Equal(tampered, raw) {
				t.Fatal("nothing to tamper with")
			}
			if verify(tampered).Err == nil {
				t.Fatal("a tampered message verified")
			}
		})
	}
}

func TestDeliveryOverTLSAndAuth(t *testing.T) {
	cases := []struct {
		name     string
		server   smtptest.Options
		tls      string
		user     string
		password string
		trust    bool
		wantSent bool
	}{
		{name: "starttls", server: smtptest.Options{TLS: true}, tls: "starttls", trust: true, wantSent: true},
		{name: "implicit tls with auth", server: smtptest.Options{ImplicitTLS: true, Username: "herald", Password: "relay-secret-1"},
			tls: "tls", user: "herald", password: "relay-secret-1", trust: true, wantSent: true},
		{name: "auth on loopback without tls", server: smtptest.Options{Username: "herald", Password: "relay-secret-1"},
			tls: "none", user: "herald", password: "relay-secret-1", wantSent: true},
		{name: "starttls required but not offered", server: smtptest.Options{}, tls: "starttls"},
		{name: "untrusted certificate", server: smtptest.Options{TLS: true}, tls: "starttls"},
		{name: "wrong password", server: smtptest.Options{Username: "herald", Password: "relay-secret-1"},
			tls: "none", user: "herald", password: "wrong"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newDeliveryFixture(t, c.server)
			f.enqueue("2026-03-01", deliveryAddrs(3))
			cfg := f.smtpConfig()
			cfg.SMTP.TLS, cfg.SMTP.Username, cfg.SMTP.Password = c.tls, c.user, c.password
			if c.trust {
				cfg.SMTP.TLSConfig = f.srv.ClientTLSConfig()
			}
			sent, err := f.deliverer(cfg, nil).Drain(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			counts := f.counts()
			if c.wantSent {
				if sent != 3 || f.srv.Count() != 3 {
					t.Fatalf("sent %d, server got %d; want 3", sent, f.srv.Count())
				}
				return
			}
			// A relay Herald cannot reach or log in to is a reason to
			// retry later, not to fail or blame the subscribers.
			if sent != 0 || f.srv.Count() != 0 || counts[store.StatusPending] != 3 {
				t.Fatalf("sent %d, server got %d, counts %v; want all 3 pending", sent, f.srv.Count(), counts)
			}
			rows, err := f.db.ClaimDue(context.Background(), 10, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows.Messages) != 0 {
				t.Fatal("retries are due at once")
			}
		})
	}
}
