package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Tx is one write transaction, for a feature that decides several steps
// and needs them recorded together or not at all (a state change and the
// messages it sends). Its methods are small, one statement or two each, and
// name what they record, not why: the caller decides. A Tx is only valid
// inside the function given to InTx.
type Tx struct {
	db  *DB
	ctx context.Context
	tx  *sql.Tx
	now time.Time
}

// InTx runs fn in one write transaction, committing when fn returns nil
// and rolling back otherwise. On PostgreSQL a transaction that raced
// another is rolled back and fn runs again (see DB.tx), so fn must do
// nothing that outlives the transaction other than through tx.
func (db *DB) InTx(ctx context.Context, fn func(*Tx) error) error {
	return db.tx(ctx, func(stx *sql.Tx) error {
		return fn(&Tx{db: db, ctx: ctx, tx: stx, now: db.Now()})
	})
}

// Now is the store's clock read when the transaction began: the time
// every step of the transaction records.
func (tx *Tx) Now() time.Time { return tx.now }

// savepoint runs fn so that, when it fails, only what fn did is undone and
// the transaction can go on.
func (tx *Tx) savepoint(fn func() error) error {
	if _, err := tx.tx.ExecContext(tx.ctx, `SAVEPOINT step`); err != nil {
		return err
	}
	if err := fn(); err != nil {
		if _, rerr := tx.tx.ExecContext(tx.ctx, `ROLLBACK TO SAVEPOINT step`); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	_, err := tx.tx.ExecContext(tx.ctx, `RELEASE SAVEPOINT step`)
	return err
}

// notFound turns sql.ErrNoRows into ErrNotFound and wraps any error once.
func notFound(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store: %s: %w", what, ErrNotFound)
	default:
		return fmt.Errorf("store: %s: %w", what, err)
	}
}

// EnsureSubscriber returns the subscriber with address, creating it first
// when there is none. Both cases run the same statement, so the time taken
// does not tell a known address from a new one.
func (tx *Tx) EnsureSubscriber(address string) (Subscriber, error) {
	if address == "" {
		return Subscriber{}, errors.New("store: ensure subscriber: the address is empty")
	}
	s, err := scanSubscriber(tx.tx.QueryRowContext(tx.ctx, `INSERT INTO subscribers (address, created_at) VALUES (?, ?)
		ON CONFLICT (address) DO UPDATE SET address = excluded.address
		RETURNING `+subscriberCols, address, fmtTime(tx.now)))
	return s, notFound("ensure subscriber", err)
}

// Subscriber returns subscriber id or ErrNotFound.
func (tx *Tx) Subscriber(id int64) (Subscriber, error) {
	s, err := scanSubscriber(tx.tx.QueryRowContext(tx.ctx, `SELECT `+subscriberCols+` FROM subscribers WHERE id = ?`, id))
	return s, notFound(fmt.Sprintf("subscriber %d", id), err)
}

// SubscriberByAddress returns the subscriber with address or ErrNotFound.
// The error never contains the address.
func (tx *Tx) SubscriberByAddress(address string) (Subscriber, error) {
	s, err := scanSubscriber(tx.tx.QueryRowContext(tx.ctx, `SELECT `+subscriberCols+` FROM subscribers WHERE address = ?`, address))
	return s, notFound("subscriber by address", err)
}

// MarkSubscriberConfirmed records that subscriber id has an active
// subscription: its address is confirmed (the first time only) and no
// longer waiting to be erased.
func (tx *Tx) MarkSubscriberConfirmed(id int64) error {
	_, err := tx.tx.ExecContext(tx.ctx, `UPDATE subscribers SET last_ended_at = '',
		confirmed_at = CASE WHEN confirmed_at = '' THEN ? ELSE confirmed_at END WHERE id = ?`, fmtTime(tx.now), id)
	return notFound(fmt.Sprintf("mark subscriber %d confirmed", id), err)
}

