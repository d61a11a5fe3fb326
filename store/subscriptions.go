package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// SubscriptionByID returns one subscription, whatever its status, or
// ErrNotFound.
func (db *DB) SubscriptionByID(ctx context.Context, id int64) (Subscription, error) {
	s, err := scanSubscription(db.db.QueryRowContext(ctx, `SELECT `+subscriptionCols+subscriptionFrom+` WHERE sub.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Subscription{}, fmt.Errorf("store: subscription %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("store: subscription %d: %w", id, err)
	}
	return s, nil
}

// Subscriptions lists a subscriber's active subscriptions by name.
func (db *DB) Subscriptions(ctx context.Context, subscriberID int64) ([]Subscription, error) {
	out, err := querySubscriptions(ctx, db.db, `sub.subscriber_id = ? AND sub.status = 'active'
		ORDER BY `+subscriptionOrder, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("store: subscriptions of %d: %w", subscriberID, err)
	}
	return out, nil
}

// ChangeFrequency sets the frequency of one of a subscriber's active
// subscriptions, or fails with ErrNotFound.
func (db *DB) ChangeFrequency(ctx context.Context, subscriberID, subscriptionID int64, frequency string) (Subscription, error) {
	if !ValidFrequency(frequency) {
		return Subscription{}, fmt.Errorf("store: change frequency: %q is not a frequency", frequency)
	}
	var out Subscription
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE subscriptions SET frequency = ? WHERE id = ? AND subscriber_id = ? AND status = 'active'`,
			frequency, subscriptionID, subscriberID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		out, err = scanSubscription(tx.QueryRowContext(ctx, `SELECT `+subscriptionCols+subscriptionFrom+` WHERE sub.id = ?`, subscriptionID))
		return err
	})
	if err != nil {
		return Subscription{}, fmt.Errorf("store: change frequency of subscription %d: %w", subscriptionID, err)
	}
	return out, nil
}

// EndFilter selects subscriptions to end. SubscriberID or SubscriptionID
// must be set; when both are, the subscription must belong to the
// subscriber. Frequency, when set, narrows to that frequency.
type EndFilter struct {
	SubscriberID   int64
	SubscriptionID int64
	Frequency      string
}

// EndSubscriptions ends the active and pending subscriptions f selects and
// returns them. Ending what has already ended is not an error: the result is
// empty. When a subscriber is left with no active subscription, the time is
// recorded so housekeeping erases the address later.
func (db *DB) EndSubscriptions(ctx context.Context, f EndFilter) ([]Subscription, error) {
	if f.SubscriberID == 0 && f.SubscriptionID == 0 {
		return nil, fmt.Errorf("store: end subscriptions: a subscriber or a subscription is required")
	}
	where := []string{"sub.status IN ('active', 'pending')"}
	var args []any
	if f.SubscriberID != 0 {
		where = append(where, "sub.subscriber_id = ?")
		args = append(args, f.SubscriberID)
	}
	if f.SubscriptionID != 0 {
		where = append(where, "sub.id = ?")
		args = append(args, f.SubscriptionID)
	}
	if f.Frequency != "" {
		where = append(where, "sub.frequency = ?")
		args = append(args, f.Frequency)
	}
	var out []Subscription
	err := db.tx(ctx, func(tx *sql.Tx) error {
		nowT := db.Now()
		now := fmtTime(nowT)
		var err error
		out, err = querySubscriptions(ctx, tx, strings.Join(where, " AND ")+` ORDER BY `+subscriptionOrder, args...)
		if err != nil {
			return err
		}
		subscribers := map[int64]bool{}
		searches := false
		for i := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE subscriptions SET status = 'ended', ended_at = ? WHERE id = ?`, now, out[i].ID); err != nil {
				return err
			}
			searches = searches || (out[i].SearchID != 0 && out[i].Status == SubscriptionActive)
			out[i].Status, out[i].EndedAt = SubscriptionEnded, parseTime(now)
			subscribers[out[i].SubscriberID] = true
		}
		if searches {
			if err := bumpSearchesRev(ctx, tx); err != nil {
				return err
			}
		}
		for id := range subscribers {
			if err := markIdle(ctx, tx, id, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: end subscriptions: %w", err)
	}
	return out, nil
}

// ImportSubscription stores an active subscription brought from another
// system where the address already gave its consent: the subscriber is
// created, confirmed, if new, and an active subscription to the same target
// takes the given frequency. It reports whether the subscriber is new.
func (db *DB) ImportSubscription(ctx context.Context, address string, target Target, frequency string) (newSubscriber bool, err error) {
	if address == "" || !ValidFrequency(frequency) || !target.valid() {
		return false, fmt.Errorf("store: import subscription: address, frequency and one target are required")
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		now := fmtTime(db.Now())
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO subscribers (address, created_at, confirmed_at) VALUES (?, ?, ?)
			ON CONFLICT (address) DO NOTHING RETURNING id`, address, now, now).Scan(&id)
		newSubscriber = err == nil
		if errors.Is(err, sql.ErrNoRows) {
			err = tx.QueryRowContext(ctx, `SELECT id FROM subscribers WHERE address = ?`, address).Scan(&id)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE subscribers SET last_ended_at = '',
			confirmed_at = CASE WHEN confirmed_at = '' THEN ? ELSE confirmed_at END WHERE id = ?`, now, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE subscriptions SET frequency = ? WHERE subscriber_id = ? AND status = 'active'
			AND coalesce(topic_id, 0) = ? AND coalesce(department_id, 0) = ? AND coalesce(search_id, 0) = ?`,
			frequency, id, target.TopicID, target.DepartmentID, target.SearchID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO subscriptions (subscriber_id, topic_id, department_id, search_id, frequency, status,
			created_at, confirmed_at) VALUES (?, ?, ?, ?, ?, 'active', ?, ?)`,
			id, nullID(target.TopicID), nullID(target.DepartmentID), nullID(target.SearchID), frequency, now, now)
		if err != nil || target.SearchID == 0 {
			return err
		}
		return bumpSearchesRev(ctx, tx)
	})
	if err != nil {
		return false, fmt.Errorf("store: import subscription: %w", err)
	}
	return newSubscriber, nil
}

// CountSubscriptions counts the active subscriptions.
func (db *DB) CountSubscriptions(ctx context.Context) (int, error) {
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM subscriptions WHERE status = 'active'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count subscriptions: %w", err)
	}
	return n, nil
}

// EachSubscription calls fn with every active subscription and its
// subscriber's address, in subscription order. It reads a thousand at a
// time, so fn may take its time without holding a read open.
func (db *DB) EachSubscription(ctx context.Context, fn func(address string, s Subscription) error) error {
	var after int64
	for {
		rows, err := db.db.QueryContext(ctx, `SELECT `+subscriptionCols+`, s.address`+subscriptionFrom+`
			JOIN subscribers s ON s.id = sub.subscriber_id WHERE sub.status = 'active' AND sub.id > ? ORDER BY sub.id LIMIT 1000`, after)
		if err != nil {
			return fmt.Errorf("store: each subscription: %w", err)
		}
		type row struct {
			addr string
			sub  Subscription
		}
		var page []row
		for rows.Next() {
			var r row
			if r.sub, err = scanSubscription(rows, &r.addr); err != nil {
				rows.Close()
				return fmt.Errorf("store: each subscription: %w", err)
			}
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: each subscription: %w", err)
		}
		for _, r := range page {
			if err := fn(r.addr, r.sub); err != nil {
				return err
			}
		}
		if len(page) < 1000 {
			return nil
		}
		after = page[len(page)-1].sub.ID
	}
}
