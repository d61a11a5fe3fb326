package store

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// OutboxClaim is a batch of due outbox rows that one worker holds until
// Until. A row the worker has not settled by then is due again for any
// worker, which is how the messages in flight when a process dies are sent
// by the next one (with the same Message-ID).
type OutboxClaim struct {
	// Token identifies the claim; settling a row needs it, so a worker whose
	// lease ran out cannot overwrite what the row's new holder recorded.
	Token string
	// Until is when the lease ends unless renewed.
	Until time.Time
	// Messages are the rows to send, in due order.
	Messages []ClaimedMessage
	// Suppressed counts due rows addressed to a suppressed address; they
	// were marked suppressed instead of being handed out.
	Suppressed int
}

// ClaimedMessage is an outbox row held by a claim. Its Attempts counts
// the attempt about to be made.
type ClaimedMessage struct {
	OutboxMessage
	// RetryFrom is when the current run of attempts began: the row's
	// creation, or an admin's retry of a failed message.
	RetryFrom time.Time
}

// DeliveryOutcome is what became of one attempt to send a claimed row.
type DeliveryOutcome struct {
	ID int64
	// Token is the claim the attempt was made under.
	Token string
	// Status is StatusSent, StatusPending (try again at NextAttemptAt) or
	// StatusFailed.
	Status        string
	NextAttemptAt time.Time
	// Error is the reason for a retry or failure, kept as last_error.
	Error string
	// Address is the row's recipient. A sent message clears the address's
	// count of permanent failures; a Bounce adds one to it.
	Address string
	// Bounce marks a permanent failure the receiving side blamed on the
	// address (an unknown mailbox, say), as opposed to one about the message
	// or the sender, so it counts towards suppressing the address.
	Bounce bool
}

// DeliveryTally counts the outcomes RecordDeliveries applied. An outcome for
// a row that another claim has taken over is not applied and not counted.
type DeliveryTally struct {
	Sent    int
	Retried int
	Failed  int
	// NewlySuppressed counts addresses that reached the failure limit now.
	NewlySuppressed int
}

// Suppression is an address Herald no longer mails.
type Suppression struct {
	Address string `json:"address"`
	// Cause is why: CauseBounce, CauseComplaint or CauseManual.
	Cause string `json:"cause"`
	// Reason is the detail: the relay's reply, the report's status and
	// diagnostic, or what an admin wrote.
	Reason    string    `json:"reason"`
	Failures  int       `json:"failures"`
	CreatedAt time.Time `json:"created_at"`
	// Source is the input that reported it: "delivery" for a refusal
	// while sending, "pipe", "smtp", "ses"... for a report received later.
	Source string `json:"source,omitempty"`
	// OutboxID is the message the report was about, 0 when none.
	OutboxID int64 `json:"outbox_id,omitempty"`
	// Report is the report as received, bounded.
	Report string `json:"report,omitempty"`
}

// sourceDelivery is the Source of a suppression for refusals while
// sending.
const sourceDelivery = "delivery"

// noClaim is the claim_token of an unsent row no claim holds; a sent row's
// token is empty. SQLite rewrites a record whose size is unchanged in
// place, writing only the pages whose bytes changed, instead of a
// digest's whole chain of overflow pages; so noClaim has a real token's
// width, making claiming and handing back size-neutral, and marking a row
// sent drops the token to make up for sent_at.
const noClaim = "000000000000000000000000"

func newClaimToken() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// int64Args turns ids into query arguments for an IN list.
func int64Args(ids []int64, before ...any) []any {
	args := append(make([]any, 0, len(before)+len(ids)), before...)
	for _, id := range ids {
		args = append(args, id)
	}
	return args
}

