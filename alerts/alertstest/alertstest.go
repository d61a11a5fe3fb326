// Package alertstest holds what the tests of the subscription side and of
// the pages that serve it share: a clock the test sets, subscribing an
// address the way a confirmed sign-up leaves it, reading the outbox as
// tests look at it, and finding the links in an email.
package alertstest

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/store"
)

// BaseURL is the public address the tests give Herald: every link in an
// email starts with it.
const BaseURL = "https://news.example.org"

// Clock is the only fake part of these tests: a time the test sets and
// moves, for the store, the alerts service and the web server alike.
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

// Subscribe creates an active subscription through the store, the way a
// confirmed sign-up leaves it.
func Subscribe(t testing.TB, db *store.DB, addr string, target store.Target, freq string) store.ConfirmResult {
	t.Helper()
	ctx := context.Background()
	req, err := db.RequestSubscription(ctx, store.SubscriptionRequest{Address: addr, Target: target, Frequency: freq})
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.ConfirmSubscription(ctx, req.Subscription.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Message is an outbox row as tests look at it.
type Message struct {
	Key, Kind, To, Subject, Text, HTML, Unsubscribe string
	SubscriberID                                    int64
}

// Outbox returns the outbox rows matching the SQL condition where (with
// args; "" for every row), in the order they were queued.
func Outbox(t testing.TB, db *store.DB, where string, args ...any) []Message {
	t.Helper()
	q := `SELECT key, kind, to_addr, subject, text_body, html_body, unsubscribe_url, subscriber_id FROM outbox`
	if where != "" {
		q += " WHERE " + where
	}
	rows, err := db.SQL().QueryContext(context.Background(), q+" ORDER BY id", args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		var m Message
		if err := rows.Scan(&m.Key, &m.Kind, &m.To, &m.Subject, &m.Text, &m.HTML, &m.Unsubscribe, &m.SubscriberID); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var linkRe = regexp.MustCompile(regexp.QuoteMeta(BaseURL) + `/[^\s"<>]+`)

// Links returns the links to Herald (on BaseURL) in a text body that
// contain part.
func Links(text, part string) []string {
	var out []string
	for _, l := range linkRe.FindAllString(text, -1) {
		if strings.Contains(l, part) {
			out = append(out, l)
		}
	}
	return out
}

// Link returns the first of Links, failing the test when there is none.
func Link(t testing.TB, text, part string) string {
	t.Helper()
	l := Links(text, part)
	if len(l) == 0 {
		t.Fatalf("no link with %q in:\n%s", part, text)
	}
	return l[0]
}
