// Package storetest opens real stores for tests: a SQLite file in the
// test's temporary directory or a PostgreSQL database, a clock the test
// sets and moves, and seed helpers that go through the store's own API, so
// no test outside package store writes SQL.
package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"herald/store"
)

// Clock is a time the test sets and moves, for the store and for whatever
// else the test gives it to (an alerts service, a web server).
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock showing t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Add moves the clock on by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Open opens a fresh store from Database whose clock shows start, and
// closes it when the test ends.
func Open(t testing.TB, start time.Time) (*store.DB, *Clock) {
	t.Helper()
	clock := NewClock(start)
	return OpenFile(t, Database(t), clock), clock
}

// OpenFile opens (creating if needed) the store at database, a path or a
// URL from Database, with clock, and closes it when the test ends: for
// tests that reopen one database, as after a crash.
func OpenFile(t testing.TB, database string, clock *Clock) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), database, store.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Department stores a department.
func Department(t testing.TB, db *store.DB, slug, name string) store.Department {
	t.Helper()
	d, err := db.UpsertDepartment(context.Background(), store.Department{Slug: slug, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Subscription is what Subscribe and Request stored.
type Subscription struct {
	Subscriber   store.Subscriber
	Subscription store.Subscription
}

// Request stores a pending subscription of addr to target, as a visitor's
// request leaves it before its confirmation (no message is queued).
func Request(t testing.TB, db *store.DB, addr string, target store.Target, freq string) Subscription {
	t.Helper()
	var out Subscription
	err := db.InTx(context.Background(), func(tx *store.Tx) error {
		var err error
		if out.Subscriber, err = tx.EnsureSubscriber(addr); err != nil {
			return err
		}
		out.Subscription, err = tx.AddSubscription(out.Subscriber.ID, target, freq)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Subscribe stores an active subscription of addr to target, as a
// confirmed sign-up leaves it: it replaces an active subscription to the
// same target at another frequency and keeps one at the same frequency.
// No message is queued.
func Subscribe(t testing.TB, db *store.DB, addr string, target store.Target, freq string) Subscription {
	t.Helper()
	var out Subscription
	err := db.InTx(context.Background(), func(tx *store.Tx) error {
		var err error
		out, err = subscribe(tx, addr, target, freq)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Wish is one subscription for SubscribeMany.
type Wish struct {
	Address   string
	Target    store.Target
	Frequency string
}

// SubscribeMany stores the subscriptions as Subscribe does, in one
// transaction: for tests and benchmarks that need thousands.
func SubscribeMany(t testing.TB, db *store.DB, wishes []Wish) {
	t.Helper()
	err := db.InTx(context.Background(), func(tx *store.Tx) error {
		for _, w := range wishes {
			if _, err := subscribe(tx, w.Address, w.Target, w.Frequency); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func subscribe(tx *store.Tx, addr string, target store.Target, freq string) (Subscription, error) {
	var out Subscription
	sub, err := tx.EnsureSubscriber(addr)
	if err != nil {
		return out, err
	}
	old, err := tx.ActiveSubscription(sub.ID, target)
	switch {
	case err == nil && old.Frequency == freq:
		out.Subscription = old
	case err == nil || errors.Is(err, store.ErrNotFound):
		if err == nil {
			if _, err := tx.SetSubscriptionStatus(old.ID, store.SubscriptionEnded); err != nil {
				return out, err
			}
		}
		p, err := tx.AddSubscription(sub.ID, target, freq)
		if err != nil {
			return out, err
		}
		if out.Subscription, err = tx.SetSubscriptionStatus(p.ID, store.SubscriptionActive); err != nil {
			return out, err
		}
	default:
		return out, err
	}
	if err := tx.MarkSubscriberConfirmed(sub.ID); err != nil {
		return out, err
	}
	out.Subscriber, err = tx.Subscriber(sub.ID)
	return out, err
}

// Deliver settles the outbox row with key as the delivery side does after
// one attempt: status is store.StatusSent, or store.StatusFailed with
// reason. Other due rows it had to claim go back to the queue, due now.
// It returns the row's id.
func Deliver(t testing.TB, db *store.DB, key, status, reason string) int64 {
	t.Helper()
	ctx := context.Background()
	claim, err := db.ClaimDue(ctx, 1_000_000, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	var others []int64
	var to string
	for _, m := range claim.Messages {
		if m.Key == key {
			id, to = m.ID, m.To
		} else {
			others = append(others, m.ID)
		}
	}
	if err := db.ReleaseClaim(ctx, claim.Token, others); err != nil {
		t.Fatal(err)
	}
	if id == 0 {
		t.Fatalf("no outbox row %q is due", key)
	}
	_, err = db.RecordDeliveries(ctx, []store.DeliveryOutcome{{ID: id, Token: claim.Token, Status: status, Error: reason, Address: to}}, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Search stores the search spec describes (spec.Name defaults to its
// words) and returns it.
func Search(t testing.TB, db *store.DB, spec store.SearchSpec) store.Search {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "Search: " + spec.Query
	}
	var out store.Search
	err := db.InTx(context.Background(), func(tx *store.Tx) error {
		var err error
		out, err = tx.EnsureSearch(spec)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