// SetPendingAddress records address, with nonce, as the new address
// subscriber id is waiting to confirm, replacing any earlier one. It
// fails with ErrNotFound when there is no such subscriber.
func (tx *Tx) SetPendingAddress(id int64, address string, nonce int64) (Subscriber, error) {
	if address == "" || nonce == 0 {
		return Subscriber{}, errors.New("store: set pending address: an address and a nonce are required")
	}
	s, err := scanSubscriber(tx.tx.QueryRowContext(tx.ctx, `UPDATE subscribers SET pending_address = ?, pending_nonce = ?, pending_address_at = ?
		WHERE id = ? RETURNING `+subscriberCols, address, nonce, fmtTime(tx.now), id))
	return s, notFound(fmt.Sprintf("set pending address of subscriber %d", id), err)
}

// AdoptPendingAddress makes subscriber id's pending address its address,
// confirmed. It fails with ErrNotFound when there is no such subscriber
// and with ErrConflict when another subscriber has that address.
func (tx *Tx) AdoptPendingAddress(id int64) (Subscriber, error) {
	// The update may break the address's uniqueness: inside a savepoint,
	// so that on PostgreSQL, which aborts a transaction at its first
	// error, the caller's transaction goes on after a conflict.
	var s Subscriber
	err := tx.savepoint(func() error {
		var err error
		s, err = scanSubscriber(tx.tx.QueryRowContext(tx.ctx, `UPDATE subscribers SET address = pending_address, pending_address = '',
			pending_nonce = 0, pending_address_at = '', confirmed_at = CASE WHEN confirmed_at = '' THEN ? ELSE confirmed_at END
			WHERE id = ? AND pending_address <> '' RETURNING `+subscriberCols, fmtTime(tx.now), id))
		return err
	})
	if isConflict(err) {
		return Subscriber{}, fmt.Errorf("store: adopt pending address of subscriber %d: %w", id, ErrConflict)
	}
	return s, notFound(fmt.Sprintf("adopt pending address of subscriber %d", id), err)
}

// Subscription returns subscription id, whatever its status, or
// ErrNotFound.
func (tx *Tx) Subscription(id int64) (Subscription, error) {
	s, err := scanSubscription(tx.tx.QueryRowContext(tx.ctx, `SELECT `+subscriptionCols+subscriptionFrom+` WHERE sub.id = ?`, id))
	return s, notFound(fmt.Sprintf("subscription %d", id), err)
}

// PendingSubscription returns the newest pending subscription of
// subscriberID to target at frequency, or ErrNotFound.
func (tx *Tx) PendingSubscription(subscriberID int64, target Target, frequency string) (Subscription, error) {
	s, err := scanSubscription(tx.tx.QueryRowContext(tx.ctx, `SELECT `+subscriptionCols+subscriptionFrom+`
		WHERE sub.subscriber_id = ? AND sub.status = 'pending' AND coalesce(sub.topic_id, 0) = ? AND coalesce(sub.department_id, 0) = ?
		AND coalesce(sub.search_id, 0) = ? AND sub.frequency = ? ORDER BY sub.id DESC LIMIT 1`,
		subscriberID, target.TopicID, target.DepartmentID, target.SearchID, frequency))
	return s, notFound("pending subscription", err)
}

// ActiveSubscription returns subscriberID's active subscription to target
// (there is at most one), or ErrNotFound.
func (tx *Tx) ActiveSubscription(subscriberID int64, target Target) (Subscription, error) {
	s, err := scanSubscription(tx.tx.QueryRowContext(tx.ctx, `SELECT `+subscriptionCols+subscriptionFrom+`
		WHERE sub.subscriber_id = ? AND sub.status = 'active' AND coalesce(sub.topic_id, 0) = ? AND coalesce(sub.department_id, 0) = ?
		AND coalesce(sub.search_id, 0) = ?`, subscriberID, target.TopicID, target.DepartmentID, target.SearchID))
	return s, notFound("active subscription", err)
}

