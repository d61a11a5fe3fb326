// Package alertstest holds what the tests of the subscription side and of
// the pages that serve it share: reading the outbox as tests look at it,
// and finding the links in an email. The store, its clock and its seed
// data come from herald/store/storetest.
package alertstest

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"herald/store"
)

// BaseURL is the public address the tests give Herald: every link in an
// email starts with it.
const BaseURL = "https://news.example.org"

// Message is an outbox row as tests look at it.
type Message struct {
	Key, Kind, To, Subject, Text, HTML, Unsubscribe string
	SubscriberID                                    int64
	Status                                          string
	Purged                                          bool
}

// Filter picks outbox rows; a nil Filter picks every row.
type Filter func(Message) bool

// Kind picks the rows of one kind.
func Kind(kind string) Filter { return func(m Message) bool { return m.Kind == kind } }

// KeyPrefix picks the rows whose idempotency key starts with prefix.
func KeyPrefix(prefix string) Filter {
	return func(m Message) bool { return strings.HasPrefix(m.Key, prefix) }
}

// Outbox returns the outbox rows keep picks, in the order they were
// queued.
func Outbox(t testing.TB, db *store.DB, keep Filter) []Message {
	t.Helper()
	var out []Message
	for after := int64(0); ; {
		page, err := db.OutboxMessages(context.Background(), after, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			m := Message{Key: r.Key, Kind: r.Kind, To: r.To, Subject: r.Subject, Text: r.Text, HTML: r.HTML,
				Unsubscribe: r.UnsubscribeURL, SubscriberID: r.SubscriberID, Status: r.Status, Purged: r.Purged}
			if keep == nil || keep(m) {
				out = append(out, m)
			}
			after = r.ID
		}
		if len(page) < 500 {
			return out
		}
	}
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
