// Package smtptest runs a real SMTP server on loopback for tests and
// benchmarks. It records every message it accepts (envelope, bytes and
// Message-ID) and can be told, per recipient or for a share of them, to
// answer with a temporary or permanent error, to stall, or to hang up.
//
//	srv := smtptest.Start(t, smtptest.Options{})
//	srv.SetFault(smtptest.ForAddresses(smtptest.Permanent(), "gone@example.net"))
//	... deliver to srv.Host():srv.Port() ...
//	for _, m := range srv.Messages() { ... }
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"hash/fnv"
	"io"
	"log"
	"math/big"
	"net"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Action is what the server does with a recipient or a message.
type Action int

// Actions a Fault can take.
const (
	// Accept answers normally.
	Accept Action = iota
	// Reject answers with Fault.Code, a 4xx or 5xx reply.
	Reject
	// Stall says nothing for Fault.Wait (until the server closes, when
	// zero) and then hangs up, as a wedged server would.
	Stall
	// Drop hangs up at once without an answer.
	Drop
)

// Stage is the point in the SMTP transaction where a Fault strikes.
type Stage int

// Stages of a transaction.
const (
	// AtRcpt strikes in answer to RCPT TO; nothing is recorded.
	AtRcpt Stage = iota
	// AfterData strikes once the message has been received in full. A
	// Reject there records nothing; a Stall or Drop records the message,
	// since the server got it and only the client never hears so: the way
	// a message comes to be delivered twice.
	AfterData
)

// Fault tells the server how to misbehave for one recipient.
type Fault struct {
	Action Action
	Stage  Stage
	// Code and Enhanced are the reply for Reject, like 451 and "4.3.0".
	Code     int
	Enhanced string
	Text     string
	// Wait is how long a Stall lasts; zero stalls until the server closes.
	Wait time.Duration
}

// Temporary is a 451 reply to RCPT TO: try again later.
func Temporary() Fault {
	return Fault{Action: Reject, Code: 451, Enhanced: "4.3.0", Text: "Temporary local problem, try again later"}
}

// Permanent is a 550 reply to RCPT TO: no such mailbox.
func Permanent() Fault {
	return Fault{Action: Reject, Code: 550, Enhanced: "5.1.1", Text: "No such mailbox here"}
}

// Stalled stops answering at RCPT TO for d (until the server closes, when
// d is zero), then hangs up.
func Stalled(d time.Duration) Fault { return Fault{Action: Stall, Wait: d} }

// Dropped hangs up at RCPT TO.
func Dropped() Fault { return Fault{Action: Drop} }

// AfterData returns f striking after the message data instead of at RCPT TO.
func (f Fault) AfterData() Fault {
	f.Stage = AfterData
	return f
}

// FaultFunc chooses the fault for a recipient on its attempt-th RCPT TO
// (counted from 1 since the server started). The zero Fault accepts.
type FaultFunc func(rcpt string, attempt int) Fault

// ForAddresses applies f to the listed recipients, on every attempt.
func ForAddresses(f Fault, addrs ...string) FaultFunc {
	set := map[string]bool{}
	for _, a := range addrs {
		set[strings.ToLower(a)] = true
	}
	return func(rcpt string, _ int) Fault {
		if set[strings.ToLower(rcpt)] {
			return f
		}
		return Fault{}
	}
}

// ForRatio applies f to a share (0 to 1) of recipients chosen by a hash of
// the address, so the same recipients are chosen on every attempt and in
// every run. ForRatio(f, r) is ForShare(f, 0, r).
func ForRatio(f Fault, share float64) FaultFunc { return ForShare(f, 0, share) }

// ForShare applies f to the recipients whose address hashes into [from, to)
// of the unit interval. Disjoint intervals choose disjoint recipients, so
// several faults can each strike their own share.
func ForShare(f Fault, from, to float64) FaultFunc {
	return func(rcpt string, _ int) Fault {
		h := fnv.New32a()
		io.WriteString(h, strings.ToLower(rcpt))
		x := float64(h.Sum32()%100000) / 100000
		if x >= from && x < to {
			return f
		}
		return Fault{}
	}
}

