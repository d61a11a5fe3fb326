package delivery_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"herald/alerts/delivery"
	"herald/alerts/smtptest"
	"herald/store"
	"herald/store/storetest"
)

// deliveryClock is a store clock the test moves and workers read.
type deliveryClock struct{ ns atomic.Int64 }

func (c *deliveryClock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *deliveryClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// deliveryFixture is a real database, a real SMTP server on loopback
// and the clock both the store and the deliverer follow.
type deliveryFixture struct {
	t     *testing.T
	db    *store.DB
	srv   *smtptest.Server
	clock *deliveryClock
}

func newDeliveryFixture(t *testing.T, opts smtptest.Options) *deliveryFixture {
	t.Helper()
	clock := &deliveryClock{}
	clock.ns.Store(time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC).UnixNano())
	db, err := store.Open(context.Background(), storetest.Database(t), store.WithClock(clock.now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &deliveryFixture{t: t, db: db, srv: smtptest.Start(t, opts), clock: clock}
}

// smtpConfig is a mail config for the fixture's server: fast, unlimited.
func (f *deliveryFixture) smtpConfig() delivery.Config {
	return delivery.Config{
		From:          "Herald <alerts@news.example.org>",
		Transport:     "smtp",
		SMTP:          delivery.SMTPConfig{Host: f.srv.Host(), Port: f.srv.Port(), TLS: "none", Timeout: 5 * time.Second},
		Concurrency:   4,
		RetryMaxAge:   48 * time.Hour,
		SuppressAfter: 3,
	}
}

// deliverer returns a deliverer on the fixture's store that follows its clock.
func (f *deliveryFixture) deliverer(cfg delivery.Config, reg prometheus.Registerer) *delivery.Deliverer {
	f.t.Helper()
	cfg.Now = f.clock.now
	d, err := delivery.New(f.db, cfg, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// enqueue adds one digest for each address, keyed by round.
func (f *deliveryFixture) enqueue(round string, addrs []string) []store.OutboxMessage {
	f.t.Helper()
	msgs := make([]store.OutboxMessage, len(addrs))
	for i, a := range addrs {
		msgs[i] = deliveryDigest(fmt.Sprintf("digest:daily:%s:%d", round, i+1), int64(i+1), a)
	}
	for start := 0; start < len(msgs); start += 1000 {
		end := min(start+1000, len(msgs))
		if _, err := f.db.EnqueueEmails(context.Background(), msgs[start:end]); err != nil {
			f.t.Fatal(err)
		}
	}
	return msgs
}

func deliveryDigest(key string, subscriber int64, to string) store.OutboxMessage {
	return store.OutboxMessage{
		Key: key, Kind: store.KindDigest, SubscriberID: subscriber, To: to,
		Subject:        "Your daily digest: 3 new releases",
		Text:           "Home Office: Partners pledge to tackle human trafficking\nhttps://news.example.org/releases/1\n",
		HTML:           `<table role="presentation"><tr><td style="font-family:sans-serif">Partners pledge to tackle human trafficking</td></tr></table>`,
		UnsubscribeURL: fmt.Sprintf("https://news.example.org/unsubscribe/tok%d", subscriber),
	}
}

func deliveryAddrs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("reader%d@example.net", i+1)
	}
	return out
}

func (f *deliveryFixture) counts() map[string]int {
	f.t.Helper()
	c, err := f.db.OutboxCounts(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// wantMessageID is the Message-ID a row must carry.
func wantMessageID(key string) string {
	return "<" + store.MessageIDFor(key) + "@news.example.org>"
}

// checkOnePerAddress checks that every address received messages with a
// single Message-ID (the row's), and returns how many arrived twice.
func (f *deliveryFixture) checkOnePerAddress(msgs []store.OutboxMessage) (duplicates int) {
	f.t.Helper()
	got := f.srv.MessageIDs()
	for _, m := range msgs {
		ids := got[strings.ToLower(m.To)]
		if len(ids) != 1 {
			f.t.Errorf("%s received %d distinct Message-IDs: %v", m.To, len(ids), ids)
			continue
		}
		if n, ok := ids[wantMessageID(m.Key)]; !ok {
			f.t.Errorf("%s received %v, want %s", m.To, ids, wantMessageID(m.Key))
		} else if n > 1 {
			duplicates += n - 1
		}
	}
	return duplicates
}

func TestDeliverySendsEachMessageOnceOverReusedConnections(t *testing.T) {
	f := newDeliveryFixture(t, smtptest.Options{})
	msgs := f.enqueue("2026-03-01", deliveryAddrs(300))
	d := f.deliverer(f.smtpConfig(), nil)
	sent, err := d.Drain(context.Background())
	if err != nil || sent != 300 {
		t.Fatalf("Drain = %d, %v; want 300", sent, err)
	}
	if f.srv.Count() != 300 {
		t.Fatalf("server received %d, want 300", f.srv.Count())
	}
	if dup := f.checkOnePerAddress(msgs); dup != 0 {
		t.Fatalf("%d duplicates without any fault", dup)
	}
	if c := f.counts(); c[store.StatusSent] != 300 || c[store.StatusPending]+c[store.StatusSending] != 0 {
		t.Fatalf("counts = %v", c)
	}
	// One connection per worker, reused for every message.
	if n := f.srv.Connections(); n > 4 {
		t.Fatalf("%d connections for 4 workers", n)
	}
	for _, m := range f.srv.Messages() {
		if m.From != "alerts@news.example.org" {
			t.Fatalf("envelope sender %q", m.From)
		}
	}
	// Nothing is due now: a second drain sends nothing.
	if sent, err := d.Drain(context.Background()); sent != 0 || err != nil {
		t.Fatalf("second Drain = %d, %v", sent, err)
	}
}

func TestDeliveryReconnectsWhenTheRelayHangsUpBetweenMessages(t *testing.T) {
	f := newDeliveryFixture(t, smtptest.Options{MessagesPerConnection: 5})
	msgs := f.enqueue("2026-03-01", deliveryAddrs(23))
	cfg := f.smtpConfig()
	cfg.Concurrency = 1
	// A connection closed under an idle worker fails at MAIL FROM, before
	// the message went out: it is retried at once on a new connection,
	// not put off for a minute.
	if sent, err := f.deliverer(cfg, nil).Drain(context.Background()); err != nil || sent != len(msgs) {
		t.Fatalf("Drain = %d, %v; want %d", sent, err, len(msgs))
	}
	if n := f.srv.Connections(); n != 5 {
		t.Fatalf("%d connections for 23 messages at 5 per connection, want 5", n)
	}
	if dup := f.checkOnePerAddress(msgs); dup != 0 {
		t.Fatalf("%d duplicates", dup)
	}
}

func TestDeliveryRetriesTemporaryFailures(t *testing.T) {
	f := newDeliveryFixture(t, smtptest.Options{})
	msgs := f.enqueue("2026-03-01", deliveryAddrs(150))
	// A third of the recipients get 451 on their first attempt.
	f.srv.SetFault(smtptest.FirstAttempts(smtptest.ForRatio(smtptest.Temporary(), 1.0/3), 1))
	d := f.deliverer(f.smtpConfig(), nil)
	first, err := d.Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	retried := 150 - first
	if retried < 20 || retried > 80 {
		t.Fatalf("first pass sent %d of 150; want about a third held back", first)
	}
	if c := f.counts(); c[store.StatusPending] != retried || c[store.StatusFailed] != 0 {
		t.Fatalf("after the first pass counts = %v, want %d pending", c, retried)
	}
	// The first retry comes after 30 to 60 seconds (one minute, jittered).
	oldest, err := f.db.OldestDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if wait := oldest.Sub(f.clock.now()); wait < 30*time.Second || wait > time.Minute {
		t.Fatalf("first retry in %v, want 30s to 1m", wait)
	}
	if sent, _ := d.Drain(context.Background()); sent != 0 {
		t.Fatalf("retries went out %d early", sent)
	}
	f.clock.advance(time.Minute)
	second, err := d.Drain(context.Background())
	if err != nil || second != retried {
		t.Fatalf("second pass = %d, %v; want %d", second, err, retried)
	}
	if dup := f.checkOnePerAddress(msgs); dup != 0 {
		t.Fatalf("%d duplicates", dup)
	}
	if c := f.counts(); c[store.StatusSent] != 150 {
		t.Fatalf("counts = %v", c)
	}
}

func TestDeliveryGivesUpAfterRetryMaxAge(t *testing.T) {
	f := newDeliveryFixture(t, smtptest.Options{})
	f.enqueue("2026-03-01", []string{"slow@example.net"})
	f.srv.SetFault(smtptest.ForAddresses(smtptest.Temporary(), "slow@example.net"))
	cfg := f.smtpConfig()
	cfg.RetryMaxAge = 3 * time.Hour
	d := f.deliverer(cfg, nil)
	for range 20 {
		if _, err := d.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		if f.counts()[store.StatusFailed] == 1 {
			break
		}
		f.clock.advance(time.Hour)
	}
	failed, err := f.db.FailedMessages(context.Background(), 10)
	if err != nil || len(failed) != 1 {
		t.Fatalf("failed = %v, %v", failed, err)
	}
	if !strings.Contains(failed[0].LastError, "gave up after") || failed[0].Attempts < 3 {
		t.Fatalf("failed message = %+v", failed[0])
	}
	// Giving up on a busy server says nothing against the address.
	if ok, _ := f.db.IsSuppressed(context.Background(), "slow@example.net"); ok {
		t.Fatal("an address was suppressed for temporary failures")
	}
}

func TestDeliveryPermanentFailuresSuppressTheAddress(t *testing.T) {
	f := newDeliveryFixture(t, smtptest.Options{})
	addrs := deliveryAddrs(8)
	gone, spam, relay := "gone@example.net", "spam-filtered@example.net", "not-relayed@example.net"
	addrs = append(addrs, gone, spam, relay)
	f.srv.SetFault(smtptest.Combine(
		smtptest.ForAddresses(smtptest.Permanent(), gone),
		// A content rejection after DATA is about the message,
		smtptest.ForAddresses(smtptest.Fault{Action: smtptest.Reject, Code: 554, Enhanced: "5.7.1", Text: "Message refused"}.AfterData(), spam),
		// and a refusal to relay is about Herald's account at the relay.
		smtptest.ForAddresses(smtptest.Fault{Action: smtptest.Reject, Code: 554, Enhanced: "5.7.1", Text: "Relay access denied"}, relay),
	))
	cfg := f.smtpConfig()
	cfg.SuppressAfter = 2
	d := f.deliverer(cfg, nil)
	for round := 1; round <= 3; round++ {
		f.enqueue(fmt.Sprintf("2026-03-0%d", round), addrs)
		if _, err := d.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.clock.advance(24 * time.Hour)
	}
	for _, a := range []string{gone, spam, relay} {
		want := 3
		if a == gone {
			want = 2 // never tried again once suppressed
		}
		if got := f.srv.Attempts(a); got != want {
			t.Errorf("%s: %d attempts, want %d", a, got, want)
		}
		ok, err := f.db.IsSuppressed(context.Background(), a)
		if err != nil || ok != (a == gone) {
			t.Errorf("%s: suppressed = %v, %v", a, ok, err)
		}
	}
	c := f.counts()
	if c[store.StatusSent] != 24 || c[store.StatusFailed] != 2+3+3 || c[store.StatusSuppressed] != 1 || c[store.StatusPending] != 0 {
		t.Fatalf("counts = %v", c)
	}
	// Lifting the suppression lets mail through again.
	if err := f.db.LiftSuppression(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	f.srv.SetFault(nil)
	f.enqueue("2026-03-04", []string{gone})
	if sent, err := d.Drain(context.Background()); sent != 1 || err != nil {
		t.Fatalf("after lifting: sent %d, %v", sent, err)
	}
}

func TestDeliveryStallsAndDropsLoseNothing(t *testing.T) {
	f := newDeliveryFixture(t, smtptest.Options{})
	addrs := deliveryAddrs(120)
	msgs := f.enqueue("2026-03-01", addrs)
	all := smtptest.Combine(
		smtptest.ForShare(smtptest.Stalled(0), 0, 0.08),
		smtptest.ForShare(smtptest.Dropped(), 0.08, 0.18),
		smtptest.ForShare(smtptest.Dropped().AfterData(), 0.18, 0.28),
		smtptest.ForShare(smtptest.Stalled(0).AfterData(), 0.28, 0.33),
	)
	// Every fault strikes on the first two attempts, then the server mends.
	f.srv.SetFault(smtptest.FirstAttempts(all, 2))
	cfg := f.smtpConfig()
	cfg.SMTP.Timeout = 300 * time.Millisecond
	d := f.deliverer(cfg, nil)
	for pass := 0; pass < 10 && f.counts()[store.StatusSent] < len(msgs); pass++ {
		if _, err := d.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.clock.advance(2 * time.Hour)
	}
	if c := f.counts(); c[store.StatusSent] != len(msgs) {
		t.Fatalf("counts = %v, want all %d sent", c, len(msgs))
	}
	dup := f.checkOnePerAddress(msgs)
	// Only a message whose reply was lost may arrive more than once.
	replyLost := 0
	got := f.srv.MessageIDs()
	for _, m := range msgs {
		lost := all(m.To, 1).Stage == smtptest.AfterData
		if lost {
			replyLost++
		}
		if n := got[m.To][wantMessageID(m.Key)]; n > 1 && !lost {
			t.Errorf("%s got %d copies though every reply reached Herald", m.To, n)
		}
	}
	if replyLost == 0 || dup == 0 {
		t.Fatalf("the test exercised no lost replies (%d) or saw no duplicates (%d)", replyLost, dup)
	}
}

func TestDeliveryRefusesMessagesItCannotSendSafely(t *testing.T) {
	f := newDeliveryFixture(t, smtptest.Options{})
	big := deliveryDigest("digest:daily:big:1", 1, "big@example.net")
	big.HTML = strings.Repeat("<p>A long digest entry, repeated to exceed the limit.</p>\n", 25000)
	injected := deliveryDigest("immediate:7.1:2", 2, "injected@example.net")
	injected.Subject = "Home Office: fees\r\nBcc: everyone@example.net"
	badLink := deliveryDigest("immediate:7.1:3", 3, "link@example.net")
	badLink.UnsubscribeURL = "https://news.example.org/u/x>\r\nX-Evil: 1"
	badAddr := deliveryDigest("immediate:7.1:4", 4, "not an address")
	fine := deliveryDigest("immediate:7.1:5", 5, "fine@example.net")
	if _, err := f.db.EnqueueEmails(context.Background(), []store.OutboxMessage{big, injected, badLink, badAddr, fine}); err != nil {
		t.Fatal(err)
	}
	d := f.deliverer(f.smtpConfig(), nil)
	if sent, err := d.Drain(context.Background()); sent != 1 || err != nil {
		t.Fatalf("Drain = %d, %v; want only the fine message sent", sent, err)
	}
	if f.srv.Count() != 1 || f.srv.Messages()[0].To[0] != "fine@example.net" {
		t.Fatalf("server got %d messages", f.srv.Count())
	}
	failed, err := f.db.FailedMessages(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, m := range failed {
		reasons[m.Key] = m.LastError
	}
	want := map[string]string{
		big.Key:      "over the limit of",
		injected.Key: "subject contains a line break",
		badLink.Key:  "unsubscribe link",
		badAddr.Key:  "recipient address is not valid",
	}
	for key, substr := range want {
		if !strings.Contains(reasons[key], substr) {
			t.Errorf("%s failed with %q, want it to mention %q", key, reasons[key], substr)
		}
	}
	for _, a := range []string{"big@example.net", "injected@example.net"} {
		if ok, _ := f.db.IsSuppressed(context.Background(), a); ok {
			t.Errorf("%s suppressed for Herald's own fault", a)
		}
	}
}

func TestDeliveryResendsAbandonedClaimsWithTheSameMessageID(t *testing.T) {
	f := newDeliveryFixture(t, smtptest.Options{})
	msgs := f.enqueue("2026-03-01", deliveryAddrs(20))
	// A worker claims ten messages and dies without settling them.
	dead, err := f.db.ClaimDue(context.Background(), 10, 2*time.Minute)
	if err != nil || len(dead.Messages) != 10 {
		t.Fatalf("claim = %d, %v", len(dead.Messages), err)
	}
	d := f.deliverer(f.smtpConfig(), nil)
	if sent, _ := d.Drain(context.Background()); sent != 10 {
		t.Fatalf("sent %d while the dead claim held 10, want the other 10", sent)
	}
	f.clock.advance(2*time.Minute + time.Second)
	if sent, _ := d.Drain(context.Background()); sent != 10 {
		t.Fatalf("after the lease ended sent %d, want the 10 abandoned", sent)
	}
	if dup := f.checkOnePerAddress(msgs); dup != 0 {
		t.Fatalf("%d duplicates", dup)
	}
}

func TestDeliveryRenewsLeasesOfLongBatches(t *testing.T) {
	f := newDeliveryFixture(t, smtptest.Options{})
	msgs := f.enqueue("2026-03-01", deliveryAddrs(16))
	// Every send takes ten seconds of the store's clock, so one batch of
	// 16 outlasts a one-minute lease. Eight sends in, another process
	// tries to claim what is due: nothing must be, or the rest of the
	// batch (or what was sent and not yet recorded) would go out twice.
	var stolen int
	var stealErr error
	sends := 0
	f.srv.SetFault(func(string, int) smtptest.Fault {
		f.clock.advance(10 * time.Second)
		if sends++; sends == 8 {
			c, err := f.db.ClaimDue(context.Background(), 100, time.Minute)
			stolen, stealErr = len(c.Messages), err
		}
		return smtptest.Fault{}
	})
	cfg := f.smtpConfig()
	cfg.Concurrency, cfg.BatchSize, cfg.Lease = 1, 16, time.Minute
	if sent, err := f.deliverer(cfg, nil).Drain(context.Background()); err != nil || sent != len(msgs) {
		t.Fatalf("Drain = %d, %v; want %d", sent, err, len(msgs))
	}
	if stealErr != nil || stolen != 0 {
		t.Fatalf("another process claimed %d messages of a batch being sent (%v)", stolen, stealErr)
	}
	if dup := f.checkOnePerAddress(msgs); dup != 0 {
		t.Fatalf("%d messages sent twice", dup)
	}
}

func TestDeliveryRunSendsOnKickAndStopsCleanly(t *testing.T) {
	f := newDeliveryFixture(t, smtptest.Options{})
	cfg := f.smtpConfig()
	cfg.PollInterval = time.Hour // only a kick can wake the workers
	cfg.Rate = 400
	reg := prometheus.NewRegistry()
	d := f.deliverer(cfg, reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	msgs := f.enqueue("2026-03-01", deliveryAddrs(40))
	d.Kick()
	waitFor(t, func() bool { return f.srv.Count() == len(msgs) })

	// A big batch at a low rate; stop halfway through.
	more := f.enqueue("2026-03-02", deliveryAddrs(400))
	d.Kick()
	waitFor(t, func() bool { return f.srv.Count() >= len(msgs)+50 })
	cancel()
	<-done
	c := f.counts()
	if c[store.StatusSending] != 0 {
		t.Fatalf("%d messages left claimed after Run returned", c[store.StatusSending])
	}
	if c[store.StatusSent] != f.srv.Count() {
		t.Fatalf("%d marked sent but the server received %d", c[store.StatusSent], f.srv.Count())
	}
	if c[store.StatusPending] == 0 || c[store.StatusSent]+c[store.StatusPending] != len(msgs)+len(more) {
		t.Fatalf("counts after stopping = %v", c)
	}
	if v := metricValue(t, reg, "herald_messages_sent_total", "sent"); int(v) != c[store.StatusSent] {
		t.Fatalf("herald_messages_sent_total{result=sent} = %v, want %d", v, c[store.StatusSent])
	}
	if v := metricValue(t, reg, "herald_outbox_depth", ""); int(v) != c[store.StatusPending] {
		t.Fatalf("herald_outbox_depth = %v, want %d", v, c[store.StatusPending])
	}
	f.clock.advance(90 * time.Second)
	if v := metricValue(t, reg, "herald_outbox_oldest_due_seconds", ""); v < 89 || v > 91 {
		t.Fatalf("herald_outbox_oldest_due_seconds = %v, want 90", v)
	}
	// What was handed back goes out on the next run.
	if _, err := d.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	all := append(msgs, more...)
	// The rounds share addresses, so count per Message-ID.
	if f.counts()[store.StatusSent] != len(all) {
		t.Fatalf("counts = %v", f.counts())
	}
	for _, m := range all {
		if got := f.srv.MessageIDs()[m.To][wantMessageID(m.Key)]; got != 1 {
			t.Fatalf("%s: message %s arrived %d times", m.To, m.Key, got)
		}
	}
}

func TestDeliveryConfigErrors(t *testing.T) {
	f := newDeliveryFixture(t, smtptest.Options{})
	cases := map[string]delivery.Config{
		"bad from":      {From: "Herald", Transport: "file", Dir: t.TempDir()},
		"no dir":        {From: "alerts@news.example.org", Transport: "file"},
		"bad transport": {From: "alerts@news.example.org", Transport: "pigeon"},
		"bad tls":       {From: "alerts@news.example.org", Transport: "smtp", SMTP: delivery.SMTPConfig{Host: "h", Port: 25, TLS: "maybe"}},
		"bad list id":   {From: "alerts@news.example.org", Transport: "file", Dir: t.TempDir(), ListID: "Herald <no label>"},
		"dkim no key":   {From: "alerts@news.example.org", Transport: "file", Dir: t.TempDir(), DKIM: delivery.DKIMConfig{Domain: "news.example.org", Selector: "h1"}},
		"dkim bad key":  {From: "alerts@news.example.org", Transport: "file", Dir: t.TempDir(), DKIM: delivery.DKIMConfig{Domain: "news.example.org", Selector: "h1", PrivateKeyPEM: []byte("not a key")}},
	}
	for name, cfg := range cases {
		if _, err := delivery.New(f.db, cfg, nil, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	reg := prometheus.NewRegistry()
	f.deliverer(f.smtpConfig(), reg)
	if _, err := delivery.New(f.db, f.smtpConfig(), nil, reg); err == nil {
		t.Error("two deliverers registered the same metrics without an error")
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// while. It waits for work to happen; it measures nothing.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met after 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metricValue reads a gauge or a counter (with the given result label, if
// any) from reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			match := result == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					match = true
				}
			}
			if !match {
				continue
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s{result=%q} not found", name, result)
	return 0
}

// TestDeliveryBacklogSurvivesGreylisting: messages that waited longer than
// RetryMaxAge (a long relay outage) are still tried more than once, so one
// temporary reply does not drop them.
func TestDeliveryBacklogSurvivesGreylisting(t *testing.T) {
	f := newDeliveryFixture(t, smtptest.Options{})
	f.enqueue("2026-03-01", []string{"old@example.net"})
	f.srv.SetFault(smtptest.FirstAttempts(smtptest.ForAddresses(smtptest.Temporary(), "old@example.net"), 1))
	cfg := f.smtpConfig()
	cfg.RetryMaxAge = time.Hour
	f.clock.advance(48 * time.Hour)
	d := f.deliverer(cfg, nil)
	for range 5 {
		if _, err := d.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.clock.advance(2 * time.Hour)
	}
	if c := f.counts(); c[store.StatusSent] != 1 || c[store.StatusFailed] != 0 {
		t.Fatalf("counts = %v, want the backlogged message sent after one temporary failure", c)
	}
}

func TestDeliverySendsFromEachMessagesReturnPath(t *testing.T) {
	f := newDeliveryFixture(t, smtptest.Options{})
	f.enqueue("2026-03-01", deliveryAddrs(3))
	cfg := f.smtpConfig()
	cfg.ReturnPath = func(id int64) string { return fmt.Sprintf("bounces+m%d@bounces.news.example.org", id) }
	d := f.deliverer(cfg, nil)
	if sent, err := d.Drain(context.Background()); err != nil || sent != 3 {
		t.Fatalf("Drain = %d, %v", sent, err)
	}
	// A message sent again (as after a crash) leaves from the same address.
	if err := f.db.ResendMessage(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	if sent, err := d.Drain(context.Background()); err != nil || sent != 1 {
		t.Fatalf("second Drain = %d, %v", sent, err)
	}
	got := map[string][]string{}
	for _, m := range f.srv.Messages() {
		got[m.To[0]] = append(got[m.To[0]], m.From)
		if !bytes.Contains(m.Data, []byte("From: \"Herald\" <alerts@news.example.org>")) && !bytes.Contains(m.Data, []byte("From: Herald <alerts@news.example.org>")) {
			t.Errorf("the From header changed:\n%s", m.Data)
		}
	}
	want := map[string][]string{
		"reader1@example.net": {"bounces+m1@bounces.news.example.org"},
		"reader2@example.net": {"bounces+m2@bounces.news.example.org", "bounces+m2@bounces.news.example.org"},
		"reader3@example.net": {"bounces+m3@bounces.news.example.org"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("envelope senders (-want +got):\n%s", diff)
	}
}
