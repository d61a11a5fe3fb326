package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Subscription frequencies.
const (
	FrequencyImmediately = "immediately"
	FrequencyDaily       = "daily"
	FrequencyWeekly      = "weekly"
)

// Frequencies returns the accepted values of Subscription.Frequency, most
// frequent first, in a fresh slice the caller may keep or change.
func Frequencies() []string {
	return []string{FrequencyImmediately, FrequencyDaily, FrequencyWeekly}
}

// ValidFrequency reports whether f is one of Frequencies.
func ValidFrequency(f string) bool {
	return f == FrequencyImmediately || f == FrequencyDaily || f == FrequencyWeekly
}

// Subscription statuses.
const (
	SubscriptionPending = "pending"
	SubscriptionActive  = "active"
	SubscriptionEnded   = "ended"
)

// Subscriber is one email address that follows topics or departments.
//
// Addresses here, and in every method that takes one, are in the canonical
// form herald/alerts/address gives (ASCII, lower case, punycode domain);
// the store keeps and compares them as given, so a caller that skipped the
// rule would make a second subscriber for the same mailbox.
type Subscriber struct {
	ID      int64  `json:"id"`
	Address string `json:"address"`
	// CreatedAt is when the address was first given to Herald.
	CreatedAt time.Time `json:"created_at"`
	// ConfirmedAt is when the address first proved it receives our mail.
	ConfirmedAt time.Time `json:"confirmed_at,omitzero"`
	// PendingAddress is a new address waiting to be confirmed.
	PendingAddress   string    `json:"pending_address,omitempty"`
	PendingNonce     int64     `json:"-"`
	PendingAddressAt time.Time `json:"pending_address_at,omitzero"`
	// LastEndedAt is when the last active subscription ended (zero while
	// one is active); the subscriber is erased some time after it.
	LastEndedAt time.Time `json:"last_ended_at,omitzero"`
}

// Target names what a subscription follows: set exactly one of the ids.
type Target struct {
	TopicID      int64
	DepartmentID int64
}

// Subscription is a subscriber's wish to hear about a topic or a
// department at a frequency.
type Subscription struct {
	ID           int64 `json:"id"`
	SubscriberID int64 `json:"-"`
	TopicID      int64 `json:"-"`
	DepartmentID int64 `json:"-"`
	// Kind is "topic" or "department".
	Kind string `json:"kind"`
	// Slug and Name are the topic's slug and title, or the department's
	// slug and name.
	Slug         string    `json:"slug"`
	Name         string    `json:"name"`
	TopicRetired bool      `json:"topic_retired,omitempty"`
	Frequency    string    `json:"frequency"`
	Status       string    `json:"status"`
	CreatedAt    time.Time `json:"created_at"`
	ConfirmedAt  time.Time `json:"confirmed_at,omitzero"`
	EndedAt      time.Time `json:"ended_at,omitzero"`
}

// Target returns what the subscription follows.
func (s Subscription) Target() Target {
	return Target{TopicID: s.TopicID, DepartmentID: s.DepartmentID}
}

const subscriberCols = `id, address, created_at, confirmed_at, pending_address, pending_nonce, pending_address_at, last_ended_at`

func scanSubscriber(row interface{ Scan(...any) error }) (Subscriber, error) {
	var s Subscriber
	var created, confirmed, pendingAt, ended string
	err := row.Scan(&s.ID, &s.Address, &created, &confirmed, &s.PendingAddress, &s.PendingNonce, &pendingAt, &ended)
	s.CreatedAt, s.ConfirmedAt, s.PendingAddressAt, s.LastEndedAt = parseTime(created), parseTime(confirmed), parseTime(pendingAt), parseTime(ended)
	return s, err
}

const subscriptionCols = `sub.id, sub.subscriber_id, ifnull(sub.topic_id, 0), ifnull(sub.department_id, 0),
	coalesce(t.slug, d.slug, ''), coalesce(t.title, d.name, ''), ifnull(t.retired_at, ''),
	sub.frequency, sub.status, sub.created_at, sub.confirmed_at, sub.ended_at`

