package store

// A subscriber's data: everything stored about one address, for its
// export and its erasure, and the housekeeping that erases what is no
// longer needed.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// StoredMessage is an outbox row as a subscriber's data export shows it.
type StoredMessage struct {
	Key       string    `json:"key"`
	Kind      string    `json:"kind"`
	To        string    `json:"to"`
	Subject   string    `json:"subject"`
	Text      string    `json:"text,omitempty"`
	HTML      string    `json:"html,omitempty"`
	Status    string    `json:"status"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	SentAt    time.Time `json:"sent_at,omitzero"`
	// Purged: the body was deleted after delivery.
	Purged bool `json:"purged,omitempty"`
}

// DeliveryRecord is what the delivery side keeps about an address.
type DeliveryRecord struct {
	Suppressed        bool      `json:"suppressed"`
	SuppressionReason string    `json:"suppression_reason,omitempty"`
	SuppressionCause  string    `json:"suppression_cause,omitempty"`
	SuppressedAt      time.Time `json:"suppressed_at,omitzero"`
	PermanentFailures int       `json:"permanent_failures"`
	LastFailureAt     time.Time `json:"last_failure_at,omitzero"`
}

// SubscriberData is everything Herald stores about one address.
type SubscriberData struct {
	Address       string          `json:"address"`
	Subscribers   []Subscriber    `json:"subscribers"`
	Subscriptions []Subscription  `json:"subscriptions"`
	Messages      []StoredMessage `json:"messages"`
	Delivery      DeliveryRecord  `json:"delivery"`
}

// subscribersFor returns the subscribers whose address or pending address
// is addr.
func subscribersFor(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, addr string) ([]Subscriber, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+subscriberCols+` FROM subscribers WHERE address = ? OR pending_address = ? ORDER BY id`, addr, addr)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Subscriber{}
	for rows.Next() {
		s, err := scanSubscriber(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// SubscriberRecord gathers everything stored about address: the
// subscriber (also when it is only a pending new address), every
// subscription including ended ones, every message in the outbox to that
// subscriber or that address, and the delivery side's suppression and
// failure records. It fails with ErrNotFound when there is nothing.
func (db *DB) SubscriberRecord(ctx context.Context, address string) (SubscriberData, error) {
	out := SubscriberData{Address: address, Subscriptions: []Subscription{}, Messages: []StoredMessage{}}
	// A read transaction gives one consistent snapshot.
	tx, err := db.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return out, fmt.Errorf("store: subscriber record: %w", err)
	}
	defer tx.Rollback()
	fail := func(err error) (SubscriberData, error) {
		return SubscriberData{}, fmt.Errorf("store: subscriber record: %w", err)
	}
	if out.Subscribers, err = subscribersFor(ctx, tx, address); err != nil {
		return fail(err)
	}
	ids := []any{}
	for _, s := range out.Subscribers {
		ids = append(ids, s.ID)
		subs, err := querySubscriptions(ctx, tx, `sub.subscriber_id = ? ORDER BY sub.id`, s.ID)
		if err != nil {
			return fail(err)
		}
		out.Subscriptions = append(out.Subscriptions, subs...)
	}
	q := `SELECT key, kind, to_addr, subject, text_body, html_body, status, attempts, last_error, created_at, sent_at, purged
		FROM outbox WHERE to_addr = ?`
	args := []any{address}
	if len(ids) > 0 {
		q += ` OR subscriber_id IN (` + placeholders(len(ids)) + `)`
		args = append(args, ids...)
	}
	rows, err := tx.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	for rows.Next() {
		var m StoredMessage
		var created, sent string
		if err := rows.Scan(&m.Key, &m.Kind, &m.To, &m.Subject, &m.Text, &m.HTML, &m.Status, &m.Attempts, &m.LastError,
			&created, &sent, &m.Purged); err != nil {
			return fail(err)
		}
		m.CreatedAt, m.SentAt = parseTime(created), parseTime(sent)
		out.Messages = append(out.Messages, m)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	var reason, cause, at string
	err = tx.QueryRowContext(ctx, `SELECT reason, cause, created_at FROM suppressions WHERE address = ?`, address).Scan(&reason, &cause, &at)
	switch {
	case err == nil:
		out.Delivery.Suppressed, out.Delivery.SuppressionReason, out.Delivery.SuppressedAt = true, reason, parseTime(at)
		out.Delivery.SuppressionCause = cause
	case !errors.Is(err, sql.ErrNoRows):
		return fail(err)
	}
	err = tx.QueryRowContext(ctx, `SELECT failures, last_at FROM bounce_counts WHERE address = ?`, address).Scan(&out.Delivery.PermanentFailures, &at)
	switch {
	case err == nil:
		out.Delivery.LastFailureAt = parseTime(at)
	case !errors.Is(err, sql.ErrNoRows):
		return fail(err)
	}
	if len(out.Subscribers) == 0 && len(out.Messages) == 0 && !out.Delivery.Suppressed && out.Delivery.PermanentFailures == 0 {
		return SubscriberData{}, fmt.Errorf("store: subscriber record: %w", ErrNotFound)
	}
	return out, nil
}

// EraseSubscriber deletes everything stored about address: the
// subscribers with that address or pending address, their subscriptions,
// every outbox row to them or to the address, and the address's suppression
// and failure records. It reports whether anything was there.
func (db *DB) EraseSubscriber(ctx context.Context, address string) (bool, error) {
	found := false
	err := db.tx(ctx, func(tx *sql.Tx) error {
		found = false
		subs, err := subscribersFor(ctx, tx, address)
		if err != nil {
			return err
		}
		for _, s := range subs {
			if err := eraseSubscriberTx(ctx, tx, s.ID); err != nil {
				return err
			}
			found = true
		}
		for _, q := range []string{
			`DELETE FROM outbox WHERE to_addr = ?`,
			`DELETE FROM suppressions WHERE address = ?`,
			`DELETE FROM bounce_counts WHERE address = ?`,
			`DELETE FROM transient_bounces WHERE address = ?`,
		} {
			res, err := tx.ExecContext(ctx, q, address)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				found = true
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: erase subscriber: %w", err)
	}
	return found, nil
}

// eraseSubscriberTx deletes a subscriber, its subscriptions (by cascade)
// and its outbox rows.
func eraseSubscriberTx(ctx context.Context, tx *sql.Tx, id int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE subscriber_id = ?`, id); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM subscribers WHERE id = ?`, id)
	return err
}

// DeleteExpiredPending deletes pending subscriptions requested before
// `before`: their confirmation links have expired, so nothing can activate
// them.
func (db *DB) DeleteExpiredPending(ctx context.Context, before time.Time) (int, error) {
	res, err := db.db.ExecContext(ctx, `DELETE FROM subscriptions WHERE status = 'pending' AND created_at < ?`, fmtTime(before))
	if err != nil {
		return 0, fmt.Errorf("store: delete expired pending subscriptions: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// EraseIdleSubscribers erases subscribers with no active or pending
// subscription whose last subscription ended before endedBefore, or who
// never confirmed an address and were created before unconfirmedBefore,
// with their subscriptions and outbox rows. It works in transactions of a
// few hundred subscribers and returns how many it erased.
func (db *DB) EraseIdleSubscribers(ctx context.Context, endedBefore, unconfirmedBefore time.Time) (int, error) {
	total := 0
	// Two index-driven candidate lists rather than one OR, which SQLite
	// would answer by scanning every subscriber.
	for _, cand := range []struct {
		where  string
		before time.Time
	}{
		{`last_ended_at <> '' AND last_ended_at < ?`, endedBefore},
		{`confirmed_at = '' AND created_at < ?`, unconfirmedBefore},
	} {
		for {
			n := 0
			err := db.tx(ctx, func(tx *sql.Tx) error {
				n = 0
				rows, err := tx.QueryContext(ctx, `SELECT id FROM subscribers s WHERE `+cand.where+`
					AND NOT EXISTS (SELECT 1 FROM subscriptions WHERE subscriber_id = s.id AND status IN ('active', 'pending'))
					LIMIT 500`, fmtTime(cand.before))
				if err != nil {
					return err
				}
				var ids []int64
				for rows.Next() {
					var id int64
					if err := rows.Scan(&id); err != nil {
						rows.Close()
						return err
					}
					ids = append(ids, id)
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return err
				}
				for _, id := range ids {
					if err := eraseSubscriberTx(ctx, tx, id); err != nil {
						return err
					}
				}
				n = len(ids)
				return nil
			})
			if err != nil {
				return total, fmt.Errorf("store: erase idle subscribers: %w", err)
			}
			total += n
			if n == 0 {
				break
			}
		}
	}
	return total, nil
}
