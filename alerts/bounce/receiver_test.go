package bounce_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"

	"herald/alerts/bounce"
	"herald/store"
)

// startReceiver serves the fixture's processor on a loopback port.
func (f *fixture) startReceiver(cfg bounce.ReceiverConfig) string {
	f.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.t.Fatal(err)
	}
	r := f.p.NewReceiver(cfg)
	done := make(chan error, 1)
	go func() { done <- r.Serve(ln) }()
	f.t.Cleanup(func() {
		r.Close()
		if err := <-done; err != nil {
			f.t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// smtpSend sends raw from the null sender to rcpt, as an MTA sends a
// bounce, and returns the server's refusal, if any.
func smtpSend(t *testing.T, addr, rcpt string, raw []byte) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail(""); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	// A server that refuses mid-way may hang up before all is written;
	// the reply to the end of data is what counts.
	_, werr := w.Write(raw)
	if err := w.Close(); err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	return c.Quit()
}

func smtpCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

func TestTheSMTPReceiverTakesBouncesOnly(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	addr := f.startReceiver(bounce.ReceiverConfig{})
	gone := f.send("gone@example.net", "digest:daily:1:1")
	big := f.send("big@example.net", "digest:daily:1:2")

	// A hard bounce, with CRLF line ends as SMTP carries it.
	raw := bytes.ReplaceAll(f.fixtureFor("postfix-user-unknown.eml", gone), []byte("\n"), []byte("\r\n"))
	if err := smtpSend(t, addr, f.rcpt(gone), raw); err != nil {
		t.Fatalf("sending a bounce: %v", err)
	}
	if s, ok := f.suppression(gone.To); !ok || s.Source != bounce.SourceSMTP || s.Cause != store.CauseBounce || s.OutboxID != gone.ID {
		t.Fatalf("suppression = %+v, %v", s, ok)
	}
	// Exactly that address: not big, whose message went out beside it.
	f.wantSuppressed(gone.To)

	// Other recipients are refused at RCPT TO, in another domain too.
	for _, rcpt := range []string{"postmaster@news.example.org", "bounces+" + strings.Repeat("a", 10) + "@elsewhere.example"} {
		if err := smtpSend(t, addr, rcpt, raw); smtpCode(err) != 550 {
			t.Errorf("RCPT TO %s: %v, want 550", rcpt, err)
		}
	}

	// 50 MB is refused with 552, and changes nothing.
	huge := append(f.fixtureFor("postfix-user-unknown.eml", big), bytes.Repeat([]byte(strings.Repeat("x", 76)+"\r\n"), 50<<20/78)...)
	if err := smtpSend(t, addr, f.rcpt(big), huge); smtpCode(err) != 552 {
		t.Fatalf("50 MB message: %v, want 552", err)
	}
	if ok, _ := f.db.IsSuppressed(ctx, big.To); ok {
		t.Fatal("the refused message suppressed its address")
	}

	// A forged bounce is accepted, so the sender does not bounce it, and
	// changes nothing.
	other := f.send("other@example.net", "digest:daily:1:3")
	forged := "bounces+" + strings.Repeat("a", 36) + "@news.example.org"
	if err := smtpSend(t, addr, forged, f.fixtureFor("postfix-user-unknown.eml", other)); err != nil {
		t.Fatalf("forged bounce: %v", err)
	}
	if ok, _ := f.db.IsSuppressed(ctx, other.To); ok {
		t.Fatal("a forged bounce suppressed an address")
	}

	// The hard bounce again: accepted, and applied no more.
	if err := smtpSend(t, addr, f.rcpt(gone), raw); err != nil {
		t.Fatalf("sending the bounce again: %v", err)
	}
	if got := f.regCounter("herald_bounce_rejected_total", "reason", bounce.IgnoredReplay); got != 1 {
		t.Errorf("replays counted %v, want 1", got)
	}
	f.wantSuppressed(gone.To)
}

func TestTheSMTPReceiverLimitsEachClient(t *testing.T) {
	f := newFixture(t)
	addr := f.startReceiver(bounce.ReceiverConfig{PerClient: 2})
	m := f.send("reader@example.net", "digest:daily:1:1")
	raw := f.fixtureFor("out-of-office.eml", m)
	for i := range 2 {
		if err := smtpSend(t, addr, f.rcpt(m), raw); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := smtpSend(t, addr, f.rcpt(m), raw); smtpCode(err) != 450 {
		t.Fatalf("third message in a minute: %v, want 450", err)
	}
}
