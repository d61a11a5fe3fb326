package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// WebSub request modes.
const (
	WebSubSubscribe   = "subscribe"
	WebSubUnsubscribe = "unsubscribe"
)

// WebSubRequest is a subscribe or unsubscribe request to Herald's hub that
// waits for verification of intent.
type WebSubRequest struct {
	ID            int64
	Mode          string // WebSubSubscribe or WebSubUnsubscribe
	Topic         string // feed URL
	Callback      string
	Secret        string
	LeaseSeconds  int
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	CreatedAt     time.Time
}

// WebSubSubscription is a verified subscription to one of Herald's feeds.
type WebSubSubscription struct {
	ID             int64     `json:"id"`
	Topic          string    `json:"topic"`
	Callback       string    `json:"callback"`
	Secret         string    `json:"-"`
	LeaseSeconds   int       `json:"lease_seconds"`
	ExpiresAt      time.Time `json:"expires_at"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	LastDeliveryAt time.Time `json:"last_delivery_at,omitzero"`
	LastError      string    `json:"last_error,omitempty"`
}

// WebSubDelivery is content distribution owed to one subscriber: the newest
// bytes of its topic, due at NextAttemptAt.
type WebSubDelivery struct {
	Subscription  WebSubSubscription
	Seq           int64
	Attempts      int
	NextAttemptAt time.Time
}

// AddWebSubRequest records a request awaiting verification, replacing any
// earlier unverified request for the same topic and callback (the earlier
// one's id stops existing, so a verification of it in flight is dropped).
func (db *DB) AddWebSubRequest(ctx context.Context, r WebSubRequest) (WebSubRequest, error) {
	if r.Mode != WebSubSubscribe && r.Mode != WebSubUnsubscribe {
		return WebSubRequest{}, fmt.Errorf("store: websub request: mode %q is not subscribe or unsubscribe", r.Mode)
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		now := db.Now().UTC()
		if _, err := tx.ExecContext(ctx, `DELETE FROM websub_requests WHERE topic = ? AND callback = ?`, r.Topic, r.Callback); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO websub_requests (mode, topic, callback, secret, lease_seconds, next_attempt_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, r.Mode, r.Topic, r.Callback, r.Secret, r.LeaseSeconds, fmtTime(now), fmtTime(now)).Scan(&r.ID)
		if err != nil {
			return err
		}
		r.Attempts, r.NextAttemptAt, r.CreatedAt, r.LastError = 0, now, now, ""
		return nil
	})
	if err != nil {
		return WebSubRequest{}, fmt.Errorf("store: websub request for %q: %w", r.Topic, err)
	}
	return r, nil
}

// DueWebSubRequests returns up to limit requests whose verification is due.
func (db *DB) DueWebSubRequests(ctx context.Context, limit int) ([]WebSubRequest, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id, mode, topic, callback, secret, lease_seconds, attempts, next_attempt_at,
		last_error, created_at FROM websub_requests WHERE next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`,
		fmtTime(db.Now()), limit)
	if err != nil {
		return nil, fmt.Errorf("store: due websub requests: %w", err)
	}
	defer rows.Close()
	var out []WebSubRequest
	for rows.Next() {
		var r WebSubRequest
		var next, created string
		if err := rows.Scan(&r.ID, &r.Mode, &r.Topic, &r.Callback, &r.Secret, &r.LeaseSeconds, &r.Attempts, &next,
			&r.LastError, &created); err != nil {
			return nil, fmt.Errorf("store: due websub requests: %w", err)
		}
		r.NextAttemptAt, r.CreatedAt = parseTime(next), parseTime(created)
		out = append(out, r)
	}
	return out, rows.Err()
}

