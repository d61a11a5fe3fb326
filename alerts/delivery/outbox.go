package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"herald/store"
)

// Store is what delivery needs from the store.
type Store interface {
	ClaimDue(ctx context.Context, limit int, lease time.Duration) (store.OutboxClaim, error)
	RenewClaim(ctx context.Context, token string, ids []int64, lease time.Duration) (time.Time, []int64, error)
	ReleaseClaim(ctx context.Context, token string, ids []int64) error
	RecordDeliveries(ctx context.Context, outcomes []store.DeliveryOutcome, suppressAfter int) (store.DeliveryTally, error)
	OutboxDepth(ctx context.Context) (int, error)
	OldestDue(ctx context.Context) (time.Time, error)
}

// Retry timing: the n-th temporary failure waits about backoffBase
// doubled n-1 times, at most backoffMax, with jitter so that a burst
// of failures does not come back as a burst.
const (
	backoffBase = time.Minute
	backoffMax  = time.Hour
)

// Outcomes are recorded in transactions of up to commitBatch,
// gathered for at most commitWait (see commit).
const (
	commitBatch = 128
	commitWait  = 20 * time.Millisecond
)

// Deliverer sends the outbox: workers claim due messages, render them and
// hand them to the transport, and record what happened. It is safe for
// concurrent use; Run and Drain may even overlap.
type Deliverer struct {
	store   Store
	cfg     Config
	log     *slog.Logger
	mime    *mimeBuilder
	dkim    *dkimSigner
	newConn func() sender
	limiter *rate.Limiter
	metrics *metrics

	// writeMu queues the deliverer's own write transactions in Go rather
	// than in SQLite's busy handler, which sleeps in steps of milliseconds.
	writeMu sync.Mutex

	kickMu sync.Mutex
	kickCh chan struct{}
}

// New checks cfg and returns a Deliverer over db. reg may be nil.
func New(db Store, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Deliverer, error) {
	if db == nil {
		return nil, errors.New("delivery: deliverer needs a store")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	d := &Deliverer{store: db, cfg: cfg, log: log, kickCh: make(chan struct{})}
	var err error
	if d.mime, err = newMIMEBuilder(cfg); err != nil {
		return nil, err
	}
	if d.dkim, err = newDKIMSigner(cfg.DKIM); err != nil {
		return nil, err
	}
	switch cfg.Transport {
	case "smtp":
		if d.newConn, err = newSMTPSenderFactory(cfg.SMTP); err != nil {
			return nil, err
		}
	case "file":
		fs, err := newFileSender(cfg.Dir)
		if err != nil {
			return nil, err
		}
		d.newConn = func() sender { return fs }
	}
	limit := rate.Inf
	if cfg.Rate > 0 {
		limit = rate.Limit(cfg.Rate)
	}
	d.limiter = rate.NewLimiter(limit, max(1, cfg.Concurrency))
	if d.metrics, err = newMetrics(reg, d); err != nil {
		return nil, err
	}
	return d, nil
}

// Kick wakes idle workers: new messages were enqueued.
func (d *Deliverer) Kick() {
	d.kickMu.Lock()
	close(d.kickCh)
	d.kickCh = make(chan struct{})
	d.kickMu.Unlock()
}

func (d *Deliverer) kicked() <-chan struct{} {
	d.kickMu.Lock()
	defer d.kickMu.Unlock()
	return d.kickCh
}

// Run delivers until ctx ends: Concurrency workers send what is due and
// wait for Kick or the poll interval when nothing is. On return every
// outcome has been recorded and unsent claims handed back. Purging old
// bodies is housekeeping's (alerts.Service.Housekeep), run once for all
// instances.
func (d *Deliverer) Run(ctx context.Context) {
	where := slog.String("relay", fmt.Sprintf("%s:%d", d.cfg.SMTP.Host, d.cfg.SMTP.Port))
	if d.cfg.Transport == "file" {
		where = slog.String("dir", d.cfg.Dir)
	}
	d.log.Info("outbox: delivering", slog.String("transport", d.cfg.Transport), where,
		slog.Int("workers", d.cfg.Concurrency), slog.Float64("rate", d.cfg.Rate))
	_, _ = d.run(ctx, false)
}

// Drain sends every message that is due now and returns how many were
// sent, once all outcomes are recorded. Messages that failed temporarily
// are left for their retry time. It returns early with ctx's error, or
// with a store error.
func (d *Deliverer) Drain(ctx context.Context) (int, error) {
	return d.run(ctx, true)
}

func (d *Deliverer) run(ctx context.Context, drain bool) (int, error) {
	results := make(chan store.DeliveryOutcome, 4*d.cfg.BatchSize)
	var sent int
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		sent = d.commit(results)
	}()
	var wg sync.WaitGroup
	errs := make(chan error, d.cfg.Concurrency)
	for range d.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.work(ctx, results, drain); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(results)
	<-committed
	close(errs)
	if err := <-errs; err != nil {
		return sent, err
	}
	return sent, ctx.Err()
}

