package providers

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"herald/alerts/bounce"
)

// SESConfig configures Amazon SES notifications delivered by SNS.
type SESConfig struct {
	// TopicARNs are the SNS topics Herald accepts messages from; a
	// message from any other topic is refused. At least one.
	TopicARNs []string
	// Window is how far a message's signed Timestamp may be from now;
	// default DefaultWindow.
	Window time.Duration
	// Client fetches signing certificates and confirms subscriptions;
	// default a client with a 10 s timeout.
	Client *http.Client
	// AllowHost decides which hosts certificates and subscription
	// confirmations may be fetched from; default SNSHost.
	AllowHost func(host string) bool
	// Now is the clock of the window; default time.Now.
	Now func() time.Time
}

// snsHost is what Amazon SNS's own hosts look like, in every partition
// that has one (amazonaws.com, and amazonaws.com.cn in China).
var snsHost = regexp.MustCompile(`^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`)

// SNSHost reports whether host is an Amazon SNS endpoint
// (sns.<region>.amazonaws.com): the only hosts a signing certificate or a
// subscription confirmation is fetched from.
func SNSHost(host string) bool { return snsHost.MatchString(host) }

// topicARN is what an SNS topic's ARN looks like.
var topicARN = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$`)

// maxCert bounds a signing certificate's download, and maxCerts the
// certificates kept (SNS rotates them rarely).
const (
	maxCert  = 64 << 10
	maxCerts = 16
)

// SES reads Amazon SES bounce and complaint notifications delivered by SNS,
// after checking the SNS signature (versions 1 and 2) with the certificate
// SNS names, fetched over HTTPS from an SNS host and kept.
type SES struct {
	topics    []string
	window    window
	client    *http.Client
	allowHost func(string) bool

	mu    sync.Mutex
	certs map[string]*x509.Certificate
}

// NewSES checks cfg and returns the provider.
func NewSES(cfg SESConfig) (*SES, error) {
	if len(cfg.TopicARNs) == 0 {
		return nil, errors.New("ses: no topic ARN to accept messages from")
	}
	for _, arn := range cfg.TopicARNs {
		if !topicARN.MatchString(arn) {
			return nil, fmt.Errorf("ses: %q is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)", arn)
		}
	}
	p := &SES{
		topics: slices.Clone(cfg.TopicARNs), window: newWindow(cfg.Window, cfg.Now),
		client: cfg.Client, allowHost: cfg.AllowHost, certs: map[string]*x509.Certificate{},
	}
	if p.client == nil {
		p.client = &http.Client{Timeout: 10 * time.Second}
	}
	if p.allowHost == nil {
		p.allowHost = SNSHost
	}
	return p, nil
}

// Name is "ses".
func (p *SES) Name() string { return "ses" }

// snsMessage is the JSON document SNS posts.
type snsMessage struct {
	Type             string
	MessageID        string `json:"MessageId"`
	Token            string
	TopicArn         string
	Subject          *string
	Message          string
	SubscribeURL     string
	Timestamp        string
	SignatureVersion string
	Signature        string
	SigningCertURL   string
}

// stringToSign is the text SNS signs: the message's fields, named and
// each followed by a newline, in the order (alphabetical) and selection
// its type has.
func (m *snsMessage) stringToSign() (string, error) {
	var fields [][2]string
	switch m.Type {
	case "Notification":
		fields = append(fields, [2]string{"Message", m.Message}, [2]string{"MessageId", m.MessageID})
		if m.Subject != nil {
			fields = append(fields, [2]string{"Subject", *m.Subject})
		}
		fields = append(fields, [2]string{"Timestamp", m.Timestamp}, [2]string{"TopicArn", m.TopicArn}, [2]string{"Type", m.Type})
	case "SubscriptionConfirmation", "UnsubscribeConfirmation":
		fields = [][2]string{{"Message", m.Message}, {"MessageId", m.MessageID}, {"SubscribeURL", m.SubscribeURL},
			{"Timestamp", m.Timestamp}, {"Token", m.Token}, {"TopicArn", m.TopicArn}, {"Type", m.Type}}
	default:
		return "", malformed("unknown SNS message type %q", m.Type)
	}
	var b strings.Builder
	for _, f := range fields {
		b.WriteString(f[0])
		b.WriteByte('\n')
		b.WriteString(f[1])
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// Parse authenticates an SNS message and reads it: a subscription
// confirmation is confirmed (only for a configured topic), a notification
// is read as an SES Bounce or Complaint.
func (p *SES) Parse(ctx context.Context, _ http.Header, body []byte) (Result, error) {
	var m snsMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return Result{}, malformed("SNS message: %v", err)
	}
	if m.Type == "" || m.MessageID == "" || m.TopicArn == "" || m.Timestamp == "" || m.Signature == "" || m.SigningCertURL == "" {
		return Result{}, malformed("SNS message lacks Type, MessageId, TopicArn, Timestamp, Signature or SigningCertURL")
	}
	if !slices.Contains(p.topics, m.TopicArn) {
		return Result{}, unauthenticated("SNS topic %q is not configured", m.TopicArn)
	}
	at, err := time.Parse(time.RFC3339, m.Timestamp)
	if err != nil {
		return Result{}, malformed("SNS Timestamp %q", m.Timestamp)
	}
	if err := p.window.check(at); err != nil {
		return Result{}, err
	}
	if err := p.verify(ctx, &m); err != nil {
		return Result{}, err
	}
	switch m.Type {
	case "SubscriptionConfirmation":
		if err := p.confirm(ctx, m.SubscribeURL); err != nil {
			return Result{}, err
		}
		return Result{Note: "confirmed the SNS subscription to " + m.TopicArn}, nil
	case "UnsubscribeConfirmation":
		return Result{Note: "SNS says the subscription to " + m.TopicArn + " ended"}, nil
	}
	return readSES(m.MessageID, []byte(m.Message), at)
}

// verify checks the message's signature with the certificate it names.
func (p *SES) verify(ctx context.Context, m *snsMessage) error {
	var hash crypto.Hash
	switch m.SignatureVersion {
	case "1":
		hash = crypto.SHA1
	case "2":
		hash = crypto.SHA256
	default:
		return unauthenticated("SNS SignatureVersion %q is not 1 or 2", m.SignatureVersion)
	}
	text, err := m.stringToSign()
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return unauthenticated("SNS Signature is not base64")
	}
	cert, err := p.certificate(ctx, m.SigningCertURL)
	if err != nil {
		return err
	}
	key, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return unauthenticated("SNS signing certificate has no RSA key")
	}
	var digest []byte
	if hash == crypto.SHA1 {
		d := sha1.Sum([]byte(text))
		digest = d[:]
	} else {
		d := sha256.Sum256([]byte(text))
		digest = d[:]
	}
	if err := rsa.VerifyPKCS1v15(key, hash, digest, sig); err != nil {
		return unauthenticated("SNS signature does not match")
	}
	return nil
}

// snsURL checks that raw is an https URL on an allowed host.
func (p *SES) snsURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.User != nil || !p.allowHost(u.Hostname()) {
		return nil, unauthenticated("SNS %s %q is not an https URL on an SNS host", what, raw)
	}
	return u, nil
}

// certificate returns the signing certificate at raw, fetched once.
func (p *SES) certificate(ctx context.Context, raw string) (*x509.Certificate, error) {
	u, err := p.snsURL("SigningCertURL", raw)
	if err != nil {
		return nil, err
	}
	now := p.window.now()
	p.mu.Lock()
	cert := p.certs[u.String()]
	p.mu.Unlock()
	if cert != nil && now.Before(cert.NotAfter) {
		return cert, nil
	}
	body, err := p.get(ctx, u)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(body)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, unauthenticated("SNS signing certificate at %s is not a PEM certificate", u.Redacted())
	}
	cert, err = x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, unauthenticated("SNS signing certificate at %s: %v", u.Redacted(), err)
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, unauthenticated("SNS signing certificate at %s is not valid now", u.Redacted())
	}
	p.mu.Lock()
	if len(p.certs) >= maxCerts {
		clear(p.certs)
	}
	p.certs[u.String()] = cert
	p.mu.Unlock()
	return cert, nil
}

// get fetches u. A network failure is ErrUnavailable (SNS will retry);
// an answer other than 200 means the URL names nothing SNS signed with.
func (p *SES) get(ctx context.Context, u *url.URL) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, unauthenticated("SNS URL %s: %v", u.Redacted(), err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: fetch %s: %v", ErrUnavailable, u.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCert))
	if err != nil {
		return nil, fmt.Errorf("%w: fetch %s: %v", ErrUnavailable, u.Redacted(), err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, unauthenticated("fetch %s: status %d", u.Redacted(), resp.StatusCode)
	}
	return body, nil
}

// confirm visits a subscription's SubscribeURL, which is how SNS starts
// sending to Herald.
func (p *SES) confirm(ctx context.Context, raw string) error {
	u, err := p.snsURL("SubscribeURL", raw)
	if err != nil {
		return err
	}
	if _, err := p.get(ctx, u); err != nil {
		if errors.Is(err, ErrUnauthenticated) {
			return fmt.Errorf("%w: confirm the SNS subscription: %v", ErrUnavailable, err)
		}
		return err
	}
	return nil
}

// sesNotification is the part of an SES notification Herald reads. Event
// publishing names the type eventType rather than notificationType.
type sesNotification struct {
	NotificationType string `json:"notificationType"`
	EventType        string `json:"eventType"`
	Mail             struct {
		Headers []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"headers"`
		CommonHeaders struct {
			MessageID string `json:"messageId"`
		} `json:"commonHeaders"`
	} `json:"mail"`
	Bounce *struct {
		BounceType        string `json:"bounceType"`
		BounceSubType     string `json:"bounceSubType"`
		FeedbackID        string `json:"feedbackId"`
		Timestamp         string `json:"timestamp"`
		BouncedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"bouncedRecipients"`
	} `json:"bounce"`
	Complaint *struct {
		FeedbackID            string `json:"feedbackId"`
		Timestamp             string `json:"timestamp"`
		ComplaintFeedbackType string `json:"complaintFeedbackType"`
		ComplainedRecipients  []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"complainedRecipients"`
	} `json:"complaint"`
}