// CompleteWebSubRequest applies a verified request: a subscription is
// created or renewed with the request's secret and lease, or removed. It
// returns false when the request was replaced or removed meanwhile.
func (db *DB) CompleteWebSubRequest(ctx context.Context, id int64) (bool, error) {
	applied := false
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var mode, topic, callback, secret string
		var lease int
		err := tx.QueryRowContext(ctx, `SELECT mode, topic, callback, secret, lease_seconds FROM websub_requests WHERE id = ?`, id).
			Scan(&mode, &topic, &callback, &secret, &lease)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		nowT := db.Now().UTC()
		now := fmtTime(nowT)
		if mode == WebSubSubscribe {
			_, err = tx.ExecContext(ctx, `INSERT INTO websub_subscriptions (topic, callback, secret, lease_seconds, expires_at, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (topic, callback) DO UPDATE SET secret = excluded.secret, lease_seconds = excluded.lease_seconds,
					expires_at = excluded.expires_at, updated_at = excluded.updated_at, last_error = ''`,
				topic, callback, secret, lease, fmtTime(nowT.Add(time.Duration(lease)*time.Second)), now, now)
		} else {
			_, err = tx.ExecContext(ctx, `DELETE FROM websub_subscriptions WHERE topic = ? AND callback = ?`, topic, callback)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM websub_requests WHERE id = ?`, id); err != nil {
			return err
		}
		applied = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: complete websub request %d: %w", id, err)
	}
	return applied, nil
}

// RetryWebSubRequest records a failed verification attempt; with a zero
// retryAt the request is dropped.
func (db *DB) RetryWebSubRequest(ctx context.Context, id int64, errText string, retryAt time.Time) error {
	var err error
	if retryAt.IsZero() {
		_, err = db.db.ExecContext(ctx, `DELETE FROM websub_requests WHERE id = ?`, id)
	} else {
		_, err = db.db.ExecContext(ctx, `UPDATE websub_requests SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?`,
			fmtTime(retryAt), errText, id)
	}
	if err != nil {
		return fmt.Errorf("store: retry websub request %d: %w", id, err)
	}
	return nil
}

const webSubCols = `s.id, s.topic, s.callback, s.secret, s.lease_seconds, s.expires_at, s.created_at, s.updated_at,
	s.last_delivery_at, s.last_error`

func scanWebSub(row interface{ Scan(...any) error }, extra ...any) (WebSubSubscription, error) {
	var s WebSubSubscription
	var exp, created, updated, last string
	dest := append([]any{&s.ID, &s.Topic, &s.Callback, &s.Secret, &s.LeaseSeconds, &exp, &created, &updated, &last, &s.LastError}, extra...)
	if err := row.Scan(dest...); err != nil {
		return WebSubSubscription{}, err
	}
	s.ExpiresAt, s.CreatedAt, s.UpdatedAt, s.LastDeliveryAt = parseTime(exp), parseTime(created), parseTime(updated), parseTime(last)
	return s, nil
}

// WebSubSubscriptions lists the subscriptions that have not expired, by
// topic and callback.
func (db *DB) WebSubSubscriptions(ctx context.Context) ([]WebSubSubscription, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+webSubCols+` FROM websub_subscriptions s WHERE s.expires_at > ?
		ORDER BY s.topic, s.callback`, fmtTime(db.Now()))
	if err != nil {
		return nil, fmt.Errorf("store: websub subscriptions: %w", err)
	}
	defer rows.Close()
	var out []WebSubSubscription
	for rows.Next() {
		s, err := scanWebSub(rows)
		if err != nil {
			return nil, fmt.Errorf("store: websub subscriptions: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// QueueWebSubDeliveries owes every live subscriber of the given topics a
// delivery of the topic's newest bytes, due now. It returns how many
// subscribers were queued.
func (db *DB) QueueWebSubDeliveries(ctx context.Context, topics []string) (int, error) {
	if len(topics) == 0 {
		return 0, nil
	}
	now := fmtTime(db.Now())
	args := []any{now, now, now}
	for _, t := range topics {
		args = append(args, t)
	}
	res, err := db.db.ExecContext(ctx, `INSERT INTO websub_deliveries (subscription_id, next_attempt_at, created_at)
		SELECT id, ?, ? FROM websub_subscriptions WHERE expires_at > ? AND topic IN (`+placeholders(len(topics))+`)
		ON CONFLICT (subscription_id) DO UPDATE SET seq = websub_deliveries.seq + 1, attempts = 0, next_attempt_at = excluded.next_attempt_at,
			last_error = ''`, args...)
	if err != nil {
		return 0, fmt.Errorf("store: queue websub deliveries: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// DueWebSubDeliveries returns up to limit deliveries that are due, with
// their subscriptions. Deliveries of expired subscriptions are dropped.
func (db *DB) DueWebSubDeliveries(ctx context.Context, limit int) ([]WebSubDelivery, error) {
	now := fmtTime(db.Now())
	if _, err := db.db.ExecContext(ctx, `DELETE FROM websub_deliveries WHERE subscription_id IN
		(SELECT id FROM websub_subscriptions WHERE expires_at <= ?)`, now); err != nil {
		return nil, fmt.Errorf("store: due websub deliveries: %w", err)
	}
	rows, err := db.db.QueryContext(ctx, `SELECT `+webSubCols+`, d.seq, d.attempts, d.next_attempt_at FROM websub_deliveries d
		JOIN websub_subscriptions s ON s.id = d.subscription_id WHERE d.next_attempt_at <= ?
		ORDER BY d.next_attempt_at, d.subscription_id LIMIT ?`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("store: due websub deliveries: %w", err)
	}
	defer rows.Close()
	var out []WebSubDelivery
	for rows.Next() {
		var d WebSubDelivery
		var next string
		s, err := scanWebSub(rows, &d.Seq, &d.Attempts, &next)
		if err != nil {
			return nil, fmt.Errorf("store: due websub deliveries: %w", err)
		}
		d.Subscription, d.NextAttemptAt = s, parseTime(next)
		out = append(out, d)
	}
	return out, rows.Err()
}

// FinishWebSubDelivery records the outcome of one delivery attempt. With
// an empty errText it succeeded; otherwise it is retried at retryAt, or
// given up when retryAt is zero. A delivery queued again since it was
// taken (a newer Seq) stays due either way.
func (db *DB) FinishWebSubDelivery(ctx context.Context, d WebSubDelivery, errText string, retryAt time.Time) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		now := fmtTime(db.Now())
		id := d.Subscription.ID
		if errText == "" {
			if _, err := tx.ExecContext(ctx, `UPDATE websub_subscriptions SET last_delivery_at = ?, last_error = '' WHERE id = ?`, now, id); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `DELETE FROM websub_deliveries WHERE subscription_id = ? AND seq = ?`, id, d.Seq)
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE websub_subscriptions SET last_error = ? WHERE id = ?`, errText, id); err != nil {
			return err
		}
		if retryAt.IsZero() {
			_, err := tx.ExecContext(ctx, `DELETE FROM websub_deliveries WHERE subscription_id = ? AND seq = ?`, id, d.Seq)
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE websub_deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?
			WHERE subscription_id = ? AND seq = ?`, fmtTime(retryAt), errText, id, d.Seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: finish websub delivery to subscription %d: %w", d.Subscription.ID, err)
	}
	return nil
}

// RemoveWebSubSubscription deletes a subscription (and what it was owed),
// for a subscriber that answered 410 Gone.
func (db *DB) RemoveWebSubSubscription(ctx context.Context, id int64) error {
	if _, err := db.db.ExecContext(ctx, `DELETE FROM websub_subscriptions WHERE id = ?`, id); err != nil {
		return fmt.Errorf("store: remove websub subscription %d: %w", id, err)
	}
	return nil
}

// PurgeExpiredWebSub deletes subscriptions whose lease ended before now.
func (db *DB) PurgeExpiredWebSub(ctx context.Context) (int, error) {
	res, err := db.db.ExecContext(ctx, `DELETE FROM websub_subscriptions WHERE expires_at <= ?`, fmtTime(db.Now()))
	if err != nil {
		return 0, fmt.Errorf("store: purge expired websub subscriptions: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// NextWebSubWork returns when the earliest pending verification or
// delivery is due; ok is false when nothing is pending.
func (db *DB) NextWebSubWork(ctx context.Context) (at time.Time, ok bool, err error) {
	var next sql.NullString
	err = db.db.QueryRowContext(ctx, `SELECT min(t) FROM (SELECT min(next_attempt_at) AS t FROM websub_requests
		UNION ALL SELECT min(next_attempt_at) FROM websub_deliveries) AS due`).Scan(&next)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("store: next websub work: %w", err)
	}
	if !next.Valid || next.String == "" {
		return time.Time{}, false, nil
	}
	return parseTime(next.String), true, nil
}