// AddSubscription stores a pending subscription of subscriberID to target
// at frequency and returns it.
func (tx *Tx) AddSubscription(subscriberID int64, target Target, frequency string) (Subscription, error) {
	if !ValidFrequency(frequency) || !target.valid() {
		return Subscription{}, errors.New("store: add subscription: a frequency and one target are required")
	}
	var id int64
	err := tx.tx.QueryRowContext(tx.ctx, `INSERT INTO subscriptions (subscriber_id, topic_id, department_id, search_id, frequency, status, created_at)
		VALUES (?, ?, ?, ?, ?, 'pending', ?) RETURNING id`,
		subscriberID, nullID(target.TopicID), nullID(target.DepartmentID), nullID(target.SearchID), frequency, fmtTime(tx.now)).Scan(&id)
	if err != nil {
		return Subscription{}, fmt.Errorf("store: add subscription: %w", err)
	}
	return tx.Subscription(id)
}

// RenewSubscription moves subscription id's creation time to now, so
// housekeeping keeps a pending request as long as its newest link is
// valid, and returns it.
func (tx *Tx) RenewSubscription(id int64) (Subscription, error) {
	if _, err := tx.tx.ExecContext(tx.ctx, `UPDATE subscriptions SET created_at = ? WHERE id = ?`, fmtTime(tx.now), id); err != nil {
		return Subscription{}, fmt.Errorf("store: renew subscription %d: %w", id, err)
	}
	return tx.Subscription(id)
}

// SetSubscriptionStatus records subscription id as active (confirmed now)
// or ended (now) and returns it. It does not touch the subscriber: see
// MarkSubscriberConfirmed. The schema refuses a second active
// subscription of one subscriber to one target.
func (tx *Tx) SetSubscriptionStatus(id int64, status string) (Subscription, error) {
	var q string
	switch status {
	case SubscriptionActive:
		q = `UPDATE subscriptions SET status = 'active', confirmed_at = ? WHERE id = ?`
	case SubscriptionEnded:
		q = `UPDATE subscriptions SET status = 'ended', ended_at = ? WHERE id = ?`
	default:
		return Subscription{}, fmt.Errorf("store: set subscription %d status: %q is not a status to set", id, status)
	}
	res, err := tx.tx.ExecContext(tx.ctx, q, fmtTime(tx.now), id)
	if err != nil {
		return Subscription{}, fmt.Errorf("store: set subscription %d %s: %w", id, status, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Subscription{}, fmt.Errorf("store: set subscription %d %s: %w", id, status, ErrNotFound)
	}
	s, err := tx.Subscription(id)
	if err == nil && s.SearchID != 0 {
		// The searches matched on arrival are those with an active
		// subscription.
		if err := bumpSearchesRev(tx.ctx, tx.tx); err != nil {
			return Subscription{}, fmt.Errorf("store: set subscription %d %s: %w", id, status, err)
		}
	}
	return s, err
}

// CountMail counts the outbox messages of the given kinds queued for
// subscriberID since `since`. Rate limits kept this way live in the
// outbox itself, so they survive restarts.
func (tx *Tx) CountMail(subscriberID int64, kinds []string, since time.Time) (int, error) {
	if len(kinds) == 0 {
		return 0, nil
	}
	args := []any{subscriberID}
	for _, k := range kinds {
		args = append(args, k)
	}
	var n int
	err := tx.tx.QueryRowContext(tx.ctx, `SELECT count(*) FROM outbox WHERE subscriber_id = ? AND kind IN (`+placeholders(len(kinds))+`)
		AND created_at >= ?`, append(args, fmtTime(since))...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count mail of subscriber %d: %w", subscriberID, err)
	}
	return n, nil
}

// Enqueue adds msgs to the outbox, as EnqueueEmails does, inside the
// transaction, and returns how many were new.
func (tx *Tx) Enqueue(msgs ...OutboxMessage) (int, error) {
	n, err := tx.db.insertOutbox(tx.ctx, tx.tx, tx.now, msgs)
	if err != nil {
		return 0, fmt.Errorf("store: enqueue emails: %w", err)
	}
	return n, nil
}
