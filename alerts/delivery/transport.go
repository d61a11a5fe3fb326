package delivery

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"

	"herald/alerts/bounce"
	"herald/store"
)

// sender hands rendered messages to their destination. Each worker
// has its own, so an SMTP sender's connection is never shared.
type sender interface {
	// send delivers raw, the complete message, from the envelope sender
	// to the recipient (both bare addresses).
	send(ctx context.Context, m *store.ClaimedMessage, from, rcpt string, raw []byte) error
	// idle is called when there is nothing to send for now.
	idle()
	close()
}

// dialError is a failure to reach or log in to the relay: no
// message was handed over.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connecting to the mail relay: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// smtpError is a failed step of an SMTP transaction: a reply (Code > 0)
// or no reply at all (a timeout, a hang-up).
type smtpError struct {
	// Stage is the command that failed: "MAIL FROM", "RCPT TO", "DATA" or
	// "end of DATA" (the reply to the message itself).
	Stage    string
	Code     int
	Enhanced string // like "5.1.1", when the server gave one
	// lost: the connection cannot carry another message.
	lost bool
	err  error
}

func (e *smtpError) Error() string { return e.Stage + ": " + e.err.Error() }
func (e *smtpError) Unwrap() error { return e.err }

var smtpEnhancedCode = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}\b`)

func newSMTPError(stage string, err error) *smtpError {
	e := &smtpError{Stage: stage, err: err}
	var te *textproto.Error
	if errors.As(err, &te) {
		e.Code = te.Code
		e.Enhanced = smtpEnhancedCode.FindString(te.Msg)
	}
	// No answer (a timeout, a hang-up), or 421, the server closing.
	e.lost = e.Code == 0 || e.Code == 421
	return e
}

// smtpSender keeps one connection to the relay, reused across messages,
// redialled after a failure that may have left it unusable, and closed
// when the worker goes idle. go-mail's Client dials it (TLS policy,
// AUTH); the transaction itself is spoken on go-mail's smtp.Client with
// the bytes Herald rendered, so that the size check, the DKIM signature
// and the .eml files all concern the very bytes that are sent.
type smtpSender struct {
	client *gomail.Client
	conn   *gosmtp.Client
	// raw is the last connection dialled, so that a failed handshake
	// (which go-mail leaves open) can be closed.
	raw     net.Conn
	sent    int
	timeout time.Duration
}

// newSMTPSenderFactory checks cfg and returns a constructor for per-worker
// senders. Each gets its own go-mail Client: a Client mutates its state
// while choosing an AUTH mechanism, so concurrent dials must not share one.
func newSMTPSenderFactory(cfg SMTPConfig) (func() sender, error) {
	if _, err := (&smtpSender{}).newClient(cfg); err != nil {
		return nil, err
	}
	return func() sender {
		s := &smtpSender{timeout: cfg.Timeout}
		s.client, _ = s.newClient(cfg)
		return s
	}, nil
}

// newClient builds the go-mail client. Dialling goes through a dialer of
// ours that does implicit TLS itself when asked, since a custom dialer
// bypasses go-mail's own; STARTTLS is go-mail's, required rather than
// opportunistic.
func (s *smtpSender) newClient(cfg SMTPConfig) (*gomail.Client, error) {
	tlsConf := cfg.TLSConfig
	if tlsConf == nil {
		tlsConf = &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	}
	opts := []gomail.Option{
		gomail.WithPort(cfg.Port),
		gomail.WithTimeout(cfg.Timeout),
		gomail.WithTLSConfig(tlsConf),
	}
	implicit := cfg.TLS == "tls"
	switch cfg.TLS {
	case "starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case "tls", "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	opts = append(opts, gomail.WithDialContextFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := &net.Dialer{}
		var c net.Conn
		var err error
		if implicit {
			c, err = (&tls.Dialer{NetDialer: d, Config: tlsConf}).DialContext(ctx, network, addr)
		} else {
			c, err = d.DialContext(ctx, network, addr)
		}
		s.raw = c
		return c, err
	}))
	if cfg.Username != "" {
		// PLAIN and LOGIN go only over TLS or to localhost; go-mail
		// refuses them otherwise.
		opts = append(opts, gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1,
			gomail.SMTPAuthCramMD5, gomail.SMTPAuthPlain, gomail.SMTPAuthLogin),
			gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	c, err := gomail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("delivery: smtp client: %w", err)
	}
	return c, nil
}

func (s *smtpSender) send(ctx context.Context, _ *store.ClaimedMessage, from, rcpt string, raw []byte) error {
	for try := 0; ; try++ {
		reused := s.conn != nil && s.sent > 0
		if s.conn == nil {
			s.raw = nil
			conn, err := s.client.DialToSMTPClientWithContext(ctx)
			if err != nil {
				if s.raw != nil {
					s.raw.Close()
				}
				return &dialError{err}
			}
			s.conn, s.sent = conn, 0
		}
		err := s.transact(from, rcpt, raw)
		if err == nil {
			s.sent++
			return nil
		}
		if err.lost {
			s.conn.Close()
			s.conn = nil
		}
		// A reused connection that fails before the message went out,
		// the way one the relay has quietly closed fails, is retried at
		// once on a fresh connection.
		if try == 0 && reused && err.Stage == "MAIL FROM" && err.lost {
			continue
		}
		return err
	}
}

// transact runs one mail transaction on the open connection.
func (s *smtpSender) transact(from, rcpt string, raw []byte) *smtpError {
	c := s.conn
	if err := c.UpdateDeadline(s.timeout); err != nil {
		return newSMTPError("MAIL FROM", err)
	}
	if err := c.Mail(from); err != nil {
		return s.abort(newSMTPError("MAIL FROM", err))
	}
	if err := c.Rcpt(rcpt); err != nil {
		return s.abort(newSMTPError("RCPT TO", err))
	}
	w, err := c.Data()
	if err != nil {
		return s.abort(newSMTPError("DATA", err))
	}
	if _, err := w.Write(raw); err != nil {
		return newSMTPError("DATA", err)
	}
	if err := w.Close(); err != nil {
		return newSMTPError("end of DATA", err)
	}
	return nil
}

// abort resets the transaction after a refusal, so the connection can
// carry the next message.
func (s *smtpSender) abort(e *smtpError) *smtpError {
	if !e.lost && s.conn.Reset() != nil {
		e.lost = true
	}
	return e
}

// idle says goodbye to the relay rather than keep a connection it would
// time out anyway.
func (s *smtpSender) idle() {
	if s.conn == nil {
		return
	}
	s.conn.UpdateDeadline(s.timeout)
	if err := s.client.CloseWithSMTPClient(s.conn); err != nil {
		s.conn.Close()
	}
	s.conn = nil
}

func (s *smtpSender) close() { s.idle() }

// verdict is what a send error means for the message.
type verdict struct {
	// permanent: fail the message now; otherwise retry it later.
	permanent bool
	// bounce: the failure is about the recipient's address.
	bounce bool
	// dial: the relay could not be reached at all.
	dial   bool
	reason string
}

// classify reads a send error: only a 5xx reply is permanent;
// 4xx replies, timeouts, hang-ups and unreachable relays are retried.
func classify(err error) verdict {
	var de *dialError
	if errors.As(err, &de) {
		return verdict{dial: true, reason: err.Error()}
	}
	var se *smtpError
	if !errors.As(err, &se) || se.Code < 500 || se.Code > 599 {
		return verdict{reason: err.Error()}
	}
	return verdict{permanent: true, bounce: smtpBlamesAddress(se), reason: err.Error()}
}

// smtpBlamesAddress reports whether a 5xx reply is about the recipient's
// mailbox (unknown user, mailbox disabled) rather than the message or the
// sender, which must not count against a subscriber: a relay that refuses
// to relay for Herald would otherwise get every subscriber suppressed.
// The enhanced status code (RFC 3463) decides when the server gives one;
// otherwise the classic "no such mailbox" replies to RCPT TO do.
func smtpBlamesAddress(se *smtpError) bool {
	if se.Enhanced != "" {
		return bounce.BlamesAddress(se.Enhanced)
	}
	if se.Stage != "RCPT TO" {
		return false
	}
	return se.Code == 550 || se.Code == 551 || se.Code == 553
}

// fileSender writes each message to Dir as an .eml file, named after its
// outbox row so a message sent twice overwrites itself.
type fileSender struct{ dir string }

func newFileSender(dir string) (*fileSender, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("delivery: mail dir: %w", err)
	}
	return &fileSender{dir: dir}, nil
}

func (f *fileSender) send(_ context.Context, m *store.ClaimedMessage, _, _ string, raw []byte) error {
	tmp, err := os.CreateTemp(f.dir, ".writing-*.eml")
	if err != nil {
		return fmt.Errorf("writing message file: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(raw); err != nil {
		return fmt.Errorf("writing message file: %w", err)
	}
	// The row is marked sent once this returns: the bytes must be on disk.
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing message file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing message file: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(f.dir, emlName(m))); err != nil {
		return fmt.Errorf("writing message file: %w", err)
	}
	done = true
	return nil
}

func (f *fileSender) idle()  {}
func (f *fileSender) close() {}

// emlName is a file name for a message: its creation time (so a directory
// listing reads in order), its idempotency key made safe, and a hash of the
// key so two keys that read the same once made safe stay apart.
func emlName(m *store.ClaimedMessage) string {
	var b strings.Builder
	for _, r := range m.Key {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 80 {
			break
		}
	}
	sum := sha256.Sum256([]byte(m.Key))
	return fmt.Sprintf("%s-%s-%s.eml", m.CreatedAt.UTC().Format("20060102T150405Z"), b.String(), hex.EncodeToString(sum[:4]))
}