const subscriptionFrom = ` FROM subscriptions sub LEFT JOIN topics t ON t.id = sub.topic_id
	LEFT JOIN departments d ON d.id = sub.department_id`

func scanSubscription(row interface{ Scan(...any) error }, extra ...any) (Subscription, error) {
	var s Subscription
	var retired, created, confirmed, ended string
	dest := []any{&s.ID, &s.SubscriberID, &s.TopicID, &s.DepartmentID, &s.Slug, &s.Name, &retired,
		&s.Frequency, &s.Status, &created, &confirmed, &ended}
	err := row.Scan(append(dest, extra...)...)
	s.Kind = "department"
	if s.TopicID != 0 {
		s.Kind = "topic"
	}
	s.TopicRetired = retired != ""
	s.CreatedAt, s.ConfirmedAt, s.EndedAt = parseTime(created), parseTime(confirmed), parseTime(ended)
	return s, err
}

func querySubscriptions(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, where string, args ...any) ([]Subscription, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+subscriptionCols+subscriptionFrom+` WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Subscription{}
	for rows.Next() {
		s, err := scanSubscription(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// nullID turns 0 into SQL NULL for the optional target columns.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// SubscriberByID returns one subscriber or ErrNotFound.
func (db *DB) SubscriberByID(ctx context.Context, id int64) (Subscriber, error) {
	s, err := scanSubscriber(db.db.QueryRowContext(ctx, `SELECT `+subscriberCols+` FROM subscribers WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Subscriber{}, fmt.Errorf("store: subscriber %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Subscriber{}, fmt.Errorf("store: subscriber %d: %w", id, err)
	}
	return s, nil
}

