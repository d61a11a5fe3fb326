package providers

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"herald/alerts/bounce"
)

// SendGridConfig configures SendGrid's signed Event Webhook.
type SendGridConfig struct {
	// PublicKey is the verification key SendGrid shows when signing is
	// turned on: a base64 DER (SubjectPublicKeyInfo) ECDSA key.
	PublicKey string
	// Window is how far the signed timestamp may be from now; default
	// DefaultWindow.
	Window time.Duration
	// Now is the clock of the window; default time.Now.
	Now func() time.Time
}

// The headers SendGrid signs its Event Webhook requests with.
const (
	SendGridSignatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
	SendGridTimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// SendGrid reads SendGrid's Event Webhook: a signed batch of events, of
// which Herald reads bounce, dropped and spamreport.
type SendGrid struct {
	key    *ecdsa.PublicKey
	window window
}

// NewSendGrid checks cfg and returns the provider.
func NewSendGrid(cfg SendGridConfig) (*SendGrid, error) {
	key, err := ParseSendGridKey(cfg.PublicKey)
	if err != nil {
		return nil, err
	}
	return &SendGrid{key: key, window: newWindow(cfg.Window, cfg.Now)}, nil
}

// ParseSendGridKey reads the verification key as SendGrid shows it.
func ParseSendGridKey(s string) (*ecdsa.PublicKey, error) {
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(der) == 0 {
		return nil, errors.New("sendgrid: public key is not base64")
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("sendgrid: public key: %v", err)
	}
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("sendgrid: public key is not an ECDSA key")
	}
	return key, nil
}

// Name is "sendgrid".
func (p *SendGrid) Name() string { return "sendgrid" }

// sendgridEvent is one event of a batch.
type sendgridEvent struct {
	Email     string `json:"email"`
	Timestamp int64  `json:"timestamp"`
	SMTPID    string `json:"smtp-id"`
	Event     string `json:"event"`
	EventID   string `json:"sg_event_id"`
	Reason    string `json:"reason"`
	Status    string `json:"status"`
	Type      string `json:"type"`
}

// Parse checks the signature over the timestamp and the body, then reads
// the batch. An event without an sg_event_id could not be told from its
// replay, and is skipped.
func (p *SendGrid) Parse(_ context.Context, header http.Header, body []byte) (Result, error) {
	sig, ts := header.Get(SendGridSignatureHeader), header.Get(SendGridTimestampHeader)
	if sig == "" || ts == "" {
		return Result{}, unauthenticated("no %s or %s header", SendGridSignatureHeader, SendGridTimestampHeader)
	}
	der, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return Result{}, unauthenticated("signature is not base64")
	}
	digest := sha256.Sum256(append([]byte(ts), body...))
	if !ecdsa.VerifyASN1(p.key, digest[:], der) {
		return Result{}, unauthenticated("signature does not match")
	}
	at, err := unixTime(ts)
	if err != nil {
		return Result{}, unauthenticated("timestamp %q is not a number of seconds", ts)
	}
	if err := p.window.check(at); err != nil {
		return Result{}, err
	}
	var events []json.RawMessage
	if err := json.Unmarshal(body, &events); err != nil {
		return Result{}, malformed("SendGrid events: %v", err)
	}
	var res Result
	for _, rawEvent := range events {
		var e sendgridEvent
		if err := json.Unmarshal(rawEvent, &e); err != nil {
			return Result{}, malformed("SendGrid event: %v", err)
		}
		kind, ok := sendgridKind(e)
		if !ok || e.EventID == "" || e.Email == "" {
			res.Skipped++
			continue
		}
		when := at
		if e.Timestamp > 0 {
			when = time.Unix(e.Timestamp, 0).UTC()
		}
		res.Reports = append(res.Reports, bounce.Report{
			Source: "sendgrid", EventID: e.EventID, MessageID: messageID(e.SMTPID), Recipient: e.Email,
			Kind: kind, Status: e.Status, Diagnostic: e.Reason, At: when, Raw: raw(rawEvent),
		})
	}
	return res, nil
}

// sendgridKind says what an event means for Herald. A bounce is final
// unless SendGrid calls it "blocked" (the receiver refused the sender, not
// the mailbox); a drop counts only when SendGrid dropped the message
// because the address bounced or complained before.
func sendgridKind(e sendgridEvent) (bounce.Kind, bool) {
	switch e.Event {
	case "bounce":
		switch e.Type {
		case "bounce":
			return bounce.Permanent, true
		case "blocked":
			return bounce.Transient, true
		case "":
			// Payloads from before the type field: trust the status.
			if strings.HasPrefix(e.Status, "5.") {
				return bounce.Permanent, true
			}
			return bounce.Transient, true
		}
	case "dropped":
		switch e.Reason {
		case "Bounced Address":
			return bounce.Permanent, true
		case "Spam Reporting Address":
			return bounce.Complaint, true
		}
	case "spamreport":
		return bounce.Complaint, true
	}
	return "", false
}
