package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// Subscriber is one email address that follows topics, departments or
// searches.
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
	SearchID     int64
}

// valid reports whether exactly one of t's ids is set.
func (t Target) valid() bool {
	n := 0
	for _, id := range []int64{t.TopicID, t.DepartmentID, t.SearchID} {
		if id != 0 {
			n++
		}
	}
	return n == 1
}

// Subscription is a subscriber's wish to hear about a topic, a
// department or a search at a frequency.
type Subscription struct {
	ID           int64 `json:"id"`
	SubscriberID int64 `json:"-"`
	TopicID      int64 `json:"-"`
	DepartmentID int64 `json:"-"`
	SearchID     int64 `json:"-"`
	// Kind is "topic", "department" or "search".
	Kind string `json:"kind"`
	// Slug and Name are the topic's slug and title, the department's slug
	// and name, or the search's parameters (Search.Params) and name.
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
	return Target{TopicID: s.TopicID, DepartmentID: s.DepartmentID, SearchID: s.SearchID}
}

const subscriberCols = `id, address, created_at, confirmed_at, pending_address, pending_nonce, pending_address_at, last_ended_at`

func scanSubscriber(row interface{ Scan(...any) error }) (Subscriber, error) {
	var s Subscriber
	var created, confirmed, pendingAt, ended string
	err := row.Scan(&s.ID, &s.Address, &created, &confirmed, &s.PendingAddress, &s.PendingNonce, &pendingAt, &ended)
	s.CreatedAt, s.ConfirmedAt, s.PendingAddressAt, s.LastEndedAt = parseTime(created), parseTime(confirmed), parseTime(pendingAt), parseTime(ended)
	return s, err
}

const subscriptionCols = `sub.id, sub.subscriber_id, coalesce(sub.topic_id, 0), coalesce(sub.department_id, 0),
	coalesce(sub.search_id, 0), coalesce(t.slug, d.slug, ''), coalesce(t.title, d.name, se.name, ''), coalesce(t.retired_at, ''),
	coalesce(se.query, ''), coalesce(sd.slug, ''), coalesce(st.slug, ''), coalesce(se.doc_type, ''),
	sub.frequency, sub.status, sub.created_at, sub.confirmed_at, sub.ended_at`

const subscriptionFrom = ` FROM subscriptions sub LEFT JOIN topics t ON t.id = sub.topic_id
	LEFT JOIN departments d ON d.id = sub.department_id
	LEFT JOIN searches se ON se.id = sub.search_id LEFT JOIN departments sd ON sd.id = se.department_id
	LEFT JOIN topics st ON st.id = se.topic_id`

// subscriptionOrder sorts subscriptions by name.
const subscriptionOrder = `coalesce(t.title, d.name, se.name), sub.id`

func scanSubscription(row interface{ Scan(...any) error }, extra ...any) (Subscription, error) {
	var s Subscription
	var retired, created, confirmed, ended string
	var q SearchQuery
	dest := []any{&s.ID, &s.SubscriberID, &s.TopicID, &s.DepartmentID, &s.SearchID, &s.Slug, &s.Name, &retired,
		&q.Text, &q.Department, &q.Topic, &q.Type, &s.Frequency, &s.Status, &created, &confirmed, &ended}
	err := row.Scan(append(dest, extra...)...)
	switch {
	case s.TopicID != 0:
		s.Kind = "topic"
	case s.SearchID != 0:
		s.Kind, s.Slug = "search", q.Params()
	default:
		s.Kind = "department"
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
