package bounce

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"golang.org/x/time/rate"
)

// ReceiverConfig tunes the SMTP receiver.
type ReceiverConfig struct {
	// Hostname is the name the receiver greets with (default the bounce
	// domain).
	Hostname string
	// PerClient caps messages per minute from one client address
	// (default 60, with bursts of as many).
	PerClient int
	// Timeout bounds each read and write of a session (default 1 minute).
	Timeout time.Duration
}

// Receiver is a small SMTP server for bounce addresses: a relay (or the
// internet, behind a firewall that lets only the relay through) delivers
// reports to it, and it hands each to the Processor. It takes mail only
// for bounces+TOKEN@Domain, refusing other recipients at RCPT TO, refuses
// messages over MaxMessageBytes (552) and clients that send too fast
// (450). A report that changes nothing is still accepted, so the sender
// does not bounce the bounce; only a failure to record one is a
// temporary refusal (451), for the sender to try again.
type Receiver struct {
	p      *Processor
	srv    *smtp.Server
	log    *slog.Logger
	limits *clientLimits
}

// NewReceiver returns an SMTP receiver feeding p.
func (p *Processor) NewReceiver(cfg ReceiverConfig) *Receiver {
	if cfg.PerClient < 1 {
		cfg.PerClient = 60
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	if cfg.Hostname == "" {
		cfg.Hostname = p.cfg.Domain
	}
	r := &Receiver{p: p, log: p.log, limits: &clientLimits{
		every: time.Minute / time.Duration(cfg.PerClient), burst: cfg.PerClient, clients: map[string]*clientLimit{},
	}}
	r.srv = smtp.NewServer(smtp.BackendFunc(r.newSession))
	r.srv.Domain = cfg.Hostname
	r.srv.MaxMessageBytes = p.cfg.MaxMessageBytes
	r.srv.MaxRecipients = 10
	r.srv.ReadTimeout = cfg.Timeout
	r.srv.WriteTimeout = cfg.Timeout
	r.srv.ErrorLog = slog.NewLogLogger(p.log.Handler(), slog.LevelWarn)
	return r
}

// Serve accepts sessions on ln until Close.
func (r *Receiver) Serve(ln net.Listener) error {
	err := r.srv.Serve(ln)
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops accepting and ends every session.
func (r *Receiver) Close() error { return r.srv.Close() }

// Shutdown stops accepting and waits for sessions to end, until ctx does.
func (r *Receiver) Shutdown(ctx context.Context) error { return r.srv.Shutdown(ctx) }

func (r *Receiver) newSession(c *smtp.Conn) (smtp.Session, error) {
	client := "unknown"
	if host, _, err := net.SplitHostPort(c.Conn().RemoteAddr().String()); err == nil {
		client = host
	}
	return &session{r: r, client: client}, nil
}

// session is one SMTP session's transaction.
type session struct {
	r      *Receiver
	client string
	rcpts  []string
}

var (
	errRateLimited = &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "Too many messages; try again later"}
	errNotBounce   = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such mailbox: only bounce addresses here"}
	errTryLater    = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Cannot record the report now; try again later"}
)

func (s *session) Reset()        { s.rcpts = nil }
func (s *session) Logout() error { return nil }

func (s *session) Mail(string, *smtp.MailOptions) error {
	if !s.r.limits.allow(s.client, time.Now()) {
		s.r.p.reject(SourceSMTP, IgnoredRateLimited, 0)
		return errRateLimited
	}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if _, ok := TokenOf(to); !ok {
		return errNotBounce
	}
	at := strings.LastIndexByte(to, '@')
	if d := s.r.p.cfg.Domain; d != "" && !strings.EqualFold(to[at+1:], d) {
		return errNotBounce
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *session) Data(body io.Reader) error {
	b, err := io.ReadAll(body)
	if err != nil {
		if errors.Is(err, smtp.ErrDataTooLarge) {
			s.r.p.reject(SourceSMTP, IgnoredTooLarge, 0)
		}
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, rcpt := range s.rcpts {
		if _, err := s.r.p.processMessage(ctx, bytes.NewReader(b), rcpt, SourceSMTP); err != nil {
			s.r.log.Error("bounce: recording a report failed; the sender is asked to try again", slog.Any("error", err))
			return errTryLater
		}
	}
	return nil
}

// clientLimits are the receiver's per-client rate limits.
type clientLimits struct {
	every   time.Duration
	burst   int
	mu      sync.Mutex
	clients map[string]*clientLimit
}

type clientLimit struct {
	lim  *rate.Limiter
	seen time.Time
}

// maxClients bounds the clients remembered; past it, those not seen for
// a while are forgotten.
const maxClients = 4096

func (l *clientLimits) allow(client string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[client]
	if c == nil {
		if len(l.clients) >= maxClients {
			for k, v := range l.clients {
				if now.Sub(v.seen) > 10*time.Minute {
					delete(l.clients, k)
				}
			}
		}
		c = &clientLimit{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.clients[client] = c
	}
	c.seen = now
	return c.lim.AllowN(now, 1)
}
