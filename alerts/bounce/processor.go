package bounce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"herald/alerts/address"
	"herald/store"
)

// Store is what bounce processing needs from the store.
type Store interface {
	SentMessage(ctx context.Context, id int64) (store.SentMessage, error)
	SentMessageByMessageID(ctx context.Context, messageID string) (store.SentMessage, error)
	InTx(ctx context.Context, fn func(*store.Tx) error) error
	PurgeBounceRecords(ctx context.Context, transientBefore, reportsBefore time.Time) (int, error)
}

// Config configures bounce processing.
type Config struct {
	// VerifyToken returns the outbox message a return-path token names,
	// or an error for a token Herald did not sign (alerts.Keys's
	// VerifyReturnPath).
	VerifyToken func(token string) (int64, error)
	// Domain is the domain of the bounce addresses (bounces+TOKEN@Domain);
	// the SMTP receiver refuses other recipients.
	Domain string
	// TransientLimit temporary failures within TransientWindow suppress
	// an address (default 3 in 14 days).
	TransientLimit  int
	TransientWindow time.Duration
	// MaxMessageBytes is the largest report email read (default 10 MB);
	// a larger one changes nothing.
	MaxMessageBytes int64
}

func (c Config) withDefaults() Config {
	if c.TransientLimit < 1 {
		c.TransientLimit = 3
	}
	if c.TransientWindow <= 0 {
		c.TransientWindow = 14 * 24 * time.Hour
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 10 << 20
	}
	return c
}

// Reasons a report changed nothing (Outcome.Ignored), also the label of
// the rejected-reports metric.
const (
	IgnoredNoToken           = "no_token"
	IgnoredForgedToken       = "forged_token"
	IgnoredUnknownMessage    = "unknown_message"
	IgnoredRecipientMismatch = "recipient_mismatch"
	IgnoredUntied            = "untied"
	IgnoredUnknownKind       = "unknown_kind"
	IgnoredReplay            = "already_processed"
	IgnoredAutoReply         = "auto_reply"
	IgnoredNotABounce        = "not_a_bounce"
	IgnoredMalformed         = "malformed"
	IgnoredTooLarge          = "too_large"
	IgnoredRateLimited       = "rate_limited"
)

func ignoredReasons() []string {
	return []string{IgnoredNoToken, IgnoredForgedToken, IgnoredUnknownMessage, IgnoredRecipientMismatch, IgnoredUntied,
		IgnoredUnknownKind, IgnoredReplay, IgnoredAutoReply, IgnoredNotABounce, IgnoredMalformed, IgnoredTooLarge, IgnoredRateLimited}
}

// Processor applies bounce and complaint reports: it ties each to the
// outbox message it is about and records what the policy says (see
// Process). It is safe for concurrent use.
type Processor struct {
	db      Store
	cfg     Config
	log     *slog.Logger
	metrics *metrics
}

// reportKeysKept is how long the keys of processed reports are kept to
// recognise a replay: far longer than any provider retries a webhook or a
// relay holds a delivery report.
const reportKeysKept = 90 * 24 * time.Hour

// Housekeep deletes the temporary failures that no longer count and the
// report keys older than reportKeysKept; it returns how many rows went.
func (p *Processor) Housekeep(ctx context.Context, now time.Time) (int, error) {
	return p.db.PurgeBounceRecords(ctx, now.Add(-p.cfg.TransientWindow), now.Add(-reportKeysKept))
}

