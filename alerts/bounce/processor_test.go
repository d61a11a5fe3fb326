package bounce_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"herald/alerts"
	"herald/alerts/bounce"
	"herald/store"
	"herald/store/storetest"
)

// fixture is a processor over a fresh store, with messages sent to a
// few subscribers.
type fixture struct {
	t     *testing.T
	db    *store.DB
	clock *storetest.Clock
	keys  alerts.Keys
	p     *bounce.Processor
	reg   *prometheus.Registry
	logs  *bytes.Buffer
	dept  store.Department
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, clock := storetest.Open(t, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	keys, err := alerts.NewKeys("the key that signs return paths")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db, clock: clock, keys: keys, reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}}
	f.p, err = bounce.NewProcessor(db, bounce.Config{VerifyToken: keys.VerifyReturnPath, Domain: "news.example.org"},
		slog.New(slog.NewTextHandler(f.logs, nil)), f.reg)
	if err != nil {
		t.Fatal(err)
	}
	f.dept = storetest.Department(t, db, "home-office", "Home Office")
	return f
}

// send subscribes addr, queues a message to it and marks it sent,
// returning the outbox row.
func (f *fixture) send(addr, key string) store.SentMessage {
	f.t.Helper()
	sub := storetest.Subscribe(f.t, f.db, addr, store.Target{DepartmentID: f.dept.ID}, store.FrequencyDaily)
	if _, err := f.db.EnqueueEmails(context.Background(), []store.OutboxMessage{{Key: key, Kind: store.KindDigest,
		SubscriberID: sub.Subscriber.ID, To: addr, Subject: "Your daily digest", Text: "text"}}); err != nil {
		f.t.Fatal(err)
	}
	id := storetest.Deliver(f.t, f.db, key, store.StatusSent, "")
	m, err := f.db.SentMessage(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

// rcpt is the bounce address of message m.
func (f *fixture) rcpt(m store.SentMessage) string {
	return bounce.Address(f.keys.SignReturnPath(m.ID), "news.example.org")
}

// report reads a testdata fixture for message m, as sent to recipient.
func report(t *testing.T, name, token, recipient, msgID string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.NewReplacer("{{TOKEN}}", token, "{{RCPT}}", recipient, "{{MSGID}}", msgID).Replace(string(b)))
}

func (f *fixture) fixtureFor(name string, m store.SentMessage) []byte {
	return report(f.t, name, f.keys.SignReturnPath(m.ID), m.To, m.MessageID)
}

func (f *fixture) suppression(addr string) (store.Suppression, bool) {
	f.t.Helper()
	list, err := f.db.ListSuppressions(context.Background(), store.SuppressionFilter{Search: addr})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, s := range list {
		if s.Address == addr {
			return s, true
		}
	}
	return store.Suppression{}, false
}

// wantSuppressed checks that addrs, and no other address, are suppressed.
func (f *fixture) wantSuppressed(addrs ...string) {
	f.t.Helper()
	list, err := f.db.ListSuppressions(context.Background(), store.SuppressionFilter{})
	if err != nil {
		f.t.Fatal(err)
	}
	var got []string
	for _, s := range list {
		got = append(got, s.Address)
	}
	slices.Sort(got)
	slices.Sort(addrs)
	if !slices.Equal(got, addrs) {
		f.t.Fatalf("suppressed %v, want %v", got, addrs)
	}
}

func (f *fixture) processMessage(raw []byte, rcpt string) bounce.Outcome {
	f.t.Helper()
	out, err := f.p.ProcessMessage(context.Background(), bytes.NewReader(raw), rcpt)
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

func TestAHardBounceSuppressesExactlyItsAddress(t *testing.T) {
	for _, name := range []string{"postfix-user-unknown.eml", "qmail-failure-notice.eml"} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			gone := f.send("gone@example.net", "digest:daily:1:1")
			other := f.send("fine@example.net", "digest:daily:1:2")
			out := f.processMessage(f.fixtureFor(name, gone), f.rcpt(gone))
			if !out.Applied || !out.Suppressed || out.OutboxID != gone.ID {
				t.Fatalf("outcome = %+v", out)
			}
			s, ok := f.suppression("gone@example.net")
			if !ok || s.Cause != store.CauseBounce || s.Source != bounce.SourcePipe || s.OutboxID != gone.ID ||
				!strings.Contains(s.Reason, "5.1.1") || !strings.Contains(s.Report, "bounces+") {
				t.Fatalf("suppression = %+v, %v", s, ok)
			}
			if _, ok := f.suppression(other.To); ok {
				t.Fatal("another address was suppressed")
			}
			if got := f.regCounter("herald_bounce_reports_total", "kind", "permanent", "source", "pipe"); got != 1 {
				t.Errorf("permanent bounces counted %v", got)
			}
			if strings.Contains(f.logs.String(), "gone@example.net") || !strings.Contains(f.logs.String(), fmt.Sprintf("outbox_id=%d", gone.ID)) {
				t.Errorf("log lines:\n%s", f.logs)
			}
			// The same report again changes nothing.
			if out := f.processMessage(f.fixtureFor(name, gone), f.rcpt(gone)); out.Applied || out.Ignored != bounce.IgnoredReplay {
				t.Fatalf("replay = %+v", out)
			}
		})
	}
}