// FirstAttempts limits ff to each recipient's first n attempts; later ones
// are accepted.
func FirstAttempts(ff FaultFunc, n int) FaultFunc {
	return func(rcpt string, attempt int) Fault {
		if attempt > n {
			return Fault{}
		}
		return ff(rcpt, attempt)
	}
}

// Combine returns the first fault that one of ffs chooses.
func Combine(ffs ...FaultFunc) FaultFunc {
	return func(rcpt string, attempt int) Fault {
		for _, ff := range ffs {
			if f := ff(rcpt, attempt); f.Action != Accept {
				return f
			}
		}
		return Fault{}
	}
}

// Options configure a Server.
type Options struct {
	// CountOnly keeps only the count of accepted messages, not their
	// envelopes or bytes, so a benchmark's memory does not grow with it.
	CountOnly bool
	// Username and Password, when set, make the server require AUTH PLAIN
	// with them before MAIL FROM.
	Username, Password string
	// TLS offers STARTTLS with a self-signed certificate for 127.0.0.1 and
	// localhost; ClientTLSConfig trusts it.
	TLS bool
	// ImplicitTLS speaks TLS from the first byte (port 465 style) instead.
	ImplicitTLS bool
	// MaxMessageBytes refuses larger messages with 552; zero is no limit.
	MaxMessageBytes int64
	// MessagesPerConnection, when set, makes the server hang up at the
	// MAIL FROM after that many messages on a connection, as a relay
	// that limits sessions or drops idle ones does.
	MessagesPerConnection int
}

// Message is one message the server accepted.
type Message struct {
	From string
	To   []string
	// Data is the message as received, headers and body.
	Data []byte
	// MessageID is the Message-ID header, angle brackets included.
	MessageID string
	Received  time.Time
}

// Server is a running SMTP server. Its methods are safe for concurrent use.
type Server struct {
	opts      Options
	srv       *smtp.Server
	ln        net.Listener
	closing   chan struct{}
	closeOnce sync.Once
	clientTLS *tls.Config

	mu       sync.Mutex
	msgs     []Message
	count    int
	attempts map[string]int
	fault    FaultFunc
	conns    int
}

// Start runs a server on 127.0.0.1 and a free port until the test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := listen(opts)
	if err != nil {
		tb.Fatalf("smtptest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

func listen(opts Options) (*Server, error) {
	s := &Server{opts: opts, closing: make(chan struct{}), attempts: map[string]int{}}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.MaxMessageBytes = opts.MaxMessageBytes
	srv.ReadTimeout = 2 * time.Minute
	srv.WriteTimeout = 2 * time.Minute
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if opts.TLS || opts.ImplicitTLS {
		serverTLS, clientTLS, err := selfSigned()
		if err != nil {
			return nil, err
		}
		srv.TLSConfig, s.clientTLS = serverTLS, clientTLS
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if opts.ImplicitTLS {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	s.srv, s.ln = srv, ln
	go srv.Serve(ln)
	return s, nil
}

// Close stops the server and hangs up on every client.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.srv.Close()
	})
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Host is the server's IP address.
func (s *Server) Host() string { return s.ln.Addr().(*net.TCPAddr).IP.String() }

// Port is the server's port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// ClientTLSConfig trusts the server's certificate; nil without TLS.
func (s *Server) ClientTLSConfig() *tls.Config {
	if s.clientTLS == nil {
		return nil
	}
	return s.clientTLS.Clone()
}

// SetFault makes the server misbehave as ff says from now on; nil makes
// it accept everything again.
func (s *Server) SetFault(ff FaultFunc) {
	s.mu.Lock()
	s.fault = ff
	s.mu.Unlock()
}

// Messages returns a copy of the list of accepted messages, in the order
// they arrived (empty with CountOnly).
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// Count is the number of messages accepted.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Attempts is how many times a client has given rcpt in RCPT TO
// (not counted with CountOnly and no fault set).
func (s *Server) Attempts(rcpt string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[strings.ToLower(rcpt)]
}

// Connections is how many connections clients have opened.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// MessageIDs maps each recipient to the Message-IDs it received and how
// many times each arrived.
func (s *Server) MessageIDs() map[string]map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]int{}
	for _, m := range s.msgs {
		for _, rcpt := range m.To {
			rcpt = strings.ToLower(rcpt)
			if out[rcpt] == nil {
				out[rcpt] = map[string]int{}
			}
			out[rcpt][m.MessageID]++
		}
	}
	return out
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	s.conns++
	s.mu.Unlock()
	return &session{s: s, conn: c}, nil
}