// ClaimDue takes up to limit due rows (pending and due, or held by a claim
// whose lease has run out) for one worker, for lease, marks them sending
// and hands them out with their bodies. Rows for suppressed addresses
// become suppressed instead. An empty claim means nothing is due.
//
// A claimed row's next_attempt_at is its lease expiry, and the claim
// changes no column's width, so SQLite rewrites in place only the pages
// that changed rather than a digest's whole record. For the same reason
// the attempt is counted when it is settled (RecordDeliveries), and an
// attempt cut short by a crash is not counted.
func (db *DB) ClaimDue(ctx context.Context, limit int, lease time.Duration) (OutboxClaim, error) {
	if limit < 1 {
		limit = 1
	}
	now := db.Now()
	nowS := fmtTime(now)
	// A read first, so that idle workers polling take no write lock. The
	// due index is named because without statistics SQLite prefers the
	// status index, which would sort every waiting row on each claim.
	var one int
	err := db.db.QueryRowContext(ctx, `SELECT 1 FROM outbox`+db.indexedBy("outbox_due")+`
		WHERE status IN ('pending', 'sending') AND next_attempt_at <= ? LIMIT 1`, nowS).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return OutboxClaim{}, nil
	}
	if err != nil {
		return OutboxClaim{}, fmt.Errorf("store: claim outbox: %w", err)
	}
	c := OutboxClaim{Token: newClaimToken(), Until: now.Add(lease)}
	until := fmtTime(c.Until)
	err = db.claimTx(ctx, func(tx *sql.Tx) error {
		c.Messages, c.Suppressed = nil, 0
		rows, err := tx.QueryContext(ctx, `UPDATE outbox
			SET status = 'sending', next_attempt_at = ?, claim_token = ?
			WHERE id IN (SELECT id FROM outbox`+db.indexedBy("outbox_due")+`
				WHERE status IN ('pending', 'sending') AND next_attempt_at <= ?
				ORDER BY next_attempt_at, id LIMIT ?`+db.skipLocked()+`)
			RETURNING id, key, kind, subscriber_id, to_addr, subject, text_body, html_body, unsubscribe_url,
				message_id, attempts, last_error, created_at, retry_from`,
			until, c.Token, nowS, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m ClaimedMessage
			var created, retryFrom string
			if err := rows.Scan(&m.ID, &m.Key, &m.Kind, &m.SubscriberID, &m.To, &m.Subject, &m.Text, &m.HTML,
				&m.UnsubscribeURL, &m.MessageID, &m.Attempts, &m.LastError, &created, &retryFrom); err != nil {
				return err
			}
			m.Attempts++
			m.Status, m.NextAttemptAt = StatusSending, c.Until
			m.CreatedAt = parseTime(created)
			m.RetryFrom = m.CreatedAt
			if retryFrom != "" {
				m.RetryFrom = parseTime(retryFrom)
			}
			c.Messages = append(c.Messages, m)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		if len(c.Messages) == 0 {
			return nil
		}
		var err2 error
		c.Messages, c.Suppressed, err2 = suppressClaimed(ctx, tx, c.Messages)
		return err2
	})
	if err != nil {
		return OutboxClaim{}, fmt.Errorf("store: claim outbox: %w", err)
	}
	slices.SortFunc(c.Messages, func(a, b ClaimedMessage) int { return cmp.Compare(a.ID, b.ID) })
	return c, nil
}

// suppressClaimed marks the claimed rows addressed to suppressed addresses
// as suppressed and returns the others.
func suppressClaimed(ctx context.Context, tx *sql.Tx, msgs []ClaimedMessage) ([]ClaimedMessage, int, error) {
	keys := make([]any, 0, len(msgs))
	seen := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		k := m.To
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT address, cause FROM suppressions WHERE address IN (`+placeholders(len(keys))+`)`, keys...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	suppressed := map[string]string{}
	for rows.Next() {
		var a, cause string
		if err := rows.Scan(&a, &cause); err != nil {
			return nil, 0, err
		}
		suppressed[a] = cause
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	rows.Close()
	if len(suppressed) == 0 {
		return msgs, 0, nil
	}
	keep := msgs[:0]
	var ids []int64
	for _, m := range msgs {
		if cause, ok := suppressed[m.To]; ok && !mayConfirm(m.Kind, cause) {
			ids = append(ids, m.ID)
			continue
		}
		keep = append(keep, m)
	}
	_, err = tx.ExecContext(ctx, `UPDATE outbox SET status = 'suppressed',
		last_error = 'address is suppressed', claim_token = '`+noClaim+`'
		WHERE id IN (`+placeholders(len(ids))+`)`, int64Args(ids)...)
	if err != nil {
		return nil, 0, err
	}
	return keep, len(ids), nil
}

// mayConfirm reports whether a message of kind goes to an address
// suppressed for cause: only a confirmation request to an address that
// bounced does, since its owner just asked for it, and confirming is
// what lifts a bounce suppression (a complaint's stays).
func mayConfirm(kind, cause string) bool {
	return kind == KindConfirm && cause == CauseBounce
}

// RenewClaim extends the lease on the rows of a claim that are still held
// by it and returns the new expiry and the ids still held.
func (db *DB) RenewClaim(ctx context.Context, token string, ids []int64, lease time.Duration) (time.Time, []int64, error) {
	if len(ids) == 0 {
		return time.Time{}, nil, nil
	}
	until := db.Now().Add(lease)
	var held []int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		held = held[:0]
		rows, err := tx.QueryContext(ctx, `UPDATE outbox SET next_attempt_at = ?
			WHERE claim_token = ? AND status = 'sending' AND id IN (`+placeholders(len(ids))+`) RETURNING id`,
			int64Args(ids, fmtTime(until), token)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			held = append(held, id)
		}
		return rows.Err()
	})
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("store: renew outbox claim: %w", err)
	}
	return until, held, nil
}

// ReleaseClaim hands rows of a claim back unsent (on shutdown, say): they
// are pending and due at once.
func (db *DB) ReleaseClaim(ctx context.Context, token string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE outbox SET status = 'pending', next_attempt_at = ?, claim_token = '`+noClaim+`'
			WHERE claim_token = ? AND status = 'sending' AND id IN (`+placeholders(len(ids))+`)`,
			int64Args(ids, fmtTime(db.Now()), token)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: release outbox claim: %w", err)
	}
	return nil
}