// regCounter reads one series of a counter in the fixture's registry.
func (f *fixture) regCounter(name string, labels ...string) float64 {
	f.t.Helper()
	return func() float64 {
		mfs, err := f.reg.Gather()
		if err != nil {
			f.t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		series:
			for _, m := range mf.GetMetric() {
				for i := 0; i < len(labels); i += 2 {
					found := false
					for _, lp := range m.GetLabel() {
						found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
					}
					if !found {
						continue series
					}
				}
				return m.GetCounter().GetValue()
			}
		}
		return 0
	}()
}

func TestTemporaryFailuresSuppressAtTheLimitWithinTheWindow(t *testing.T) {
	f := newFixture(t)
	addr := "full@example.net"
	var msgs []store.SentMessage
	for i := range 4 {
		msgs = append(msgs, f.send(addr, fmt.Sprintf("digest:daily:%d:1", i)))
	}
	// The first, then 15 days later (out of the window) two more: 2
	// within 14 days, not suppressed; the fourth makes 3.
	for i, m := range msgs {
		if i == 1 {
			f.clock.Add(15 * 24 * time.Hour)
		}
		out := f.processMessage(f.fixtureFor("postfix-mailbox-full.eml", m), f.rcpt(m))
		if !out.Applied {
			t.Fatalf("report %d = %+v", i, out)
		}
		_, suppressed := f.suppression(addr)
		if want := i == 3; out.Suppressed != want || suppressed != want {
			t.Fatalf("after report %d: outcome %+v, suppressed %v; want %v", i, out, suppressed, want)
		}
		// The same delay warning twice counts once.
		if i == 2 {
			if again := f.processMessage(f.fixtureFor("postfix-mailbox-full.eml", m), f.rcpt(m)); again.Ignored != bounce.IgnoredReplay {
				t.Fatalf("replayed warning = %+v", again)
			}
		}
	}
	s, _ := f.suppression(addr)
	if s.Cause != store.CauseBounce || !strings.Contains(s.Reason, "3 temporary failures") || !strings.Contains(s.Reason, "4.2.2") {
		t.Fatalf("suppression = %+v", s)
	}
}

func TestAComplaintEndsEverySubscriptionAndSuppresses(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	m := f.send("annoyed@example.net", "digest:daily:1:1")
	treasury := storetest.Department(t, f.db, "treasury", "Treasury")
	storetest.Subscribe(t, f.db, "annoyed@example.net", store.Target{DepartmentID: treasury.ID}, store.FrequencyWeekly)
	out := f.processMessage(f.fixtureFor("arf-abuse.eml", m), f.rcpt(m))
	if !out.Applied || !out.Suppressed || out.Ended != 2 {
		t.Fatalf("outcome = %+v", out)
	}
	sub, err := f.db.SubscriberByAddress(ctx, "annoyed@example.net")
	if err != nil {
		t.Fatal(err)
	}
	subs, _ := f.db.Subscriptions(ctx, sub.ID)
	for _, s := range subs {
		if s.Status != store.SubscriptionEnded {
			t.Errorf("subscription %d is %s", s.ID, s.Status)
		}
	}
	if s, _ := f.suppression("annoyed@example.net"); s.Cause != store.CauseComplaint {
		t.Fatalf("suppression = %+v", s)
	}
	if got := f.regCounter("herald_bounce_complaints_total", "source", "pipe"); got != 1 {
		t.Errorf("complaints counted %v", got)
	}
}