// originalMessageID is the Message-ID Herald gave the message: from the
// original headers SES quotes, else from its common headers.
func (n *sesNotification) originalMessageID() string {
	for _, h := range n.Mail.Headers {
		if strings.EqualFold(h.Name, "Message-ID") {
			return messageID(h.Value)
		}
	}
	return messageID(n.Mail.CommonHeaders.MessageID)
}

// readSES reads the SES notification an SNS message carries. The event
// id is SES's feedbackId (the same however many topics carried it), or
// SNS's MessageId without one, and the recipient's place in the list.
func readSES(snsID string, message []byte, received time.Time) (Result, error) {
	var n sesNotification
	if err := json.Unmarshal(message, &n); err != nil {
		return Result{}, malformed("SES notification: %v", err)
	}
	kind := n.NotificationType
	if kind == "" {
		kind = n.EventType
	}
	mid := n.originalMessageID()
	eventID := func(feedbackID string, i int) string {
		if feedbackID == "" {
			feedbackID = snsID
		}
		return feedbackID + "/" + strconv.Itoa(i)
	}
	when := func(ts string) time.Time {
		if t, err := time.Parse(time.RFC3339, ts); err == nil {
			return t.UTC()
		}
		return received
	}
	var res Result
	switch {
	case kind == "Bounce" && n.Bounce != nil:
		b := n.Bounce
		k := bounce.Transient // Transient and Undetermined: counted, not final
		if b.BounceType == "Permanent" {
			k = bounce.Permanent
		}
		for i, r := range b.BouncedRecipients {
			diag := r.DiagnosticCode
			if diag == "" {
				diag = strings.TrimSpace(b.BounceType + " " + b.BounceSubType)
			}
			res.Reports = append(res.Reports, bounce.Report{
				Source: "ses", EventID: eventID(b.FeedbackID, i), MessageID: mid, Recipient: r.EmailAddress,
				Kind: k, Status: r.Status, Diagnostic: diag, At: when(b.Timestamp), Raw: raw(message),
			})
		}
	case kind == "Complaint" && n.Complaint != nil:
		c := n.Complaint
		for i, r := range c.ComplainedRecipients {
			res.Reports = append(res.Reports, bounce.Report{
				Source: "ses", EventID: eventID(c.FeedbackID, i), MessageID: mid, Recipient: r.EmailAddress,
				Kind: bounce.Complaint, Diagnostic: c.ComplaintFeedbackType, At: when(c.Timestamp), Raw: raw(message),
			})
		}
	case kind == "Bounce" || kind == "Complaint":
		return Result{}, malformed("SES %s notification without its %s object", kind, strings.ToLower(kind))
	default:
		res.Skipped = 1
	}
	return res, nil
}