// RecordDeliveries settles claimed rows in one transaction: sent, pending
// again for a retry, or failed, counting the attempt. A bounce adds a
// failure to its address, and an address reaching suppressAfter failures
// is suppressed.
func (db *DB) RecordDeliveries(ctx context.Context, outcomes []DeliveryOutcome, suppressAfter int) (DeliveryTally, error) {
	var t DeliveryTally
	if len(outcomes) == 0 {
		return t, nil
	}
	if suppressAfter < 1 {
		suppressAfter = 1
	}
	now := fmtTime(db.Now())
	err := db.tx(ctx, func(tx *sql.Tx) error {
		t = DeliveryTally{}
		settle, err := db.txPrepared(ctx, tx, `UPDATE outbox SET status = ?, next_attempt_at = ?, last_error = ?,
			attempts = attempts + 1, claim_token = '`+noClaim+`' WHERE id = ? AND claim_token = ? AND status = 'sending'`)
		if err != nil {
			return err
		}
		defer settle.Close()
		// Sent rows are marked a claim at a time, and the failure counts
		// of their addresses cleared at the end, except where a later
		// bounce in the same batch needs the slate cleaned first.
		sent := map[string][]int64{}
		var tokens []string
		clearKeys := map[string]bool{}
		for _, o := range outcomes {
			key := o.Address
			switch o.Status {
			case StatusSent:
				if sent[o.Token] == nil {
					tokens = append(tokens, o.Token)
				}
				sent[o.Token] = append(sent[o.Token], o.ID)
				if key != "" {
					clearKeys[key] = true
				}
				continue
			case StatusPending:
				if o.NextAttemptAt.IsZero() {
					return fmt.Errorf("outbox row %d: a retry needs a time", o.ID)
				}
				res, err := settle.ExecContext(ctx, StatusPending, fmtTime(o.NextAttemptAt), truncateError(o.Error), o.ID, o.Token)
				if err != nil {
					return fmt.Errorf("outbox row %d: %w", o.ID, err)
				}
				if n, _ := res.RowsAffected(); n == 1 {
					t.Retried++
				}
			case StatusFailed:
				res, err := settle.ExecContext(ctx, StatusFailed, now, truncateError(o.Error), o.ID, o.Token)
				if err != nil {
					return fmt.Errorf("outbox row %d: %w", o.ID, err)
				}
				if n, _ := res.RowsAffected(); n == 0 {
					continue
				}
				t.Failed++
				if !o.Bounce || key == "" {
					continue
				}
				if clearKeys[key] {
					if err := clearBounces(ctx, tx, []any{key}); err != nil {
						return err
					}
					delete(clearKeys, key)
				}
				added, err := addBounce(ctx, tx, key, o.Error, now, suppressAfter)
				if err != nil {
					return err
				}
				if added {
					t.NewlySuppressed++
				}
			default:
				return fmt.Errorf("outbox row %d: unknown outcome %q", o.ID, o.Status)
			}
		}
		for _, token := range tokens {
			for ids := range slices.Chunk(sent[token], 500) {
				// 'sent' is 3 bytes shorter than 'sending', sent_at
				// gains 27 and the 24-byte token goes: the record keeps
				// its size, and SQLite overwrites it in place.
				res, err := tx.ExecContext(ctx, `UPDATE outbox SET status = 'sent', sent_at = ?, last_error = '',
					attempts = attempts + 1, claim_token = ''
					WHERE claim_token = ? AND status = 'sending' AND id IN (`+placeholders(len(ids))+`)`,
					int64Args(ids, now, token)...)
				if err != nil {
					return err
				}
				n, _ := res.RowsAffected()
				t.Sent += int(n)
			}
		}
		keys := make([]any, 0, len(clearKeys))
		for k := range clearKeys {
			keys = append(keys, k)
		}
		for chunk := range slices.Chunk(keys, 500) {
			if err := clearBounces(ctx, tx, chunk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return DeliveryTally{}, fmt.Errorf("store: record deliveries: %w", err)
	}
	return t, nil
}

// clearBounces forgets the failures of addresses that accepted mail.
func clearBounces(ctx context.Context, tx *sql.Tx, keys []any) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM bounce_counts WHERE address IN (`+placeholders(len(keys))+`)`, keys...)
	return err
}

// addBounce counts a permanent failure against address and suppresses it
// at the limit, reporting whether it was suppressed now.
func addBounce(ctx context.Context, tx *sql.Tx, address, reason, now string, limit int) (bool, error) {
	var failures int
	err := tx.QueryRowContext(ctx, `INSERT INTO bounce_counts (address, failures, last_at) VALUES (?, 1, ?)
		ON CONFLICT (address) DO UPDATE SET failures = bounce_counts.failures + 1, last_at = excluded.last_at
		RETURNING failures`, address, now).Scan(&failures)
	if err != nil {
		return false, err
	}
	if failures < limit {
		return false, nil
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO suppressions (address, reason, failures, created_at, cause, source)
		VALUES (?, ?, ?, ?, 'bounce', '`+sourceDelivery+`') ON CONFLICT (address) DO NOTHING`, address, truncateError(reason), failures, now)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// truncateError keeps stored reasons to a sane length.
func truncateError(s string) string {
	const max = 500
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && (s[cut]&0xC0) == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

// Suppress stops all mail to address until LiftSuppression, as an
// admin's decision (CauseManual); messages already queued for it become
// suppressed when their turn comes.
func (db *DB) Suppress(ctx context.Context, address, reason string) error {
	if address == "" {
		return errors.New("store: suppress: address is empty")
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO suppressions (address, reason, failures, created_at, cause)
			VALUES (?, ?, coalesce((SELECT failures FROM bounce_counts WHERE address = ?), 0), ?, 'manual')
			ON CONFLICT (address) DO UPDATE SET reason = excluded.reason, cause = excluded.cause`,
			address, truncateError(reason), address, fmtTime(db.Now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: suppress address: %w", err)
	}
	return nil
}

// LiftSuppression lets Herald mail address again and forgets its past
// failures, or returns ErrNotFound when it was not suppressed. Messages
// already marked suppressed stay unsent.
func (db *DB) LiftSuppression(ctx context.Context, address string) error {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM suppressions WHERE address = ?`, address)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return forgetFailures(ctx, tx, address)
	})
	if err != nil {
		return fmt.Errorf("store: lift suppression: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// IsSuppressed reports whether address is suppressed.
func (db *DB) IsSuppressed(ctx context.Context, address string) (bool, error) {
	var one int
	err := db.db.QueryRowContext(ctx, `SELECT 1 FROM suppressions WHERE address = ?`, address).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: is suppressed: %w", err)
	}
	return true, nil
}

// Suppressions lists suppressed addresses, newest first, at most limit.
func (db *DB) Suppressions(ctx context.Context, limit int) ([]Suppression, error) {
	return db.ListSuppressions(ctx, SuppressionFilter{Limit: limit})
}

// OutboxCounts counts outbox rows by status; every status is present.
func (db *DB) OutboxCounts(ctx context.Context) (map[string]int, error) {
	out := map[string]int{StatusPending: 0, StatusSending: 0, StatusSent: 0, StatusFailed: 0, StatusSuppressed: 0}
	rows, err := db.db.QueryContext(ctx, `SELECT status, count(*) FROM outbox GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("store: outbox counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("store: outbox counts: %w", err)
		}
		out[s] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: outbox counts: %w", err)
	}
	return out, nil
}

// OutboxDepth counts the messages waiting or being sent. It reads only the
// index of unsettled rows, so it stays cheap however long the history.
func (db *DB) OutboxDepth(ctx context.Context) (int, error) {
	var n int
	err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: outbox depth: %w", err)
	}
	return n, nil
}

// OldestDue returns the earliest time at which an unsettled message is (or
// was) due: its next attempt, or the end of the lease it is held under.
// It is zero when nothing waits.
func (db *DB) OldestDue(ctx context.Context) (time.Time, error) {
	var s sql.NullString
	err := db.db.QueryRowContext(ctx, `SELECT min(next_attempt_at) FROM outbox`+db.indexedBy("outbox_due")+`
		WHERE status IN ('pending', 'sending')`).Scan(&s)
	if err != nil {
		return time.Time{}, fmt.Errorf("store: oldest due: %w", err)
	}
	return parseTime(s.String), nil
}

// FailedMessages lists failed messages, newest first, at most limit,
// without their bodies.
func (db *DB) FailedMessages(ctx context.Context, limit int) ([]OutboxMessage, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id, key, kind, subscriber_id, to_addr, subject, message_id,
		attempts, last_error, created_at FROM outbox
		WHERE status = 'failed' ORDER BY created_at DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: failed messages: %w", err)
	}
	defer rows.Close()
	var out []OutboxMessage
	for rows.Next() {
		m := OutboxMessage{Status: StatusFailed}
		var created string
		if err := rows.Scan(&m.ID, &m.Key, &m.Kind, &m.SubscriberID, &m.To, &m.Subject, &m.MessageID,
			&m.Attempts, &m.LastError, &created); err != nil {
			return nil, fmt.Errorf("store: failed messages: %w", err)
		}
		m.CreatedAt = parseTime(created)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: failed messages: %w", err)
	}
	return out, nil
}

// RetryMessage puts a failed message back in the queue, due now, with a
// fresh run of attempts. It returns ErrNotFound for an unknown id and an
// error wrapping ErrConflict when the message is not failed or its body
// has been purged.
func (db *DB) RetryMessage(ctx context.Context, id int64) error {
	now := fmtTime(db.Now())
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var status string
		var purged bool
		err := tx.QueryRowContext(ctx, `SELECT status, purged FROM outbox WHERE id = ?`, id).Scan(&status, &purged)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if status != StatusFailed {
			return fmt.Errorf("message is %s, not failed: %w", status, ErrConflict)
		}
		if purged {
			return fmt.Errorf("message body was purged: %w", ErrConflict)
		}
		_, err = tx.ExecContext(ctx, `UPDATE outbox SET status = 'pending', next_attempt_at = ?, retry_from = ?,
			attempts = 0, last_error = '', claim_token = '`+noClaim+`' WHERE id = ?`, now, now, id)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("store: retry message %d: %w", id, err)
	}
	return nil
}

// ResendMessage puts a sent message back in the queue, due now, as if
// its sending had been cut short by a crash: it goes again with the same
// Message-ID, so a receiver that kept the first copy can drop the second.
// It returns ErrNotFound for an unknown id and an error wrapping
// ErrConflict when the message is not sent or its body has been purged.
func (db *DB) ResendMessage(ctx context.Context, id int64) error {
	res, err := db.db.ExecContext(ctx, `UPDATE outbox SET status = 'pending', next_attempt_at = ?, claim_token = '`+noClaim+`'
		WHERE id = ? AND status = 'sent' AND purged = 0`, fmtTime(db.Now()), id)
	if err != nil {
		return fmt.Errorf("store: resend message %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	var exists bool
	if err := db.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM outbox WHERE id = ?)`, id).Scan(&exists); err != nil {
		return fmt.Errorf("store: resend message %d: %w", id, err)
	}
	if !exists {
		return ErrNotFound
	}
	return fmt.Errorf("store: resend message %d: not sent, or its body was purged: %w", id, ErrConflict)
}

// PurgeBodies blanks the bodies and unsubscribe links of settled messages
// (sent, failed, suppressed) created before before, keeping the record of
// what was sent to whom and when. It works in small transactions so a
// large purge does not hold up delivery, and returns how many it purged.
func (db *DB) PurgeBodies(ctx context.Context, before time.Time) (int, error) {
	const chunk = 1000
	total := 0
	for {
		var n int64
		err := db.tx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `UPDATE outbox SET text_body = '', html_body = '', unsubscribe_url = '', purged = 1
				WHERE id IN (SELECT id FROM outbox`+db.indexedBy("outbox_unpurged")+`
					WHERE purged = 0 AND status IN ('sent', 'failed', 'suppressed')
					AND created_at < ? LIMIT ?)`, fmtTime(before), chunk)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("store: purge bodies: %w", err)
		}
		total += int(n)
		if n < chunk {
			return total, nil
		}
	}
}
