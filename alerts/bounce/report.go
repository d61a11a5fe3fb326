// Package bounce turns what relays report after they accepted a message
// (delivery status notifications, spam complaints, provider webhooks) into
// suppressions of the addresses they concern. Every report is tied to the
// exact outbox message it is about: by the signed token in the envelope
// sender Herald gave the message (bounces+TOKEN@domain), or, for a
// provider's authenticated webhook, by the Message-ID Herald gave it and
// the recipient it was sent to. A report that names no message Herald
// sent to that recipient changes nothing.
package bounce

import "time"

// Kind is what a report says happened to a message.
type Kind string

const (
	// Permanent: the mailbox does not exist or refuses mail for good
	// (a 5.x.x status). Suppresses the address at once.
	Permanent Kind = "permanent"
	// Transient: a temporary failure (4.x.x), such as a full mailbox.
	// Counts towards suppression.
	Transient Kind = "transient"
	// Complaint: the recipient marked the message as spam. Ends every
	// subscription of the address and suppresses it.
	Complaint Kind = "complaint"
)

// Report is one bounce or complaint about one recipient of one message,
// as any input (the pipe command, the SMTP receiver, a webhook) read it.
type Report struct {
	// Source names the input: "pipe", "smtp", "ses", "postmark",
	// "sendgrid" or "mailgun".
	Source string
	// EventID is the provider's id of the event, so that a replayed
	// webhook changes nothing; "" for reports that came by email.
	EventID string
	// Token is the signed token of the bounce address the report was
	// sent to, for reports that came by email.
	Token string
	// MessageID is the Message-ID Herald gave the message, without angle
	// brackets, for reports that quote it (provider webhooks).
	MessageID string
	// Recipient is the address the report is about.
	Recipient string
	Kind      Kind
	// Status is the enhanced status code (RFC 3463), e.g. "5.1.1", when
	// the report gives one.
	Status string
	// Diagnostic is the remote server's or provider's explanation.
	Diagnostic string
	// At is when the event happened, as the report says, or when it was
	// received.
	At time.Time
	// Raw is the report as received (bounded), kept with a suppression so
	// that an operator can see what caused it.
	Raw []byte
}

// Outcome is what processing a report did.
type Outcome struct {
	// Applied is false when the report changed nothing; Ignored then says
	// why (unknown or forged token, no such message for that recipient,
	// already processed, an auto-reply...).
	Applied bool
	Ignored string
	// OutboxID is the message the report was tied to (0 when none).
	OutboxID int64
	// Suppressed is true when the report suppressed the address.
	Suppressed bool
	// Ended counts the subscriptions a complaint ended.
	Ended int
}