// faultFor counts an attempt for rcpt and picks its fault.
func (s *Server) faultFor(rcpt string) Fault {
	s.mu.Lock()
	ff := s.fault
	n := 0
	if ff != nil || !s.opts.CountOnly {
		key := strings.ToLower(rcpt)
		s.attempts[key]++
		n = s.attempts[key]
	}
	s.mu.Unlock()
	if ff == nil {
		return Fault{}
	}
	return ff(rcpt, n)
}

func (s *Server) record(from string, to []string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	if s.opts.CountOnly {
		return
	}
	m := Message{From: from, To: slices.Clone(to), Data: data, Received: time.Now()}
	if msg, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		m.MessageID = strings.TrimSpace(msg.Header.Get("Message-Id"))
	}
	s.msgs = append(s.msgs, m)
}

// wait blocks for d, or until the server closes when d is zero.
func (s *Server) wait(d time.Duration) {
	if d <= 0 {
		<-s.closing
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.closing:
	}
}

type session struct {
	s        *Server
	conn     *smtp.Conn
	authed   bool
	accepted int
	from     string
	to       []string
	pending  []Fault
}

var errHungUp = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Connection dropped"}

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.s.opts.Username == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != ss.s.opts.Username || password != ss.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.Username != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	if n := ss.s.opts.MessagesPerConnection; n > 0 && ss.accepted >= n {
		ss.conn.Conn().Close()
		return errHungUp
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	f := ss.s.faultFor(to)
	if f.Stage == AfterData && f.Action != Accept {
		ss.pending = append(ss.pending, f)
		ss.to = append(ss.to, to)
		return nil
	}
	if err := ss.strike(f); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

// strike carries out f and returns the error to answer with, if any.
func (ss *session) strike(f Fault) error {
	switch f.Action {
	case Reject:
		return replyError(f)
	case Stall:
		ss.s.wait(f.Wait)
		ss.conn.Conn().Close()
		return errHungUp
	case Drop:
		ss.conn.Conn().Close()
		return errHungUp
	}
	return nil
}

func replyError(f Fault) error {
	code := f.Code
	if code == 0 {
		code = 451
	}
	e := &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: f.Text}
	if ec, ok := parseEnhanced(f.Enhanced); ok {
		e.EnhancedCode = ec
	}
	if e.Message == "" {
		e.Message = "Refused on purpose"
	}
	return e
}

// parseEnhanced reads an enhanced status code like "5.1.1".
func parseEnhanced(s string) (smtp.EnhancedCode, bool) {
	var ec smtp.EnhancedCode
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return ec, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return ec, false
		}
		ec[i] = n
	}
	return ec, true
}

func (ss *session) Data(r io.Reader) error {
	var data []byte
	if ss.s.opts.CountOnly {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
	} else {
		var err error
		if data, err = io.ReadAll(r); err != nil {
			return err
		}
	}
	if len(ss.pending) > 0 {
		f := ss.pending[0]
		if f.Action == Reject {
			return replyError(f)
		}
		ss.s.record(ss.from, ss.to, data)
		ss.accepted++
		return ss.strike(f)
	}
	ss.s.record(ss.from, ss.to, data)
	ss.accepted++
	return nil
}

func (ss *session) Reset() {
	ss.from, ss.to, ss.pending = "", nil, nil
}

func (ss *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and localhost, a server
// config presenting it and a client config trusting it.
func selfSigned() (server, client *tls.Config, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "smtptest"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	return server, client, nil
}
