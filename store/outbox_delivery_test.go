package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/store"
)

func enqueue(t *testing.T, db *store.DB, n int, addr func(i int) string) {
	t.Helper()
	msgs := make([]store.OutboxMessage, n)
	for i := range msgs {
		msgs[i] = store.OutboxMessage{Key: fmt.Sprintf("digest:daily:2026-03-01:%d", i), Kind: store.KindDigest,
			SubscriberID: int64(i + 1), To: addr(i), Subject: "Your daily digest", Text: "text", HTML: "<p>html</p>",
			UnsubscribeURL: "https://news.example.org/unsubscribe/t"}
	}
	if got, err := db.EnqueueEmails(context.Background(), msgs); err != nil || got != n {
		t.Fatalf("enqueue = %d, %v; want %d", got, err, n)
	}
}

func person(i int) string { return fmt.Sprintf("reader%d@example.net", i) }

func ids(c store.OutboxClaim) []int64 {
	var out []int64
	for _, m := range c.Messages {
		out = append(out, m.ID)
	}
	return out
}

func TestClaimDueHoldsRowsUntilTheLeaseEnds(t *testing.T) {
	db, now := openTest(t)
	ctx := context.Background()
	enqueue(t, db, 5, person)

	first, err := db.ClaimDue(ctx, 3, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Messages) != 3 || first.Token == "" || !first.Until.Equal(now.Add(time.Minute)) {
		t.Fatalf("first claim = %d messages, token %q, until %v", len(first.Messages), first.Token, first.Until)
	}
	m := first.Messages[0]
	if m.Attempts != 1 || m.Status != store.StatusSending || m.Text != "text" || m.HTML != "<p>html</p>" ||
		m.MessageID != store.MessageIDFor(m.Key) || !m.RetryFrom.Equal(*now) || m.UnsubscribeURL == "" {
		t.Fatalf("claimed message = %+v", m)
	}
	second, err := db.ClaimDue(ctx, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Messages) != 2 {
		t.Fatalf("second claim took %d rows, want the 2 unclaimed", len(second.Messages))
	}
	if again, _ := db.ClaimDue(ctx, 10, time.Minute); len(again.Messages) != 0 {
		t.Fatalf("claimed %d rows that are held", len(again.Messages))
	}

	// The first holder dies; after its lease the rows are due again, with
	// the same Message-IDs, and its late report no longer counts.
	*now = now.Add(time.Minute + time.Second)
	third, err := db.ClaimDue(ctx, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(third), ids(first)) && !slices.Equal(ids(third), append(ids(first), ids(second)...)) {
		t.Fatalf("reclaimed %v, want the first claim's %v (and maybe the second's)", ids(third), ids(first))
	}
	// The abandoned attempt was never settled, so it is not counted.
	if third.Messages[0].Attempts != 1 || third.Messages[0].MessageID != m.MessageID {
		t.Fatalf("reclaimed message = %+v", third.Messages[0])
	}
	tally, err := db.RecordDeliveries(ctx, []store.DeliveryOutcome{{ID: m.ID, Token: first.Token, Status: store.StatusSent}}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if tally.Sent != 0 {
		t.Fatalf("a lapsed claim settled a row: %+v", tally)
	}
	tally, err = db.RecordDeliveries(ctx, []store.DeliveryOutcome{{ID: m.ID, Token: third.Token, Status: store.StatusSent, Address: m.To}}, 3)
	if err != nil || tally.Sent != 1 {
		t.Fatalf("record = %+v, %v", tally, err)
	}
}

func TestRenewAndReleaseClaim(t *testing.T) {
	db, now := openTest(t)
	ctx := context.Background()
	enqueue(t, db, 2, person)
	c, err := db.ClaimDue(ctx, 2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	*now = now.Add(50 * time.Second)
	until, held, err := db.RenewClaim(ctx, c.Token, ids(c), time.Minute)
	if err != nil || len(held) != 2 || !until.Equal(now.Add(time.Minute)) {
		t.Fatalf("renew = %v, %v, %v", until, held, err)
	}
	*now = now.Add(30 * time.Second) // past the first lease, inside the renewed one
	if again, _ := db.ClaimDue(ctx, 10, time.Minute); len(again.Messages) != 0 {
		t.Fatalf("renewed rows were claimed again")
	}
	if _, held, _ := db.RenewClaim(ctx, "someone-else", ids(c), time.Minute); len(held) != 0 {
		t.Fatalf("another token renewed %v", held)
	}
	if err := db.ReleaseClaim(ctx, c.Token, ids(c)[1:]); err != nil {
		t.Fatal(err)
	}
	again, err := db.ClaimDue(ctx, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(again), ids(c)[1:]) || again.Messages[0].Attempts != 1 {
		t.Fatalf("after release claimed %v (attempts %d), want %v with the attempt not counted",
			ids(again), again.Messages[0].Attempts, ids(c)[1:])
	}
}

func TestRecordDeliveriesSettlesRows(t *testing.T) {
	db, now := openTest(t)
	ctx := context.Background()
	enqueue(t, db, 3, person)
	c, err := db.ClaimDue(ctx, 3, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	next := now.Add(2 * time.Minute)
	tally, err := db.RecordDeliveries(ctx, []store.DeliveryOutcome{
		{ID: c.Messages[0].ID, Token: c.Token, Status: store.StatusSent, Address: c.Messages[0].To},
		{ID: c.Messages[1].ID, Token: c.Token, Status: store.StatusPending, NextAttemptAt: next, Error: "451 try later"},
		{ID: c.Messages[2].ID, Token: c.Token, Status: store.StatusFailed, Error: "554 message refused"},
	}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if tally != (store.DeliveryTally{Sent: 1, Retried: 1, Failed: 1}) {
		t.Fatalf("tally = %+v", tally)
	}
	counts, err := db.OutboxCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"pending": 1, "sending": 0, "sent": 1, "failed": 1, "suppressed": 0}
	if !mapsEqual(counts, want) {
		t.Fatalf("counts = %v, want %v", counts, want)
	}
	if depth, _ := db.OutboxDepth(ctx); depth != 1 {
		t.Fatalf("depth = %d, want 1", depth)
	}
	if oldest, _ := db.OldestDue(ctx); !oldest.Equal(next) {
		t.Fatalf("oldest due = %v, want %v", oldest, next)
	}
	if got, _ := db.ClaimDue(ctx, 10, time.Minute); len(got.Messages) != 0 {
		t.Fatalf("a retry was claimed before its time")
	}
	*now = next
	got, err := db.ClaimDue(ctx, 10, time.Minute)
	if err != nil || len(got.Messages) != 1 || got.Messages[0].LastError != "451 try later" || got.Messages[0].Attempts != 2 {
		t.Fatalf("retry claim = %+v, %v", got.Messages, err)
	}
	failed, err := db.FailedMessages(ctx, 10)
	if err != nil || len(failed) != 1 || failed[0].LastError != "554 message refused" || failed[0].ID != c.Messages[2].ID {
		t.Fatalf("failed = %+v, %v", failed, err)
	}
	if _, err := db.RecordDeliveries(ctx, []store.DeliveryOutcome{{ID: 1, Token: c.Token, Status: "lost"}}, 3); err == nil {
		t.Fatal("an unknown outcome was accepted")
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestBouncesSuppressAnAddress(t *testing.T) {
	db, now := openTest(t)
	ctx := context.Background()
	const bad = "gone@example.net"
	// Queued before the address goes bad, due after it is suppressed.
	early := []store.OutboxMessage{{Key: "early", Kind: store.KindDigest, To: bad, Subject: "s", Text: "t", NextAttemptAt: now.Add(10 * time.Hour)}}
	if _, err := db.EnqueueEmails(ctx, early); err != nil {
		t.Fatal(err)
	}
	// Three digests to the bad address, one to a good one each round.
	for round := 0; round < 3; round++ {
		msgs := []store.OutboxMessage{
			{Key: fmt.Sprintf("r%d:bad", round), Kind: store.KindDigest, To: bad, Subject: "s", Text: "t"},
			{Key: fmt.Sprintf("r%d:good", round), Kind: store.KindDigest, To: "fine@example.net", Subject: "s", Text: "t"},
		}
		if _, err := db.EnqueueEmails(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		c, err := db.ClaimDue(ctx, 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		var outs []store.DeliveryOutcome
		for _, m := range c.Messages {
			o := store.DeliveryOutcome{ID: m.ID, Token: c.Token, Status: store.StatusSent, Address: m.To}
			if m.To == bad {
				o.Status, o.Bounce, o.Error = store.StatusFailed, true, "550 5.1.1 no such mailbox"
			}
			outs = append(outs, o)
		}
		tally, err := db.RecordDeliveries(ctx, outs, 2)
		if err != nil {
			t.Fatal(err)
		}
		wantNew := 0
		if round == 1 {
			wantNew = 1
		}
		if round == 2 && len(c.Messages) != 1 {
			t.Fatalf("round 3 claimed %d messages, want only the good address's", len(c.Messages))
		}
		if tally.NewlySuppressed != wantNew {
			t.Fatalf("round %d: newly suppressed = %d, want %d", round, tally.NewlySuppressed, wantNew)
		}
		*now = now.Add(time.Hour)
	}
	*now = now.Add(10 * time.Hour)
	c, err := db.ClaimDue(ctx, 10, time.Minute)
	if err != nil || len(c.Messages) != 0 || c.Suppressed != 1 {
		t.Fatalf("claiming the early message: %d messages, %d suppressed, %v; want it suppressed", len(c.Messages), c.Suppressed, err)
	}
	if ok, err := db.IsSuppressed(ctx, bad); err != nil || !ok {
		t.Fatalf("IsSuppressed = %v, %v", ok, err)
	}
	if ok, _ := db.IsSuppressed(ctx, "fine@example.net"); ok {
		t.Fatal("a good address is suppressed")
	}
	list, err := db.Suppressions(ctx, 10)
	if err != nil || len(list) != 1 || list[0].Address != "gone@example.net" || list[0].Failures != 2 || list[0].Reason == "" {
		t.Fatalf("suppressions = %+v, %v", list, err)
	}
	// New mail to it is stored suppressed at once.
	if _, err := db.EnqueueEmails(ctx, []store.OutboxMessage{{Key: "later", Kind: store.KindImmediate, To: bad, Subject: "s", Text: "t"}}); err != nil {
		t.Fatal(err)
	}
	counts, _ := db.OutboxCounts(ctx)
	if counts[store.StatusSuppressed] != 3 || counts[store.StatusFailed] != 2 || counts[store.StatusSent] != 3 {
		t.Fatalf("counts = %v", counts)
	}

	if err := db.LiftSuppression(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if err := db.LiftSuppression(ctx, bad); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("lifting twice = %v, want ErrNotFound", err)
	}
	// The count started again: one more bounce does not suppress.
	if _, err := db.EnqueueEmails(ctx, []store.OutboxMessage{{Key: "after-lift", Kind: store.KindImmediate, To: bad, Subject: "s", Text: "t"}}); err != nil {
		t.Fatal(err)
	}
	c, err = db.ClaimDue(ctx, 10, time.Minute)
	if err != nil || len(c.Messages) != 1 {
		t.Fatalf("after lift claimed %d, %v", len(c.Messages), err)
	}
	tally, err := db.RecordDeliveries(ctx, []store.DeliveryOutcome{{ID: c.Messages[0].ID, Token: c.Token, Status: store.StatusFailed, Bounce: true, Address: bad, Error: "550"}}, 2)
	if err != nil || tally.NewlySuppressed != 0 {
		t.Fatalf("after lift: %+v, %v", tally, err)
	}

	if err := db.Suppress(ctx, "complained@example.net", "complaint"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := db.IsSuppressed(ctx, "complained@example.net"); !ok {
		t.Fatal("manual suppression not stored")
	}
}

func TestASuccessClearsAnAddressFailures(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	const addr = "flaky@example.net"
	outcomes := []string{store.StatusFailed, store.StatusSent, store.StatusFailed}
	for i, status := range outcomes {
		if _, err := db.EnqueueEmails(ctx, []store.OutboxMessage{{Key: fmt.Sprint(i), Kind: store.KindDigest, To: addr, Subject: "s", Text: "t"}}); err != nil {
			t.Fatal(err)
		}
		c, err := db.ClaimDue(ctx, 1, time.Minute)
		if err != nil || len(c.Messages) != 1 {
			t.Fatalf("claim %d: %v", i, err)
		}
		o := store.DeliveryOutcome{ID: c.Messages[0].ID, Token: c.Token, Status: status, Address: addr, Bounce: status == store.StatusFailed}
		if _, err := db.RecordDeliveries(ctx, []store.DeliveryOutcome{o}, 2); err != nil {
			t.Fatal(err)
		}
	}
	if ok, _ := db.IsSuppressed(ctx, addr); ok {
		t.Fatal("two failures with a success between them suppressed the address")
	}
}

func TestOutcomesInOneBatchCountInOrder(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	const addr = "order@example.net"
	for i := range 3 {
		if _, err := db.EnqueueEmails(ctx, []store.OutboxMessage{{Key: fmt.Sprint("o", i), Kind: store.KindDigest, To: addr, Subject: "s", Text: "t"}}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := db.ClaimDue(ctx, 10, time.Minute)
	if err != nil || len(c.Messages) != 3 {
		t.Fatalf("claim = %d, %v", len(c.Messages), err)
	}
	fail := func(m store.ClaimedMessage) store.DeliveryOutcome {
		return store.DeliveryOutcome{ID: m.ID, Token: c.Token, Status: store.StatusFailed, Bounce: true, Address: addr, Error: "550"}
	}
	if _, err := db.RecordDeliveries(ctx, []store.DeliveryOutcome{fail(c.Messages[0])}, 2); err != nil {
		t.Fatal(err)
	}
	// A success then a failure: the success clears the first failure, so
	// the address has one failure, not two.
	batch := []store.DeliveryOutcome{
		{ID: c.Messages[1].ID, Token: c.Token, Status: store.StatusSent, Address: addr},
		fail(c.Messages[2]),
	}
	tally, err := db.RecordDeliveries(ctx, batch, 2)
	if err != nil {
		t.Fatal(err)
	}
	if tally != (store.DeliveryTally{Sent: 1, Failed: 1}) {
		t.Fatalf("tally = %+v", tally)
	}
	if ok, _ := db.IsSuppressed(ctx, addr); ok {
		t.Fatal("suppressed: the success between the failures was applied after them")
	}
}

// TestClaimAndSendKeepRecordSize guards the widths that let SQLite rewrite
// a digest's row in place when it is claimed and marked sent (see noClaim):
// a change of time format or token length would quietly double the pages
// written per message.
func TestClaimAndSendKeepRecordSize(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	enqueue(t, db, 1, person)
	size := func() int {
		var n int
		err := db.SQL().QueryRow(`SELECT length(status) + length(sent_at) + length(claim_token) + length(next_attempt_at)
			+ length(last_error) + length(claimed_until) + length(retry_from) FROM outbox`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	pending := size()
	c, err := db.ClaimDue(ctx, 1, time.Minute)
	if err != nil || len(c.Messages) != 1 {
		t.Fatalf("claim = %v, %v", c.Messages, err)
	}
	if claimed := size(); claimed != pending {
		t.Fatalf("claiming changed the variable columns from %d to %d bytes", pending, claimed)
	}
	if _, err := db.RecordDeliveries(ctx, []store.DeliveryOutcome{{ID: c.Messages[0].ID, Token: c.Token, Status: store.StatusSent}}, 3); err != nil {
		t.Fatal(err)
	}
	if sent := size(); sent != pending {
		t.Fatalf("marking sent changed the variable columns from %d to %d bytes", pending, sent)
	}
}

func TestRetryMessage(t *testing.T) {
	db, now := openTest(t)
	ctx := context.Background()
	enqueue(t, db, 2, person)
	c, _ := db.ClaimDue(ctx, 2, time.Minute)
	failedID, sentID := c.Messages[0].ID, c.Messages[1].ID
	if _, err := db.RecordDeliveries(ctx, []store.DeliveryOutcome{
		{ID: failedID, Token: c.Token, Status: store.StatusFailed, Error: "gave up"},
		{ID: sentID, Token: c.Token, Status: store.StatusSent},
	}, 3); err != nil {
		t.Fatal(err)
	}
	if err := db.RetryMessage(ctx, sentID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("retrying a sent message = %v, want ErrConflict", err)
	}
	if err := db.RetryMessage(ctx, 999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("retrying an unknown message = %v, want ErrNotFound", err)
	}
	*now = now.Add(72 * time.Hour)
	if err := db.RetryMessage(ctx, failedID); err != nil {
		t.Fatal(err)
	}
	again, err := db.ClaimDue(ctx, 10, time.Minute)
	if err != nil || len(again.Messages) != 1 {
		t.Fatalf("claim after retry = %v, %v", again.Messages, err)
	}
	if m := again.Messages[0]; m.ID != failedID || m.Attempts != 1 || !m.RetryFrom.Equal(*now) || m.LastError != "" {
		t.Fatalf("retried message = %+v", m)
	}
}

func TestPurgeBodiesKeepsUnsentAndRecentMessages(t *testing.T) {
	db, now := openTest(t)
	ctx := context.Background()
	enqueue(t, db, 4, person) // created at day 0
	c, _ := db.ClaimDue(ctx, 3, time.Minute)
	outs := []store.DeliveryOutcome{
		{ID: c.Messages[0].ID, Token: c.Token, Status: store.StatusSent},
		{ID: c.Messages[1].ID, Token: c.Token, Status: store.StatusFailed},
		{ID: c.Messages[2].ID, Token: c.Token, Status: store.StatusPending, NextAttemptAt: now.Add(time.Hour)},
	}
	if _, err := db.RecordDeliveries(ctx, outs, 3); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(8 * 24 * time.Hour)
	enqueue2 := []store.OutboxMessage{{Key: "recent", Kind: store.KindImmediate, To: person(9), Subject: "s", Text: "recent", HTML: "<p>recent</p>"}}
	if _, err := db.EnqueueEmails(ctx, enqueue2); err != nil {
		t.Fatal(err)
	}
	rc, _ := db.ClaimDue(ctx, 10, time.Minute)
	var recent []store.DeliveryOutcome
	for _, m := range rc.Messages {
		if m.Key == "recent" {
			recent = append(recent, store.DeliveryOutcome{ID: m.ID, Token: rc.Token, Status: store.StatusSent})
		}
	}
	if _, err := db.RecordDeliveries(ctx, recent, 3); err != nil {
		t.Fatal(err)
	}
	n, err := db.PurgeBodies(ctx, now.Add(-7*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("purged %d, want the old sent and failed messages", n)
	}
	if n, _ := db.PurgeBodies(ctx, now.Add(-7*24*time.Hour)); n != 0 {
		t.Fatalf("second purge touched %d rows", n)
	}
	if err := db.RetryMessage(ctx, c.Messages[1].ID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("retrying a purged message = %v, want ErrConflict", err)
	}
	rows, err := db.SQL().QueryContext(ctx, `SELECT key, text_body, html_body, unsubscribe_url, purged FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var key, text, html, unsub string
		var purged bool
		if err := rows.Scan(&key, &text, &html, &unsub, &purged); err != nil {
			t.Fatal(err)
		}
		old := key == c.Messages[0].Key || key == c.Messages[1].Key
		if old != purged || old != (text == "" && html == "" && unsub == "") {
			t.Errorf("%s: purged=%v text=%q html=%q unsubscribe=%q", key, purged, text, html, unsub)
		}
	}
}

func TestConcurrentClaimsNeverShareARow(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	enqueue(t, db, 400, person)
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := db.ClaimDue(ctx, 7, time.Hour)
				if err != nil {
					errs <- err
					return
				}
				if len(c.Messages) == 0 {
					return
				}
				var outs []store.DeliveryOutcome
				mu.Lock()
				for _, m := range c.Messages {
					seen[m.ID]++
					outs = append(outs, store.DeliveryOutcome{ID: m.ID, Token: c.Token, Status: store.StatusSent})
				}
				mu.Unlock()
				if _, err := db.RecordDeliveries(ctx, outs, 3); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != 400 {
		t.Fatalf("claimed %d distinct rows, want 400", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("row %d claimed %d times", id, n)
		}
	}
}

// BenchmarkOutboxClaimAndSettle claims and marks sent n digest-sized rows
// (12 KB of body each), 32 per claim, the store's share of delivering them.
func BenchmarkOutboxClaimAndSettle(b *testing.B) {
	ctx := context.Background()
	body := strings.Repeat("Partners pledge to tackle human trafficking. ", 180)
	const n = 5000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db, err := store.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		batch := make([]store.OutboxMessage, 0, 1000)
		for j := 1; j <= n; j++ {
			batch = append(batch, store.OutboxMessage{Key: fmt.Sprint("digest:", j), Kind: store.KindDigest,
				To: fmt.Sprintf("s%d@example.net", j), Subject: "Digest", Text: body[:4000], HTML: body})
			if len(batch) == cap(batch) {
				if _, err := db.EnqueueEmails(ctx, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		b.StartTimer()
		for {
			c, err := db.ClaimDue(ctx, 32, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			if len(c.Messages) == 0 {
				break
			}
			outs := make([]store.DeliveryOutcome, len(c.Messages))
			for k, m := range c.Messages {
				outs[k] = store.DeliveryOutcome{ID: m.ID, Token: c.Token, Status: store.StatusSent, Address: m.To}
			}
			if _, err := db.RecordDeliveries(ctx, outs, 3); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		db.Close()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}