// NewProcessor returns a Processor over db. reg may be nil.
func NewProcessor(db Store, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Processor, error) {
	if db == nil || cfg.VerifyToken == nil {
		return nil, errors.New("bounce: a processor needs a store and a token verifier")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Processor{db: db, cfg: cfg.withDefaults(), log: log, metrics: m}, nil
}

// Process applies one report, whichever input read it; the provider
// webhooks call it with what they parsed and authenticated.
//
// The report is first tied to the outbox message it is about: by
// r.Token, the signed token of the bounce address it came to, or, when
// there is no token, by r.MessageID (the Message-ID Herald gave the
// message, without angle brackets) together with r.Recipient. A forged
// or unknown token, no such message, or a recipient other than the
// message's, changes nothing. Neither is a replay: a report whose
// r.EventID (per r.Source) or whose message and kind were processed
// before changes nothing.
//
// Then the policy: a Permanent report suppresses the message's
// recipient at once; a Transient one counts, and TransientLimit of them
// for different messages within TransientWindow suppress it; a Complaint
// ends every subscription of the address and suppresses it for good (a
// fresh opt-in does not lift it). The subscriber may have left meanwhile:
// the address is suppressed all the same.
//
// Process returns an error only when the report could not be recorded
// (the database is down, say), so that the input can ask to have it sent
// again later; a report that changed nothing is an Outcome with Ignored
// set. Each report is logged once, with the outbox id and never the
// address.
func (p *Processor) Process(ctx context.Context, r Report) (Outcome, error) {
	out, err := p.process(ctx, r)
	if err != nil {
		return out, err
	}
	p.observe(r, out)
	return out, nil
}

func (p *Processor) process(ctx context.Context, r Report) (Outcome, error) {
	switch r.Kind {
	case Permanent, Transient, Complaint:
	default:
		return Outcome{Ignored: IgnoredUnknownKind}, nil
	}
	m, ignored, err := p.tie(ctx, r)
	if err != nil || ignored != "" {
		return Outcome{Ignored: ignored, OutboxID: m.ID}, err
	}
	keys := []string{"message:" + strconv.FormatInt(m.ID, 10) + ":" + string(r.Kind)}
	if r.EventID != "" {
		keys = append(keys, "event:"+r.Source+":"+r.EventID)
	}
	var out Outcome
	err = p.db.InTx(ctx, func(tx *store.Tx) error {
		out = Outcome{OutboxID: m.ID}
		fresh, err := tx.MarkReportProcessed(keys, m.ID, string(r.Kind), r.Source)
		if err != nil {
			return err
		}
		if !fresh {
			out.Ignored = IgnoredReplay
			return nil
		}
		out.Applied = true
		s := store.Suppression{Address: m.To, Cause: store.CauseBounce, Reason: reason(r), Source: r.Source,
			OutboxID: m.ID, Report: string(r.Raw)}
		switch r.Kind {
		case Transient:
			n, err := tx.AddTransientBounce(m.To, m.ID, tx.Now().Add(-p.cfg.TransientWindow))
			if err != nil || n < p.cfg.TransientLimit {
				return err
			}
			s.Reason = fmt.Sprintf("%d temporary failures within %s; the last: %s", n, p.cfg.TransientWindow, s.Reason)
		case Complaint:
			s.Cause = store.CauseComplaint
			if out.Ended, err = tx.EndSubscriptionsOf(m.To); err != nil {
				return err
			}
		}
		out.Suppressed, err = tx.SuppressAddress(s)
		return err
	})
	if err != nil {
		return Outcome{OutboxID: m.ID}, fmt.Errorf("bounce: recording a report on message %d: %w", m.ID, err)
	}
	return out, nil
}

// tie finds the outbox message r is about, or says why there is none.
func (p *Processor) tie(ctx context.Context, r Report) (store.SentMessage, string, error) {
	var m store.SentMessage
	var err error
	switch {
	case r.Token != "":
		id, verr := p.cfg.VerifyToken(r.Token)
		if verr != nil {
			return m, IgnoredForgedToken, nil
		}
		m, err = p.db.SentMessage(ctx, id)
		if r.Recipient == "" {
			// A report by email may not say whom it is about (a text
			// bounce, a redacted complaint): the signed token does.
			r.Recipient = m.To
		}
	case r.MessageID != "" && r.Recipient != "":
		m, err = p.db.SentMessageByMessageID(ctx, strings.Trim(r.MessageID, "<> "))
	default:
		return m, IgnoredUntied, nil
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.SentMessage{}, IgnoredUnknownMessage, nil
	}
	if err != nil {
		return store.SentMessage{}, "", fmt.Errorf("bounce: finding the message a report is about: %w", err)
	}
	if !sameAddress(r.Recipient, m.To) {
		return m, IgnoredRecipientMismatch, nil
	}
	return m, "", nil
}

// sameAddress compares a reported recipient with the one Herald sent to,
// in the canonical form both are stored in.
func sameAddress(reported, sent string) bool {
	a, err := address.Parse(reported)
	return err == nil && a == strings.ToLower(sent)
}

// reason is the detail a suppression keeps: status and diagnostic.
func reason(r Report) string {
	s := strings.TrimSpace(r.Status + " " + r.Diagnostic)
	if s == "" {
		s = string(r.Kind)
	}
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}

// observe counts and logs a processed report.
func (p *Processor) observe(r Report, out Outcome) {
	source := r.Source
	if source == "" {
		source = "unknown"
	}
	if !out.Applied {
		p.reject(source, out.Ignored, out.OutboxID)
		return
	}
	p.metrics.reports.WithLabelValues(string(r.Kind), source).Inc()
	if r.Kind == Complaint {
		p.metrics.complaints.WithLabelValues(source).Inc()
	}
	if out.Suppressed {
		p.metrics.suppressed.WithLabelValues(string(r.Kind)).Inc()
	}
	p.log.Info("bounce: report applied", slog.Int64("outbox_id", out.OutboxID), slog.String("kind", string(r.Kind)),
		slog.String("source", source), slog.String("status", r.Status), slog.Bool("suppressed", out.Suppressed),
		slog.Int("subscriptions_ended", out.Ended))
}

// reject counts and logs a report that changed nothing.
func (p *Processor) reject(source, why string, outboxID int64) {
	p.metrics.rejected.WithLabelValues(why).Inc()
	attrs := []any{slog.String("reason", why), slog.String("source", source)}
	if outboxID != 0 {
		attrs = append(attrs, slog.Int64("outbox_id", outboxID))
	}
	p.log.Info("bounce: report rejected", attrs...)
}

// SourcePipe and SourceSMTP name the email inputs in reports and metrics.
const (
	SourcePipe = "pipe"
	SourceSMTP = "smtp"
)

// ProcessMessage applies an email that arrived at the bounce address
// rcpt (bounces+TOKEN@domain), read from raw: a delivery status
// notification (RFC 3464; a report per failed or delayed recipient), a
// complaint (RFC 5965, feedback type abuse), or a bounce without a status
// part when its text plainly says the mailbox does not exist.
// Auto-replies, other mail, malformed MIME and messages over
// MaxMessageBytes change nothing. Each report goes through Process with
// the token of rcpt; the source is SourcePipe. Like Process, it returns
// an error only for a failure worth trying again later.
func (p *Processor) ProcessMessage(ctx context.Context, raw io.Reader, rcpt string) (Outcome, error) {
	return p.processMessage(ctx, raw, rcpt, SourcePipe)
}

func (p *Processor) processMessage(ctx context.Context, raw io.Reader, rcpt, source string) (Outcome, error) {
	b, err := io.ReadAll(io.LimitReader(raw, p.cfg.MaxMessageBytes+1))
	if err != nil {
		return Outcome{}, fmt.Errorf("bounce: reading a message: %w", err)
	}
	ignore := func(why string) (Outcome, error) {
		p.reject(source, why, 0)
		return Outcome{Ignored: why}, nil
	}
	if int64(len(b)) > p.cfg.MaxMessageBytes {
		return ignore(IgnoredTooLarge)
	}
	token, ok := TokenOf(rcpt)
	if !ok {
		return ignore(IgnoredNoToken)
	}
	msg, err := parseMessage(b)
	switch {
	case err != nil:
		return ignore(IgnoredMalformed)
	case msg.autoReply:
		return ignore(IgnoredAutoReply)
	case len(msg.findings) == 0:
		return ignore(IgnoredNotABounce)
	}
	raw16 := b[:min(len(b), 64<<10)]
	var out Outcome
	for i, f := range msg.findings {
		o, err := p.Process(ctx, Report{Source: source, Token: token, Recipient: f.recipient, Kind: f.kind,
			Status: f.status, Diagnostic: f.diagnostic, Raw: raw16})
		if err != nil {
			return o, err
		}
		if i == 0 || (o.Applied && !out.Applied) {
			out = o
		}
	}
	return out, nil
}

// bounceLocal is the local part of bounce addresses, before "+TOKEN".
const bounceLocal = "bounces"

// Address returns the bounce address with token at domain.
func Address(token, domain string) string {
	return bounceLocal + "+" + token + "@" + domain
}

// TokenOf returns the token of a bounce address (bounces+TOKEN@domain,
// angle brackets allowed), or false for any other address.
func TokenOf(rcpt string) (string, bool) {
	rcpt = strings.Trim(strings.TrimSpace(rcpt), "<>")
	at := strings.LastIndexByte(rcpt, '@')
	if at < 0 {
		return "", false
	}
	local := rcpt[:at]
	prefix, token, ok := strings.Cut(local, "+")
	if !ok || !strings.EqualFold(prefix, bounceLocal) || token == "" || len(token) > 100 ||
		bytes.ContainsFunc([]byte(token), func(r rune) bool { return !isTokenChar(r) }) {
		return "", false
	}
	return token, true
}

func isTokenChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

// metrics are bounce processing's Prometheus metrics.
type metrics struct {
	reports    *prometheus.CounterVec
	complaints *prometheus.CounterVec
	suppressed *prometheus.CounterVec
	rejected   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_bounce_reports_total",
			Help: "Bounce and complaint reports applied, by kind (permanent, transient, complaint) and source (pipe, smtp, ses, postmark, sendgrid, mailgun).",
		}, []string{"kind", "source"}),
		complaints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_bounce_complaints_total",
			Help: "Spam complaints applied, by source.",
		}, []string{"source"}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_bounce_suppressions_total",
			Help: "Addresses suppressed by a report, by the report's kind.",
		}, []string{"kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_bounce_rejected_total",
			Help: "Reports that changed nothing, by reason (forged_token, unknown_message, already_processed, auto_reply, malformed...).",
		}, []string{"reason"}),
	}
	for _, r := range ignoredReasons() {
		m.rejected.WithLabelValues(r)
	}
	for _, k := range []Kind{Permanent, Transient, Complaint} {
		m.suppressed.WithLabelValues(string(k))
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.reports, m.complaints, m.suppressed, m.rejected} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("bounce: metrics: %w", err)
		}
	}
	return m, nil
}
