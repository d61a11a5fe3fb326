package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Outbox message kinds.
const (
	KindConfirm       = "confirm"
	KindWelcome       = "welcome"
	KindManage        = "manage"
	KindAddressChange = "address-change"
	KindImmediate     = "immediate"
	KindDigest        = "digest"
)

// OutboxMessage is one email, composed and waiting in (or done with) the
// outbox. Key is its idempotency key, for example
// "immediate:<release>.<version>:<subscriber>" or "digest:daily:<period>:<subscriber>".
type OutboxMessage struct {
	ID             int64     `json:"id"`
	Key            string    `json:"key"`
	Kind           string    `json:"kind"`
	SubscriberID   int64     `json:"subscriber_id"`
	To             string    `json:"-"`
	Subject        string    `json:"subject"`
	Text           string    `json:"-"`
	HTML           string    `json:"-"`
	UnsubscribeURL string    `json:"-"`
	MessageID      string    `json:"message_id"`
	Status         string    `json:"status"`
	Attempts       int       `json:"attempts"`
	NextAttemptAt  time.Time `json:"next_attempt_at"`
	LastError      string    `json:"last_error,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	SentAt         time.Time `json:"sent_at,omitzero"`
	// Purged: the bodies were deleted some time after delivery.
	Purged bool `json:"-"`
}

// Outbox statuses.
const (
	StatusPending    = "pending"
	StatusSending    = "sending"
	StatusSent       = "sent"
	StatusFailed     = "failed"
	StatusSuppressed = "suppressed"
)

// MessageIDFor derives a stable Message-ID local part from an idempotency
// key, so a message sent twice after a crash carries the same Message-ID.
func MessageIDFor(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// EnqueueEmails adds messages to the outbox in one transaction. A message
// whose key is already there is skipped; the count of new rows is returned.
func (db *DB) EnqueueEmails(ctx context.Context, msgs []OutboxMessage) (int, error) {
	var n int
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = db.insertOutbox(ctx, tx, db.Now(), msgs)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: enqueue emails: %w", err)
	}
	return n, nil
}

// insertOutbox inserts msgs inside tx, skipping known keys, and returns how
// many rows were new. Messages to a suppressed address are stored as
// suppressed so the record shows why nothing was sent, but for a
// confirmation request to an address that bounced (see mayConfirm).
func (db *DB) insertOutbox(ctx context.Context, tx *sql.Tx, now time.Time, msgs []OutboxMessage) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	stmt, err := db.txPrepared(ctx, tx, `INSERT INTO outbox (key, kind, subscriber_id, to_addr, subject, text_body, html_body,
		unsubscribe_url, message_id, status, next_attempt_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?,
			CASE WHEN EXISTS (SELECT 1 FROM suppressions WHERE address = ?
				AND NOT (cause = '`+CauseBounce+`' AND ? = '`+KindConfirm+`')) THEN 'suppressed' ELSE 'pending' END, ?, ?)
		ON CONFLICT (key) DO NOTHING`)
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	ts := fmtTime(now)
	n := 0
	for _, m := range msgs {
		if m.Key == "" || m.To == "" {
			return n, fmt.Errorf("outbox message needs a key and an address")
		}
		mid := m.MessageID
		if mid == "" {
			mid = MessageIDFor(m.Key)
		}
		next := ts
		if !m.NextAttemptAt.IsZero() {
			next = fmtTime(m.NextAttemptAt)
		}
		res, err := stmt.ExecContext(ctx, m.Key, m.Kind, m.SubscriberID, m.To, m.Subject, m.Text, m.HTML,
			m.UnsubscribeURL, mid, strings.ToLower(m.To), m.Kind, next, ts)
		if err != nil {
			return n, fmt.Errorf("enqueue %q: %w", m.Key, err)
		}
		if c, _ := res.RowsAffected(); c == 1 {
			n++
		}
	}
	return n, nil
}

// OutboxMessages returns up to limit outbox rows with ids above after,
// bodies included, in the order they were queued: a page of the whole
// outbox, for tests and for copying the outbox elsewhere.
func (db *DB) OutboxMessages(ctx context.Context, after int64, limit int) ([]OutboxMessage, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id, key, kind, subscriber_id, to_addr, subject, text_body, html_body, unsubscribe_url,
		message_id, status, attempts, next_attempt_at, last_error, created_at, sent_at, purged
		FROM outbox WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: outbox messages: %w", err)
	}
	defer rows.Close()
	out := []OutboxMessage{}
	for rows.Next() {
		var m OutboxMessage
		var next, created, sent string
		if err := rows.Scan(&m.ID, &m.Key, &m.Kind, &m.SubscriberID, &m.To, &m.Subject, &m.Text, &m.HTML, &m.UnsubscribeURL,
			&m.MessageID, &m.Status, &m.Attempts, &next, &m.LastError, &created, &sent, &m.Purged); err != nil {
			return nil, fmt.Errorf("store: outbox messages: %w", err)
		}
		m.NextAttemptAt, m.CreatedAt, m.SentAt = parseTime(next), parseTime(created), parseTime(sent)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: outbox messages: %w", err)
	}
	return out, nil
}
