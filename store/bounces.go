package store

// Bounces and complaints reported after a relay accepted a message: the
// records bounce processing (herald/alerts/bounce) reads and writes. The
// store records; whether a report suppresses an address is decided there.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Suppression causes: why an address is suppressed.
const (
	// CauseBounce: the address does not take mail. A fresh double opt-in
	// by its owner lifts it.
	CauseBounce = "bounce"
	// CauseComplaint: the address's owner marked Herald's mail as spam.
	// Only an admin lifts it.
	CauseComplaint = "complaint"
	// CauseManual: an admin suppressed the address.
	CauseManual = "manual"
)

// Causes lists the suppression causes.
func Causes() []string { return []string{CauseBounce, CauseComplaint, CauseManual} }

// maxReport bounds the report text kept with a suppression.
const maxReport = 16 << 10

// cleanReport makes a report fit a TEXT column on both engines: valid
// UTF-8, no NUL, at most maxReport bytes.
func cleanReport(s string) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if len(s) <= maxReport {
		return s
	}
	cut := maxReport
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "\n[…]"
}

// SentMessage is an outbox row as a bounce report is checked against it:
// which message, to whom.
type SentMessage struct {
	ID           int64
	SubscriberID int64
	To           string
	MessageID    string
	Status       string
}

const sentMessageCols = `id, subscriber_id, to_addr, message_id, status`

func scanSentMessage(row *sql.Row) (SentMessage, error) {
	var m SentMessage
	err := row.Scan(&m.ID, &m.SubscriberID, &m.To, &m.MessageID, &m.Status)
	return m, err
}

// SentMessage returns outbox message id, or ErrNotFound.
func (db *DB) SentMessage(ctx context.Context, id int64) (SentMessage, error) {
	m, err := scanSentMessage(db.db.QueryRowContext(ctx, `SELECT `+sentMessageCols+` FROM outbox WHERE id = ?`, id))
	return m, notFound(fmt.Sprintf("outbox message %d", id), err)
}

// SentMessageByMessageID returns the outbox message with the Message-ID
// messageID (without angle brackets), or ErrNotFound. A row keeps the
// local part alone when the domain is From's; either form finds it.
func (db *DB) SentMessageByMessageID(ctx context.Context, messageID string) (SentMessage, error) {
	if messageID == "" {
		return SentMessage{}, fmt.Errorf("store: outbox message by Message-ID: %w", ErrNotFound)
	}
	local, _, _ := strings.Cut(messageID, "@")
	m, err := scanSentMessage(db.db.QueryRowContext(ctx, `SELECT `+sentMessageCols+` FROM outbox
		WHERE message_id IN (?, ?) ORDER BY id LIMIT 1`, messageID, local))
	return m, notFound("outbox message by Message-ID", err)
}

// MarkReportProcessed records that a report with these keys (an event
// id's, a message's and kind's) was processed, unless one of them was
// already: then it records nothing and returns false.
func (tx *Tx) MarkReportProcessed(keys []string, outboxID int64, kind, source string) (bool, error) {
	if len(keys) == 0 {
		return false, errors.New("store: mark report processed: no key")
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	var seen bool
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT EXISTS (SELECT 1 FROM bounce_reports WHERE report_key IN (`+placeholders(len(keys))+`))`,
		args...).Scan(&seen)
	if err != nil {
		return false, fmt.Errorf("store: mark report processed: %w", err)
	}
	if seen {
		return false, nil
	}
	for _, k := range keys {
		_, err := tx.tx.ExecContext(tx.ctx, `INSERT INTO bounce_reports (report_key, outbox_id, kind, source, received_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (report_key) DO NOTHING`, k, outboxID, kind, source, fmtTime(tx.now))
		if err != nil {
			return false, fmt.Errorf("store: mark report processed: %w", err)
		}
	}
	return true, nil
}

// AddTransientBounce records a temporary failure of message outboxID to
// address, now, and returns how many messages to address failed
// temporarily since since.
func (tx *Tx) AddTransientBounce(address string, outboxID int64, since time.Time) (int, error) {
	_, err := tx.tx.ExecContext(tx.ctx, `INSERT INTO transient_bounces (address, outbox_id, at) VALUES (?, ?, ?)
		ON CONFLICT (address, outbox_id) DO NOTHING`, address, outboxID, fmtTime(tx.now))
	if err != nil {
		return 0, fmt.Errorf("store: add transient bounce: %w", err)
	}
	var n int
	err = tx.tx.QueryRowContext(tx.ctx, `SELECT count(*) FROM transient_bounces WHERE address = ? AND at >= ?`,
		address, fmtTime(since)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: add transient bounce: %w", err)
	}
	return n, nil
}

// SuppressAddress suppresses s.Address for s.Cause, keeping s's reason,
// source, message and report, and reports whether that changed anything.
// An address suppressed already stays as it is, except that a complaint
// replaces a suppression of another cause: a complaint is the one a fresh
// opt-in must not lift.
func (tx *Tx) SuppressAddress(s Suppression) (bool, error) {
	if s.Address == "" || s.Cause == "" {
		return false, errors.New("store: suppress address: address and cause are required")
	}
	res, err := tx.tx.ExecContext(tx.ctx, `INSERT INTO suppressions (address, reason, failures, created_at, cause, source, outbox_id, report)
		VALUES (?, ?, coalesce((SELECT failures FROM bounce_counts WHERE address = ?), 0), ?, ?, ?, ?, ?)
		ON CONFLICT (address) DO UPDATE SET reason = excluded.reason, created_at = excluded.created_at, cause = excluded.cause,
			source = excluded.source, outbox_id = excluded.outbox_id, report = excluded.report
		WHERE excluded.cause = 'complaint' AND suppressions.cause <> 'complaint'`,
		s.Address, truncateError(s.Reason), s.Address, fmtTime(tx.now), s.Cause, s.Source, s.OutboxID, cleanReport(s.Report))
	if err != nil {
		return false, fmt.Errorf("store: suppress address: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// EndSubscriptionsOf ends every active and pending subscription of the
// subscriber with address and returns how many it ended.
func (tx *Tx) EndSubscriptionsOf(address string) (int, error) {
	now := fmtTime(tx.now)
	var id int64
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT id FROM subscribers WHERE address = ?`, address).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: end subscriptions of an address: %w", err)
	}
	res, err := tx.tx.ExecContext(tx.ctx, `UPDATE subscriptions SET status = 'ended', ended_at = ?
		WHERE subscriber_id = ? AND status IN ('active', 'pending')`, now, id)
	if err != nil {
		return 0, fmt.Errorf("store: end subscriptions of an address: %w", err)
	}
	n, _ := res.RowsAffected()
	if err := markIdle(tx.ctx, tx.tx, id, now); err != nil {
		return 0, fmt.Errorf("store: end subscriptions of an address: %w", err)
	}
	return int(n), nil
}