// SubscriberByAddress returns the subscriber with the address, given in
// its canonical form, or ErrNotFound. The error never contains the address.
func (db *DB) SubscriberByAddress(ctx context.Context, address string) (Subscriber, error) {
	s, err := scanSubscriber(db.db.QueryRowContext(ctx, `SELECT `+subscriberCols+` FROM subscribers WHERE address = ?`, address))
	if errors.Is(err, sql.ErrNoRows) {
		return Subscriber{}, fmt.Errorf("store: subscriber by address: %w", ErrNotFound)
	}
	if err != nil {
		return Subscriber{}, fmt.Errorf("store: subscriber by address: %w", err)
	}
	return s, nil
}

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
		ORDER BY coalesce(t.title, d.name), sub.id`, subscriberID)
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
		out, err = querySubscriptions(ctx, tx, strings.Join(where, " AND ")+` ORDER BY coalesce(t.title, d.name), sub.id`, args...)
		if err != nil {
			return err
		}
		subscribers := map[int64]bool{}
		for i := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE subscriptions SET status = 'ended', ended_at = ? WHERE id = ?`, now, out[i].ID); err != nil {
				return err
			}
			out[i].Status, out[i].EndedAt = SubscriptionEnded, parseTime(now)
			subscribers[out[i].SubscriberID] = true
		}
		for id := range subscribers {
			if _, err := tx.ExecContext(ctx, `UPDATE subscribers SET last_ended_at = ? WHERE id = ? AND last_ended_at = ''
				AND NOT EXISTS (SELECT 1 FROM subscriptions WHERE subscriber_id = subscribers.id AND status = 'active')`, now, id); err != nil {
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

// SubscriberCounts returns, for each topic slug, the number of active
// subscriptions per frequency.
func (db *DB) SubscriberCounts(ctx context.Context) (map[string]map[string]int, error) {
	return db.subscriberCounts(ctx, `SELECT t.slug, sub.frequency, count(*) FROM subscriptions sub
		JOIN topics t ON t.id = sub.topic_id WHERE sub.status = 'active' GROUP BY t.slug, sub.frequency`)
}

// DepartmentSubscriberCounts returns, for each department slug, the number
// of active subscriptions per frequency.
func (db *DB) DepartmentSubscriberCounts(ctx context.Context) (map[string]map[string]int, error) {
	return db.subscriberCounts(ctx, `SELECT d.slug, sub.frequency, count(*) FROM subscriptions sub
		JOIN departments d ON d.id = sub.department_id WHERE sub.status = 'active' GROUP BY d.slug, sub.frequency`)
}

func (db *DB) subscriberCounts(ctx context.Context, q string) (map[string]map[string]int, error) {
	rows, err := db.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("store: subscriber counts: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]int{}
	for rows.Next() {
		var slug, freq string
		var n int
		if err := rows.Scan(&slug, &freq, &n); err != nil {
			return nil, fmt.Errorf("store: subscriber counts: %w", err)
		}
		if out[slug] == nil {
			out[slug] = map[string]int{}
		}
		out[slug][freq] = n
	}
	return out, rows.Err()
}

// SubscribersPerDay counts the subscribers who first confirmed an address
// on each of the last `days` days (today included) in loc, oldest first.
// Erased subscribers are no longer counted.
func (db *DB) SubscribersPerDay(ctx context.Context, days int, loc *time.Location) ([]DayCount, error) {
	if days < 1 {
		days = 1
	}
	if loc == nil {
		loc = time.UTC
	}
	out, err := db.statsPerDay(ctx, db.Now(), days, loc,
		`SELECT substr(confirmed_at, 1, 13), count(*) FROM subscribers WHERE confirmed_at <> '' AND confirmed_at >= ? GROUP BY 1`)
	if err != nil {
		return nil, fmt.Errorf("store: subscribers per day: %w", err)
	}
	return out, nil
}

// CountDepartmentSubscribers counts the distinct subscribers with an active
// subscription to any of the departments. A topic preview uses it with the
// rule's departments: those people already hear about every release the new
// topic could match (a topic's subscribers start at zero), so it is the
// audience the topic's releases reach today. It is 0 for no departments.
func (db *DB) CountDepartmentSubscribers(ctx context.Context, departmentSlugs []string) (int, error) {
	if len(departmentSlugs) == 0 {
		return 0, nil
	}
	args := make([]any, len(departmentSlugs))
	for i, s := range departmentSlugs {
		args[i] = s
	}
	var n int
	err := db.db.QueryRowContext(ctx, `SELECT count(DISTINCT sub.subscriber_id) FROM subscriptions sub
		JOIN departments d ON d.id = sub.department_id
		WHERE sub.status = 'active' AND d.slug IN (`+placeholders(len(args))+`)`, args...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count department subscribers: %w", err)
	}
	return n, nil
}

// ImportSubscription stores an active subscription brought from another
// system where the address already gave its consent: the subscriber is
// created, confirmed, if new, and an active subscription to the same target
// takes the given frequency. It reports whether the subscriber is new.
func (db *DB) ImportSubscription(ctx context.Context, address string, target Target, frequency string) (newSubscriber bool, err error) {
	if address == "" || !ValidFrequency(frequency) || (target.TopicID == 0) == (target.DepartmentID == 0) {
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
			AND ifnull(topic_id, 0) = ? AND ifnull(department_id, 0) = ?`, frequency, id, target.TopicID, target.DepartmentID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO subscriptions (subscriber_id, topic_id, department_id, frequency, status, created_at, confirmed_at)
			VALUES (?, ?, ?, ?, 'active', ?, ?)`, id, nullID(target.TopicID), nullID(target.DepartmentID), frequency, now, now)
		return err
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
	var reason, at string
	err = tx.QueryRowContext(ctx, `SELECT reason, created_at FROM suppressions WHERE address = ?`, address).Scan(&reason, &at)
	switch {
	case err == nil:
		out.Delivery.Suppressed, out.Delivery.SuppressionReason, out.Delivery.SuppressedAt = true, reason, parseTime(at)
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