// commit records outcomes as they arrive, in transactions of up to
// commitBatch outcomes gathered for at most commitWait after
// the first: one transaction for many messages writes the shared index
// pages once, where a transaction per message would write them for each.
// The wait is the longest a sent message stays unrecorded, and so can be
// sent again after a crash. commit returns how many messages it marked
// sent; it runs past the workers' context so that what was sent is not
// forgotten.
func (d *Deliverer) commit(results <-chan store.DeliveryOutcome) int {
	sent := 0
	batch := make([]store.DeliveryOutcome, 0, commitBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for o := range results {
		batch = append(batch[:0], o)
		timer.Reset(commitWait)
	gather:
		for len(batch) < commitBatch {
			select {
			case o, ok := <-results:
				if !ok {
					break gather
				}
				batch = append(batch, o)
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		sent += d.record(batch)
	}
	return sent
}

// record stores a batch of outcomes, trying a few times if the database is
// busy. If it cannot, the rows stay claimed until their lease ends and are
// sent again then, with the same Message-IDs.
func (d *Deliverer) record(batch []store.DeliveryOutcome) int {
	var err error
	for try := range 5 {
		if try > 0 {
			time.Sleep(time.Duration(try*try) * 200 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var t store.DeliveryTally
		d.writeMu.Lock()
		t, err = d.store.RecordDeliveries(ctx, batch, d.cfg.SuppressAfter)
		d.writeMu.Unlock()
		cancel()
		if err == nil {
			d.metrics.result("sent", t.Sent)
			d.metrics.result("retry", t.Retried)
			d.metrics.result("failed", t.Failed)
			if t.NewlySuppressed > 0 {
				d.log.Info("outbox: addresses suppressed after repeated permanent failures",
					slog.Int("addresses", t.NewlySuppressed))
			}
			return t.Sent
		}
	}
	d.log.Error("outbox: recording outcomes failed; the messages will be sent again when their lease ends",
		slog.Int("messages", len(batch)), slog.Any("error", err))
	return 0
}

// work is one worker: claim, send, repeat. In drain mode it returns when
// nothing is due; otherwise it waits to be kicked or for the next poll.
func (d *Deliverer) work(ctx context.Context, results chan<- store.DeliveryOutcome, drain bool) error {
	w := &worker{d: d, conn: d.newConn()}
	defer w.conn.close()
	failures := 0
	for ctx.Err() == nil {
		wake := d.kicked()
		d.writeMu.Lock()
		claim, err := d.store.ClaimDue(ctx, d.cfg.BatchSize, d.cfg.Lease)
		d.writeMu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if drain {
				return err
			}
			failures++
			d.log.Error("outbox: claiming messages failed", slog.Any("error", err))
			sleepCtx(ctx, min(time.Duration(failures)*time.Second, time.Minute))
			continue
		}
		failures = 0
		d.metrics.result("suppressed", claim.Suppressed)
		if len(claim.Messages) == 0 {
			if drain {
				return nil
			}
			w.conn.idle()
			t := time.NewTimer(d.cfg.PollInterval)
			select {
			case <-ctx.Done():
			case <-wake:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		w.deliverClaim(ctx, claim, results)
	}
	return nil
}

// sleepCtx waits for d or until ctx ends, reporting whether it waited.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// worker is one worker's connection and buffers.
type worker struct {
	d    *Deliverer
	conn sender
	// buf holds the rendered message; signed, the same with its DKIM
	// signature in front.
	buf, signed bytes.Buffer
}

// render composes, renders and (when configured) signs one row, and checks
// the size of the bytes that will be sent.
func (w *worker) render(m *store.ClaimedMessage) (raw []byte, from, rcpt string, err error) {
	msg, from, rcpt, err := w.d.mime.build(m.OutboxMessage)
	if err != nil {
		return nil, "", "", err
	}
	if err := mimeRender(msg, &w.buf); err != nil {
		return nil, "", "", err
	}
	raw = w.buf.Bytes()
	if w.d.dkim != nil {
		if err := w.d.dkim.sign(raw, &w.signed); err != nil {
			return nil, "", "", err
		}
		raw = w.signed.Bytes()
	}
	return raw, from, rcpt, mimeCheckSize(raw)
}

// deliverClaim sends a claim's messages one by one, renewing the lease
// when it could run out during a send and handing back what it could not
// send because ctx ended.
func (w *worker) deliverClaim(ctx context.Context, claim store.OutboxClaim, results chan<- store.DeliveryOutcome) {
	d := w.d
	ids := make([]int64, len(claim.Messages))
	for i, m := range claim.Messages {
		ids[i] = m.ID
	}
	until := claim.Until
	lost := map[int64]bool{}
	var relayDown error
	for i := range claim.Messages {
		m := &claim.Messages[i]
		if err := d.limiter.Wait(ctx); err != nil {
			d.release(claim.Token, ids[i:])
			return
		}
		// Renew at half time, so that the lease outlasts the next send
		// (connecting and sending take at most two timeouts). The rows
		// already sent are renewed too: their outcomes may not be
		// recorded yet.
		if until.Sub(d.cfg.Now()) < d.cfg.Lease/2 {
			d.writeMu.Lock()
			next, held, err := d.store.RenewClaim(ctx, claim.Token, ids, d.cfg.Lease)
			d.writeMu.Unlock()
			if err != nil {
				if ctx.Err() == nil {
					d.log.Error("outbox: renewing a claim failed; leaving the rest to its lease", slog.Any("error", err))
				}
				return
			}
			until = next
			clear(lost)
			for _, id := range ids[i:] {
				lost[id] = true
			}
			for _, id := range held {
				delete(lost, id)
			}
		}
		if lost[m.ID] {
			continue
		}
		var o store.DeliveryOutcome
		if relayDown != nil {
			// The relay refused a connection a moment ago: put the rest
			// of the claim off without hammering it.
			o = d.retryOrFail(m, claim.Token, relayDown.Error())
		} else {
			var dialErr bool
			o, dialErr = w.deliver(ctx, m, claim.Token)
			if dialErr {
				relayDown = errors.New(o.Error)
			}
		}
		results <- o
	}
}

func (d *Deliverer) release(token string, ids []int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.writeMu.Lock()
	err := d.store.ReleaseClaim(ctx, token, ids)
	d.writeMu.Unlock()
	if err != nil {
		d.log.Error("outbox: handing back unsent messages failed; they wait for their lease to end", slog.Any("error", err))
	}
}

// deliver renders and sends one message and says what became of it, and
// whether the relay could not be reached at all.
func (w *worker) deliver(ctx context.Context, m *store.ClaimedMessage, token string) (store.DeliveryOutcome, bool) {
	d := w.d
	log := d.log.With(slog.String("key", m.Key), slog.Int("attempt", m.Attempts))
	for _, b := range []*bytes.Buffer{&w.buf, &w.signed} {
		if b.Cap() > 4*maxMessageBytes {
			*b = bytes.Buffer{} // let an outsized message's buffer go
		}
	}
	raw, from, rcpt, err := w.render(m)
	if err != nil {
		log.Warn("outbox: message cannot be sent", slog.Any("error", err))
		return store.DeliveryOutcome{ID: m.ID, Token: token, Status: store.StatusFailed, Address: m.To, Error: err.Error()}, false
	}
	start := time.Now()
	err = w.conn.send(ctx, m, from, rcpt, raw)
	d.metrics.sendDuration(time.Since(start))
	if err == nil {
		log.Debug("outbox: sent")
		return store.DeliveryOutcome{ID: m.ID, Token: token, Status: store.StatusSent, Address: m.To}, false
	}
	v := classify(err)
	log.Debug("outbox: send failed", slog.Any("error", err), slog.Bool("permanent", v.permanent))
	if v.permanent {
		return store.DeliveryOutcome{ID: m.ID, Token: token, Status: store.StatusFailed, Address: m.To,
			Bounce: v.bounce, Error: v.reason}, false
	}
	if v.dial {
		log.Warn("outbox: cannot reach the mail relay", slog.Any("error", err))
	}
	return d.retryOrFail(m, token, v.reason), v.dial
}

// minAttempts is how many times a message is tried before it may
// be given up for its age: a backlog older than RetryMaxAge (after a long
// relay outage) must not be dropped at the first greylisting reply.
const minAttempts = 3

// retryOrFail schedules another attempt after a temporary failure, or
// fails the message when it has been retried for RetryMaxAge and at least
// minAttempts times.
func (d *Deliverer) retryOrFail(m *store.ClaimedMessage, token, reason string) store.DeliveryOutcome {
	now := d.cfg.Now()
	o := store.DeliveryOutcome{ID: m.ID, Token: token, Address: m.To, Error: reason}
	tried := m.Attempts + 1 // this attempt included
	if now.Sub(m.RetryFrom) >= d.cfg.RetryMaxAge && tried >= minAttempts {
		o.Status = store.StatusFailed
		o.Error = fmt.Sprintf("gave up after %d attempts over %s: %s", tried, d.cfg.RetryMaxAge, reason)
		return o
	}
	o.Status = store.StatusPending
	o.NextAttemptAt = now.Add(backoff(m.Attempts))
	return o
}

// backoff is the wait after the attempt-th try: exponential, capped,
// with the upper half jittered.
func backoff(attempt int) time.Duration {
	d := backoffBase
	for i := 1; i < attempt && d < backoffMax; i++ {
		d *= 2
	}
	d = min(d, backoffMax)
	return d/2 + rand.N(d/2+1)
}
