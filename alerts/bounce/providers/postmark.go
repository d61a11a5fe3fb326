package providers

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	"herald/alerts/bounce"
)

// PostmarkConfig configures Postmark's Bounce and SpamComplaint webhooks,
// which Postmark authenticates with HTTP basic auth in the webhook URL.
type PostmarkConfig struct {
	Username string
	Password string
}

// Postmark reads Postmark's Bounce and SpamComplaint webhooks.
type Postmark struct {
	user, pass [sha256.Size]byte
}

// NewPostmark checks cfg and returns the provider.
func NewPostmark(cfg PostmarkConfig) (*Postmark, error) {
	if cfg.Username == "" || cfg.Password == "" {
		return nil, errors.New("postmark: username and password are both required")
	}
	// Comparing digests keeps the comparison constant-time whatever the
	// lengths.
	return &Postmark{user: sha256.Sum256([]byte(cfg.Username)), pass: sha256.Sum256([]byte(cfg.Password))}, nil
}

// Name is "postmark".
func (p *Postmark) Name() string { return "postmark" }

// postmarkKinds maps Postmark's bounce types (its documented list) to what
// Herald does: only a hard bounce or an invalid address is final; types
// that say nothing about the mailbox (auto-responders, challenges, virus
// notices, Postmark's own refusals) are skipped.
var postmarkKinds = map[string]bounce.Kind{
	"HardBounce":       bounce.Permanent,
	"BadEmailAddress":  bounce.Permanent,
	"Transient":        bounce.Transient,
	"SoftBounce":       bounce.Transient,
	"DnsError":         bounce.Transient,
	"SpamNotification": bounce.Transient,
	"Blocked":          bounce.Transient,
	"SpamComplaint":    bounce.Complaint,
}

// postmarkRecord is Postmark's Bounce and SpamComplaint payload.
type postmarkRecord struct {
	RecordType string
	ID         json.Number
	Type       string
	MessageID  string
	Details    string
	Email      string
	BouncedAt  string
	Content    string
}

// Parse checks the basic-auth credentials and reads one record. The
// record's MessageID is Postmark's own; Herald's Message-ID is read from
// the bounce itself (Content), which Postmark includes when the webhook's
// "include bounce content" option is on.
func (p *Postmark) Parse(_ context.Context, header http.Header, body []byte) (Result, error) {
	user, pass, ok := (&http.Request{Header: header}).BasicAuth()
	if !ok {
		return Result{}, unauthenticated("no basic-auth credentials")
	}
	u, pw := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	if subtle.ConstantTimeCompare(u[:], p.user[:])&subtle.ConstantTimeCompare(pw[:], p.pass[:]) != 1 {
		return Result{}, unauthenticated("wrong basic-auth credentials")
	}
	var rec postmarkRecord
	if err := json.Unmarshal(body, &rec); err != nil {
		return Result{}, malformed("Postmark record: %v", err)
	}
	switch rec.RecordType {
	case "Bounce", "SpamComplaint", "":
	default:
		return Result{Skipped: 1}, nil
	}
	if rec.ID == "" || rec.Email == "" || rec.Type == "" {
		return Result{}, malformed("Postmark record lacks ID, Email or Type")
	}
	kind, ok := postmarkKinds[rec.Type]
	if rec.RecordType == "SpamComplaint" {
		kind, ok = bounce.Complaint, true
	}
	if !ok {
		return Result{Skipped: 1}, nil
	}
	at, err := time.Parse(time.RFC3339, rec.BouncedAt)
	if err != nil {
		at = time.Now().UTC()
	}
	return Result{Reports: []bounce.Report{{
		Source: "postmark", EventID: rec.ID.String(), MessageID: quotedMessageID(rec.Content),
		Recipient: rec.Email, Kind: kind, Diagnostic: rec.Details, At: at.UTC(), Raw: raw(body),
	}}}, nil
}

// maxParts bounds the parts and the nesting read from a quoted bounce.
const (
	maxParts = 32
	maxDepth = 4
)

// quotedMessageID returns the Message-ID of the message a bounce or
// complaint quotes (its message/rfc822 or text/rfc822-headers part), or ""
// when it quotes none. The bounce's own Message-ID is never the answer.
func quotedMessageID(content string) string {
	if content == "" {
		return ""
	}
	m, err := mail.ReadMessage(strings.NewReader(content))
	if err != nil {
		return ""
	}
	budget := maxParts
	return findQuotedID(m.Header.Get("Content-Type"), m.Body, 0, &budget)
}

func findQuotedID(contentType string, body io.Reader, depth int, budget *int) string {
	media, params, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.HasPrefix(media, "multipart/") || params["boundary"] == "" || depth >= maxDepth {
		return ""
	}
	mr := multipart.NewReader(body, params["boundary"])
	for *budget > 0 {
		*budget--
		part, err := mr.NextRawPart()
		if err != nil {
			return ""
		}
		ct := part.Header.Get("Content-Type")
		media, _, _ := mime.ParseMediaType(ct)
		switch media {
		case "message/rfc822", "text/rfc822-headers", "message/rfc822-headers":
			h, err := textproto.NewReader(bufio.NewReader(part)).ReadMIMEHeader()
			if id := messageID(h.Get("Message-Id")); id != "" && (err == nil || errors.Is(err, io.EOF)) {
				return id
			}
		default:
			if id := findQuotedID(ct, part, depth+1, budget); id != "" {
				return id
			}
		}
	}
	return ""
}
