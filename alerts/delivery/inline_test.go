package delivery_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"herald/alerts/delivery"
	"herald/alerts/smtptest"
	"herald/store"
)

// pngBytes is the start of a PNG file, enough to travel as one.
var pngBytes = []byte("\x89PNG\r\n\x1a\nnot really an image, but bytes to carry")

// A message whose HTML shows the logo carries it as an inline part of a
// multipart/related, named by its Content-ID; one that does not show it
// does not carry it.
func TestInlineImageTravelsWithTheHTMLThatShowsIt(t *testing.T) {
	f := newDeliveryFixture(t, smtptest.Options{})
	withLogo := sampleMessage()
	withLogo.HTML = strings.Replace(withLogo.HTML, "<h1", `<img src="cid:logo@herald" alt="Ministry"><h1`, 1)
	plain := sampleMessage()
	plain.Key = "immediate:43.1:7"
	if _, err := f.db.EnqueueEmails(context.Background(), []store.OutboxMessage{withLogo, plain}); err != nil {
		t.Fatal(err)
	}
	cfg := f.smtpConfig()
	cfg.Inline = []delivery.InlineImage{{ContentID: "logo@herald", Name: "logo.png", Type: "image/png", Data: pngBytes}}
	d := f.deliverer(cfg, nil)
	if sent, err := d.Drain(context.Background()); sent != 2 || err != nil {
		t.Fatalf("Drain = %d, %v", sent, err)
	}
	msgs := f.srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	for _, m := range msgs {
		img, hasImage, err := m.Part("image/png")
		if err != nil {
			t.Fatal(err)
		}
		htmlPart, _, _ := m.Part("text/html")
		textPart, _, _ := m.Part("text/plain")
		isLogo := strings.Contains(string(htmlPart.Body), "cid:logo@herald")
		if hasImage != isLogo {
			t.Errorf("message with logo %v carries an image: %v", isLogo, hasImage)
			continue
		}
		if len(textPart.Body) == 0 || len(htmlPart.Body) == 0 {
			t.Error("a text part is missing")
		}
		if !isLogo {
			continue
		}
		if img.Header.Get("Content-Id") != "<logo@herald>" || !strings.HasPrefix(img.Header.Get("Content-Disposition"), "inline") ||
			!bytes.Equal(img.Body, pngBytes) || img.Parent != "multipart/related" {
			t.Errorf("image part %+v", img)
		}
	}
}

// Headers gives the header fields a message is sent with, decoded.
func TestHeadersForPreviews(t *testing.T) {
	f := newDeliveryFixture(t, smtptest.Options{})
	d := f.deliverer(fileConfig(t.TempDir()), nil)
	hs, err := d.Headers(sampleMessage())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var order []string
	for _, h := range hs {
		got[h.Name] = h.Value
		order = append(order, h.Name)
	}
	for name, want := range map[string]string{
		"Subject":          sampleMessage().Subject[:strings.Index(sampleMessage().Subject, "\t")],
		"From":             `"Herald" <alerts@news.example.org>`,
		"To":               "<reader.seven@example.net>",
		"List-Unsubscribe": "<http://127.0.0.1:8080/unsubscribe/tok7>",
	} {
		if !strings.HasPrefix(got[name], want) {
			t.Errorf("%s: %q, want %q", name, got[name], want)
		}
	}
	if len(order) < 8 {
		t.Errorf("headers %v", order)
	}
}