func TestReportsThatChangeNothing(t *testing.T) {
	f := newFixture(t)
	m := f.send("reader@example.net", "digest:daily:1:1")
	other := f.send("other@example.net", "digest:daily:1:2")
	forger, _ := alerts.NewKeys("a key that Herald never had")
	forged := bounce.Address(forger.SignReturnPath(m.ID), "news.example.org")
	unknown := bounce.Address(f.keys.SignReturnPath(999), "news.example.org")
	big := append(f.fixtureFor("postfix-user-unknown.eml", m), bytes.Repeat([]byte("x"), 11<<20)...)
	for _, tc := range []struct {
		name, rcpt string
		raw        []byte
		want       string
	}{
		{"out-of-office reply", f.rcpt(m), f.fixtureFor("out-of-office.eml", m), bounce.IgnoredAutoReply},
		{"forged token", forged, f.fixtureFor("postfix-user-unknown.eml", m), bounce.IgnoredForgedToken},
		{"token of a message never sent", unknown, f.fixtureFor("postfix-user-unknown.eml", m), bounce.IgnoredUnknownMessage},
		{"not a bounce address", "alerts@news.example.org", f.fixtureFor("postfix-user-unknown.eml", m), bounce.IgnoredNoToken},
		{"a DSN about someone else than the message's recipient", f.rcpt(m),
			report(t, "postfix-user-unknown.eml", f.keys.SignReturnPath(m.ID), other.To, m.MessageID), bounce.IgnoredRecipientMismatch},
		{"malformed MIME", f.rcpt(m), f.fixtureFor("malformed.eml", m), bounce.IgnoredMalformed},
		{"not a message at all", f.rcpt(m), []byte("\x00\x01 garbage without headers"), bounce.IgnoredMalformed},
		{"a person's reply", f.rcpt(m), []byte("From: someone@example.net\r\nSubject: thanks\r\n\r\nThanks, this user unknown to me.\r\n"), bounce.IgnoredNotABounce},
		{"over the size limit", f.rcpt(m), big, bounce.IgnoredTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := f.processMessage(tc.raw, tc.rcpt)
			if out.Applied || out.Ignored != tc.want {
				t.Fatalf("outcome = %+v, want ignored %q", out, tc.want)
			}
		})
	}
	list, err := f.db.ListSuppressions(context.Background(), store.SuppressionFilter{})
	if err != nil || len(list) != 0 {
		t.Fatalf("suppressions = %+v, %v", list, err)
	}
	if got := f.regCounter("herald_bounce_rejected_total", "reason", bounce.IgnoredForgedToken); got != 1 {
		t.Errorf("forged tokens counted %v", got)
	}
	if !strings.Contains(f.logs.String(), "reason=forged_token") {
		t.Errorf("no rejection logged:\n%s", f.logs)
	}
}

func TestABounceAfterTheSubscriberLeftStillSuppresses(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	m := f.send("left@example.net", "digest:daily:1:1")
	if _, err := f.db.EndSubscriptions(ctx, store.EndFilter{SubscriberID: m.SubscriberID}); err != nil {
		t.Fatal(err)
	}
	out := f.processMessage(f.fixtureFor("postfix-user-unknown.eml", m), f.rcpt(m))
	if !out.Applied || !out.Suppressed {
		t.Fatalf("outcome = %+v", out)
	}
	if ok, _ := f.db.IsSuppressed(ctx, "left@example.net"); !ok {
		t.Fatal("not suppressed")
	}
}

