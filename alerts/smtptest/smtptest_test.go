package smtptest_test

import (
	"errors"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"herald/alerts/smtptest"
)

// sendOne speaks SMTP to srv with the standard library's client and
// returns the reply code of the first failure (0 for a dropped connection,
// -1 for success).
func sendOne(t *testing.T, srv *smtptest.Server, rcpt, body string, auth smtp.Auth) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", srv.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(700 * time.Millisecond))
	c, err := smtp.NewClient(conn, srv.Host())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	code := func(err error) int {
		var te *textproto.Error
		if errors.As(err, &te) {
			return te.Code
		}
		return 0
	}
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return code(err)
		}
	}
	if err := c.Mail("alerts@news.example.org"); err != nil {
		return code(err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return code(err)
	}
	w, err := c.Data()
	if err != nil {
		return code(err)
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return code(err)
	}
	if err := w.Close(); err != nil {
		return code(err)
	}
	return -1
}

const sample = "Message-ID: <abc@news.example.org>\r\nSubject: hello\r\n\r\nbody\r\n"

func TestServerRecordsAndMisbehavesOnDemand(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	srv.SetFault(smtptest.Combine(
		smtptest.ForAddresses(smtptest.Permanent(), "gone@example.net"),
		smtptest.FirstAttempts(smtptest.ForAddresses(smtptest.Temporary(), "busy@example.net"), 1),
		smtptest.ForAddresses(smtptest.Dropped(), "drop@example.net"),
		smtptest.ForAddresses(smtptest.Dropped().AfterData(), "lost-reply@example.net"),
		smtptest.ForAddresses(smtptest.Stalled(0), "stall@example.net"),
	))
	cases := []struct {
		rcpt string
		want int
	}{
		{"ok@example.net", -1},
		{"gone@example.net", 550},
		{"busy@example.net", 451},
		{"busy@example.net", -1},
		{"drop@example.net", 0},
		{"lost-reply@example.net", 0},
		{"stall@example.net", 0},
	}
	for _, c := range cases {
		if got := sendOne(t, srv, c.rcpt, sample, nil); got != c.want {
			t.Errorf("%s: reply %d, want %d", c.rcpt, got, c.want)
		}
	}
	// Accepted: ok, busy on its second try, and the message whose reply was lost.
	if srv.Count() != 3 {
		t.Fatalf("count = %d, want 3", srv.Count())
	}
	msgs := srv.Messages()
	if len(msgs) != 3 || msgs[0].To[0] != "ok@example.net" || msgs[0].From != "alerts@news.example.org" ||
		msgs[0].MessageID != "<abc@news.example.org>" || !strings.HasSuffix(string(msgs[0].Data), "body\r\n") {
		t.Fatalf("messages = %+v", msgs)
	}
	if got := srv.MessageIDs()["lost-reply@example.net"]["<abc@news.example.org>"]; got != 1 {
		t.Fatalf("lost-reply message recorded %d times, want 1", got)
	}
	if srv.Attempts("BUSY@example.net") != 2 || srv.Attempts("gone@example.net") != 1 {
		t.Fatalf("attempts: busy %d, gone %d", srv.Attempts("busy@example.net"), srv.Attempts("gone@example.net"))
	}
	if srv.Connections() != len(cases) {
		t.Fatalf("connections = %d, want %d", srv.Connections(), len(cases))
	}
}

func TestForRatioIsStableAndProportional(t *testing.T) {
	ff := smtptest.ForRatio(smtptest.Temporary(), 0.3)
	hit := 0
	for i := range 3000 {
		rcpt := "reader" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "@example.net" + string(rune('0'+i%10))
		a, b := ff(rcpt, 1), ff(rcpt, 2)
		if a != b {
			t.Fatalf("%s: different faults on two attempts", rcpt)
		}
		if a.Action == smtptest.Reject {
			hit++
		}
	}
	if hit == 0 || hit == 3000 {
		t.Fatalf("ratio 0.3 hit %d of 3000", hit)
	}
}

func TestServerRequiresAuthWhenConfigured(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Username: "herald", Password: "s3cret-for-tests"})
	if got := sendOne(t, srv, "ok@example.net", sample, nil); got != 502 {
		t.Fatalf("without AUTH: reply %d, want 502", got)
	}
	if got := sendOne(t, srv, "ok@example.net", sample, smtp.PlainAuth("", "herald", "wrong", srv.Host())); got != 535 {
		t.Fatalf("wrong password: reply %d, want 535", got)
	}
	if got := sendOne(t, srv, "ok@example.net", sample, smtp.PlainAuth("", "herald", "s3cret-for-tests", srv.Host())); got != -1 {
		t.Fatalf("right password: reply %d, want success", got)
	}
}

func TestCountOnlyKeepsNoMessages(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{CountOnly: true})
	for range 3 {
		if got := sendOne(t, srv, "ok@example.net", sample, nil); got != -1 {
			t.Fatalf("reply %d", got)
		}
	}
	if srv.Count() != 3 || len(srv.Messages()) != 0 || srv.Attempts("ok@example.net") != 0 {
		t.Fatalf("count %d, messages %d, attempts %d", srv.Count(), len(srv.Messages()), srv.Attempts("ok@example.net"))
	}
}
