package delivery

import (
	"crypto/tls"
	"fmt"
	"net/mail"
	"strings"
	"time"
)

// Config configures delivery: who the mail is from, how it leaves
// (an SMTP relay, or .eml files in a directory), and how hard Herald tries.
type Config struct {
	// From is the sender, like "Herald <alerts@news.example.org>". Its
	// domain is also the right-hand side of every Message-ID.
	From string
	// ReturnPath, when set, gives the envelope sender (Return-Path) of
	// outbox message id, like "bounces+TOKEN@bounces.example.org", so that
	// a bounce names the message it is about; nil sends from From's
	// address. It must give the same answer for every attempt of a
	// message.
	ReturnPath func(id int64) string
	// ReplyTo, when set, is where replies go.
	ReplyTo string
	// ListID identifies the mailing list (RFC 2919), like
	// "Herald alerts <alerts.news.example.org>" or just the label; the
	// default is "<alerts.DOMAIN>" with the domain of From.
	ListID string
	// Transport is "smtp" or "file".
	Transport string
	// Dir is where the file transport writes messages.
	Dir  string
	SMTP SMTPConfig
	// Concurrency is the number of workers, each with its own SMTP
	// connection (default 4).
	Concurrency int
	// Rate caps messages per second over all workers; zero is no cap.
	Rate float64
	// RetryMaxAge is how long a message is retried after temporary
	// failures before it fails for good (default 48h).
	RetryMaxAge time.Duration
	// SuppressAfter is how many permanent failures in a row suppress an
	// address (default 3).
	SuppressAfter int
	DKIM          DKIMConfig
	// Inline are images a message may show inline, such as the
	// organisation's logo: a message whose HTML names "cid:" and an
	// image's ContentID carries that image.
	Inline []InlineImage

	// BatchSize is how many messages a worker claims at once (default 16).
	BatchSize int
	// Lease is how long a claim holds its messages before another worker
	// may take them over (default 2 minutes or five SMTP timeouts, if
	// longer; renewed while sending). After a crash, the messages in
	// flight wait this long before they are sent again.
	Lease time.Duration
	// PollInterval is how often idle workers look for due messages that
	// nobody kicked them about, such as retries (default 5 seconds).
	PollInterval time.Duration
	// Now is the clock that retry times, claim renewals, body purges and
	// the oldest-due gauge are measured by (default time.Now). Pass the
	// store's clock: the store stamps claims and due times with it, and
	// the two must agree, in tests that move it too.
	Now func() time.Time
}

// InlineImage is an image that travels inside the messages that show it.
type InlineImage struct {
	// ContentID names it in the HTML ("cid:" + ContentID), like
	// "logo@herald".
	ContentID string
	// Name is its file name, like "logo.png"; Type its media type.
	Name string
	Type string
	Data []byte
}

// SMTPConfig is the relay Herald hands messages to.
type SMTPConfig struct {
	Host     string
	Port     int
	Username string
	Password string
	// TLS is "starttls" (required, not opportunistic), "tls" (implicit
	// TLS, usually port 465) or "none".
	TLS string
	// Timeout bounds connecting and each message's exchange (default 30s).
	Timeout time.Duration
	// TLSConfig overrides the TLS settings, for a relay with a private CA;
	// nil verifies the relay's certificate for Host against the system roots.
	TLSConfig *tls.Config
}

// DKIMConfig turns on DKIM signing when Domain, Selector and a key are set.
type DKIMConfig struct {
	Domain   string
	Selector string
	// PrivateKeyPEM is an RSA (PKCS #1 or #8) or Ed25519 (PKCS #8) key.
	PrivateKeyPEM []byte
}

func (c Config) withDefaults() Config {
	if c.Transport == "" {
		c.Transport = "file"
	}
	if c.Concurrency < 1 {
		c.Concurrency = 4
	}
	if c.RetryMaxAge <= 0 {
		c.RetryMaxAge = 48 * time.Hour
	}
	if c.SuppressAfter < 1 {
		c.SuppressAfter = 3
	}
	if c.SMTP.Timeout <= 0 {
		c.SMTP.Timeout = 30 * time.Second
	}
	if c.SMTP.TLS == "" {
		c.SMTP.TLS = "starttls"
	}
	if c.BatchSize < 1 {
		c.BatchSize = 16
	}
	if c.Lease <= 0 {
		c.Lease = max(2*time.Minute, 5*c.SMTP.Timeout)
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// check reports every problem with the config at once.
func (c Config) check() error {
	var p []string
	if _, err := mail.ParseAddress(c.From); err != nil {
		p = append(p, fmt.Sprintf("from %q is not an address: %v", c.From, err))
	}
	if c.ReplyTo != "" {
		if _, err := mail.ParseAddress(c.ReplyTo); err != nil {
			p = append(p, fmt.Sprintf("reply_to %q is not an address: %v", c.ReplyTo, err))
		}
	}
	switch c.Transport {
	case "file":
		if c.Dir == "" {
			p = append(p, "dir is empty but transport is file")
		}
	case "smtp":
		if c.SMTP.Host == "" {
			p = append(p, "smtp host is empty")
		}
		if c.SMTP.Port < 1 || c.SMTP.Port > 65535 {
			p = append(p, fmt.Sprintf("smtp port %d is not a port", c.SMTP.Port))
		}
		switch c.SMTP.TLS {
		case "starttls", "tls", "none":
		default:
			p = append(p, fmt.Sprintf("smtp tls %q must be starttls, tls or none", c.SMTP.TLS))
		}
	default:
		p = append(p, fmt.Sprintf("transport %q must be smtp or file", c.Transport))
	}
	if c.Rate < 0 {
		p = append(p, "rate must not be negative")
	}
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("delivery: mail config: %s", strings.Join(p, "; "))
}