func TestProviderReportsTieByMessageIDAndRecipient(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	m := f.send("reader@example.net", "digest:daily:1:1")
	r := bounce.Report{Source: "ses", EventID: "evt-1", MessageID: "<" + m.MessageID + "@news.example.org>",
		Recipient: "Reader@Example.NET", Kind: bounce.Permanent, Status: "5.1.1", Diagnostic: "smtp; 550 no such user",
		Raw: []byte(`{"notificationType":"Bounce"}`)}
	for _, tc := range []struct {
		name string
		edit func(*bounce.Report)
		want string
	}{
		{"unknown Message-ID", func(r *bounce.Report) { r.MessageID = "nope@news.example.org" }, bounce.IgnoredUnknownMessage},
		{"another recipient", func(r *bounce.Report) { r.Recipient = "other@example.net" }, bounce.IgnoredRecipientMismatch},
		{"neither token nor Message-ID", func(r *bounce.Report) { r.MessageID = "" }, bounce.IgnoredUntied},
		{"no kind", func(r *bounce.Report) { r.Kind = "" }, bounce.IgnoredUnknownKind},
	} {
		bad := r
		tc.edit(&bad)
		if out, err := f.p.Process(ctx, bad); err != nil || out.Applied || out.Ignored != tc.want {
			t.Errorf("%s: %+v, %v; want %q", tc.name, out, err, tc.want)
		}
	}
	out, err := f.p.Process(ctx, r)
	if err != nil || !out.Applied || !out.Suppressed || out.OutboxID != m.ID {
		t.Fatalf("Process = %+v, %v", out, err)
	}
	// A replayed event changes nothing, even as another kind.
	replay := r
	replay.Kind = bounce.Complaint
	if out, err := f.p.Process(ctx, replay); err != nil || out.Ignored != bounce.IgnoredReplay {
		t.Fatalf("replay = %+v, %v", out, err)
	}
	if s, _ := f.suppression("reader@example.net"); s.Cause != store.CauseBounce || s.Source != "ses" || s.Report != `{"notificationType":"Bounce"}` {
		t.Fatalf("suppression = %+v", s)
	}
}

func TestProcessReportsADatabaseFailure(t *testing.T) {
	f := newFixture(t)
	m := f.send("reader@example.net", "digest:daily:1:1")
	raw := f.fixtureFor("postfix-user-unknown.eml", m)
	f.db.Close()
	_, err := f.p.ProcessMessage(context.Background(), bytes.NewReader(raw), f.rcpt(m))
	if err == nil {
		t.Fatal("no error with the database closed")
	}
	if errors.Is(err, context.Canceled) {
		t.Fatalf("unexpected error %v", err)
	}
}

func TestTokenOf(t *testing.T) {
	for in, want := range map[string]string{
		"bounces+abc123@news.example.org":   "abc123",
		"<BOUNCES+abc123@news.example.org>": "abc123",
		"bounces@news.example.org":          "",
		"bounces+@news.example.org":         "",
		"alerts+abc@news.example.org":       "",
		"bounces+a.b@news.example.org":      "",
		"bounces+abc":                       "",
	} {
		got, ok := bounce.TokenOf(in)
		if got != want || ok != (want != "") {
			t.Errorf("TokenOf(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// TestHousekeepForgetsWhatNoLongerCounts: temporary failures leave once
// they are out of the window, report keys after 90 days; until then a
// replay is still recognised.
func TestHousekeepForgetsWhatNoLongerCounts(t *testing.T) {
	f := newFixture(t)
	m := f.send("full@example.net", "digest:daily:1:1")
	raw := f.fixtureFor("postfix-mailbox-full.eml", m)
	if out := f.processMessage(raw, f.rcpt(m)); !out.Applied {
		t.Fatalf("report = %+v", out)
	}
	ctx := context.Background()
	if n, err := f.p.Housekeep(ctx, f.clock.Now()); err != nil || n != 0 {
		t.Fatalf("housekeep at once = %d, %v; want nothing purged", n, err)
	}
	f.clock.Add(15 * 24 * time.Hour)
	if n, err := f.p.Housekeep(ctx, f.clock.Now()); err != nil || n != 1 {
		t.Fatalf("housekeep after the window = %d, %v; want the temporary failure purged", n, err)
	}
	if again := f.processMessage(raw, f.rcpt(m)); again.Ignored != bounce.IgnoredReplay {
		t.Fatalf("replay within 90 days = %+v, want it recognised", again)
	}
	f.clock.Add(90 * 24 * time.Hour)
	if n, err := f.p.Housekeep(ctx, f.clock.Now()); err != nil || n != 1 {
		t.Fatalf("housekeep after 90 days = %d, %v; want the report key purged", n, err)
	}
}