// markIdle records when subscriber id was left with no active
// subscription, so housekeeping erases the address later.
func markIdle(ctx context.Context, tx *sql.Tx, id int64, now string) error {
	_, err := tx.ExecContext(ctx, `UPDATE subscribers SET last_ended_at = ? WHERE id = ? AND last_ended_at = ''
		AND NOT EXISTS (SELECT 1 FROM subscriptions WHERE subscriber_id = subscribers.id AND status = 'active')`, now, id)
	return err
}

// LiftBounceSuppression lifts address's suppression if its cause is a
// bounce, with the failures counted against it, and reports whether it
// did. A complaint or an admin's suppression stays.
func (tx *Tx) LiftBounceSuppression(address string) (bool, error) {
	res, err := tx.tx.ExecContext(tx.ctx, `DELETE FROM suppressions WHERE address = ? AND cause = 'bounce'`, address)
	if err != nil {
		return false, fmt.Errorf("store: lift bounce suppression: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	if err := forgetFailures(tx.ctx, tx.tx, address); err != nil {
		return false, fmt.Errorf("store: lift bounce suppression: %w", err)
	}
	return true, nil
}

// forgetFailures deletes the failures counted against address.
func forgetFailures(ctx context.Context, tx *sql.Tx, address string) error {
	for _, q := range []string{`DELETE FROM bounce_counts WHERE address = ?`, `DELETE FROM transient_bounces WHERE address = ?`} {
		if _, err := tx.ExecContext(ctx, q, address); err != nil {
			return err
		}
	}
	return nil
}

// SuppressionFilter selects suppressions to list.
type SuppressionFilter struct {
	// Cause, when set, is one of Causes().
	Cause string
	// Search, when set, keeps addresses that contain it.
	Search string
	// Limit caps the list (default 100).
	Limit int
}

// ListSuppressions lists suppressions f selects, newest first, with the
// reports that caused them.
func (db *DB) ListSuppressions(ctx context.Context, f SuppressionFilter) ([]Suppression, error) {
	var where []string
	var args []any
	if f.Cause != "" {
		where = append(where, "cause = ?")
		args = append(args, f.Cause)
	}
	if f.Search != "" {
		esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(f.Search))
		where = append(where, `address LIKE ? ESCAPE '\'`)
		args = append(args, "%"+esc+"%")
	}
	if f.Limit < 1 {
		f.Limit = 100
	}
	q := `SELECT address, reason, failures, created_at, cause, source, outbox_id, report FROM suppressions`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := db.db.QueryContext(ctx, q+` ORDER BY created_at DESC, address LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: suppressions: %w", err)
	}
	defer rows.Close()
	out := []Suppression{}
	for rows.Next() {
		var s Suppression
		var created string
		if err := rows.Scan(&s.Address, &s.Reason, &s.Failures, &created, &s.Cause, &s.Source, &s.OutboxID, &s.Report); err != nil {
			return nil, fmt.Errorf("store: suppressions: %w", err)
		}
		s.CreatedAt = parseTime(created)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: suppressions: %w", err)
	}
	return out, nil
}

// PurgeBounceRecords deletes what bounce processing no longer needs:
// temporary failures older than transientBefore (outside the window that
// counts them) and the keys of reports processed before reportsBefore
// (a replay that old is answered from the suppression itself). It returns
// how many rows went.
func (db *DB) PurgeBounceRecords(ctx context.Context, transientBefore, reportsBefore time.Time) (int, error) {
	n := 0
	for _, q := range []struct {
		sql    string
		before time.Time
	}{
		{`DELETE FROM transient_bounces WHERE at < ?`, transientBefore},
		{`DELETE FROM bounce_reports WHERE received_at < ?`, reportsBefore},
	} {
		res, err := db.db.ExecContext(ctx, q.sql, fmtTime(q.before))
		if err != nil {
			return n, fmt.Errorf("store: purge bounce records: %w", err)
		}
		c, _ := res.RowsAffected()
		n += int(c)
	}
	return n, nil
}
