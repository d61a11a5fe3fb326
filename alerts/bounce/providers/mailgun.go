package providers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"regexp"
	"time"

	"herald/alerts/bounce"
)

// MailgunConfig configures Mailgun's webhooks.
type MailgunConfig struct {
	// SigningKey is the account's HTTP webhook signing key.
	SigningKey string
	// Window is how far the signed timestamp may be from now; default
	// DefaultWindow.
	Window time.Duration
	// Now is the clock of the window; default time.Now.
	Now func() time.Time
}

// Mailgun reads Mailgun's JSON webhooks for the failed and complained
// events.
type Mailgun struct {
	key    []byte
	window window
}

// NewMailgun checks cfg and returns the provider.
func NewMailgun(cfg MailgunConfig) (*Mailgun, error) {
	if cfg.SigningKey == "" {
		return nil, errors.New("mailgun: no signing key")
	}
	return &Mailgun{key: []byte(cfg.SigningKey), window: newWindow(cfg.Window, cfg.Now)}, nil
}

// Name is "mailgun".
func (p *Mailgun) Name() string { return "mailgun" }

// mailgunPayload is Mailgun's webhook body.
type mailgunPayload struct {
	Signature struct {
		Timestamp string `json:"timestamp"`
		Token     string `json:"token"`
		Signature string `json:"signature"`
	} `json:"signature"`
	EventData json.RawMessage `json:"event-data"`
}

type mailgunEvent struct {
	ID        string  `json:"id"`
	Event     string  `json:"event"`
	Severity  string  `json:"severity"`
	Reason    string  `json:"reason"`
	Recipient string  `json:"recipient"`
	Timestamp float64 `json:"timestamp"`
	Message   struct {
		Headers struct {
			MessageID string `json:"message-id"`
		} `json:"headers"`
	} `json:"message"`
	DeliveryStatus struct {
		Code         json.Number `json:"code"`
		Message      string      `json:"message"`
		Description  string      `json:"description"`
		EnhancedCode string      `json:"enhanced-code"`
	} `json:"delivery-status"`
}

// enhancedStatus is what an RFC 3463 status code looks like.
var enhancedStatus = regexp.MustCompile(`^[245]\.\d{1,3}\.\d{1,3}$`)

// Parse checks the HMAC of the timestamp and token with the signing key,
// then reads the event. Mailgun signs the timestamp and token, not the
// body, so the window is what keeps a captured signature from serving
// long; the event id keeps a replay within it from counting twice.
func (p *Mailgun) Parse(_ context.Context, _ http.Header, body []byte) (Result, error) {
	var pl mailgunPayload
	if err := json.Unmarshal(body, &pl); err != nil {
		return Result{}, malformed("Mailgun webhook: %v", err)
	}
	s := pl.Signature
	if s.Timestamp == "" || s.Token == "" || s.Signature == "" {
		return Result{}, unauthenticated("no signature")
	}
	got, err := hex.DecodeString(s.Signature)
	if err != nil {
		return Result{}, unauthenticated("signature is not hex")
	}
	mac := hmac.New(sha256.New, p.key)
	mac.Write([]byte(s.Timestamp + s.Token))
	if !hmac.Equal(mac.Sum(nil), got) {
		return Result{}, unauthenticated("signature does not match")
	}
	at, err := unixTime(s.Timestamp)
	if err != nil {
		return Result{}, unauthenticated("timestamp %q is not a number of seconds", s.Timestamp)
	}
	if err := p.window.check(at); err != nil {
		return Result{}, err
	}
	var e mailgunEvent
	if len(pl.EventData) == 0 {
		return Result{}, malformed("Mailgun webhook without event-data")
	}
	if err := json.Unmarshal(pl.EventData, &e); err != nil {
		return Result{}, malformed("Mailgun event-data: %v", err)
	}
	var kind bounce.Kind
	switch {
	case e.Event == "failed" && e.Severity == "permanent":
		kind = bounce.Permanent
	case e.Event == "failed" && e.Severity == "temporary":
		kind = bounce.Transient
	case e.Event == "complained":
		kind = bounce.Complaint
	default:
		return Result{Skipped: 1}, nil
	}
	if e.ID == "" || e.Recipient == "" {
		return Result{}, malformed("Mailgun %s event lacks id or recipient", e.Event)
	}
	when := at
	if e.Timestamp > 0 {
		sec, frac := math.Modf(e.Timestamp)
		when = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	}
	r := bounce.Report{
		Source: "mailgun", EventID: e.ID, MessageID: messageID(e.Message.Headers.MessageID), Recipient: e.Recipient,
		Kind: kind, At: when, Raw: raw(pl.EventData),
	}
	if enhancedStatus.MatchString(e.DeliveryStatus.EnhancedCode) {
		r.Status = e.DeliveryStatus.EnhancedCode
	}
	for _, d := range []string{e.DeliveryStatus.Description, e.DeliveryStatus.Message, e.Reason} {
		if d != "" {
			r.Diagnostic = d
			break
		}
	}
	return Result{Reports: []bounce.Report{r}}, nil
}
