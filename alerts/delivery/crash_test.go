package delivery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"herald/alerts/delivery"
	"herald/alerts/smtptest"
	"herald/store"
	"herald/store/storetest"
)

// The crash test's subprocess finds its database and SMTP server here.
const (
	crashEnvDB   = "HERALD_CRASH_TEST_DB"
	crashEnvSMTP = "HERALD_CRASH_TEST_SMTP_PORT"
)

// Settings of the subprocess.
const (
	crashWorkers = 4
	crashBatch   = 16
	crashRate    = 400 // messages per second, so that 5,000 outlast ten kills
	crashLease   = time.Second
)

// TestDeliveryCrashChild is the crash test's subprocess: it delivers the
// outbox until it is empty, unless it is killed first. Run on its own, it
// does nothing.
func TestDeliveryCrashChild(t *testing.T) {
	database, port := os.Getenv(crashEnvDB), os.Getenv(crashEnvSMTP)
	if database == "" {
		t.Skip("the crash test's subprocess; TestDeliveryCrashRecovery runs it")
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, database)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d, err := delivery.New(db, delivery.Config{
		From:        "Herald <alerts@news.example.org>",
		Transport:   "smtp",
		SMTP:        delivery.SMTPConfig{Host: "127.0.0.1", Port: p, TLS: "none", Timeout: 5 * time.Second},
		Concurrency: crashWorkers, BatchSize: crashBatch, Rate: crashRate, Lease: crashLease,
		RetryMaxAge: time.Hour, SuppressAfter: 3,
	}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := d.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		depth, err := db.OutboxDepth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if depth == 0 {
			return
		}
		// What is left is held by a killed predecessor's claims: wait
		// for their leases to end.
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDeliveryCrashRecovery sends a digest to 5,000 subscribers from a
// subprocess that is killed with SIGKILL at random moments and restarted,
// at least ten times, then allowed to finish. Every subscriber must get
// the digest, and any copy must carry the same Message-ID: only messages
// in flight at a kill may go twice.
func TestDeliveryCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a subprocess for about half a minute")
	}
	const subscribers, minKills = 5000, 10
	database := storetest.Database(t)
	db, err := store.Open(context.Background(), database)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	msgs := make([]store.OutboxMessage, 0, subscribers)
	for i := 1; i <= subscribers; i++ {
		m := deliveryDigest(fmt.Sprintf("digest:daily:2026-03-01T08:30:00Z:%d", i), int64(i), fmt.Sprintf("subscriber%d@example.net", i))
		msgs = append(msgs, m)
	}
	for start := 0; start < len(msgs); start += 1000 {
		if _, err := db.EnqueueEmails(context.Background(), msgs[start:start+1000]); err != nil {
			t.Fatal(err)
		}
	}
	srv := smtptest.Start(t, smtptest.Options{})

	// inFlight collects, after each kill, the messages the dead process
	// held unsettled: the only ones that may be sent twice.
	kills, runs, inFlight := 0, 0, map[int64]bool{}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("not finished after %d runs and %d kills", runs, kills)
		}
		runs++
		var out bytes.Buffer
		cmd := exec.Command(os.Args[0], "-test.run=^TestDeliveryCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnvDB+"="+database, crashEnvSMTP+"="+strconv.Itoa(srv.Port()))
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if kills < minKills {
			// Anywhere from start-up to well into sending.
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("run %d failed: %v\n%s", runs, err, out.String())
				}
				t.Fatalf("run %d finished before %d kills; slow the subprocess down", runs, minKills)
			case <-time.After(time.Duration(50+rand.IntN(900)) * time.Millisecond):
			}
			cmd.Process.Signal(syscall.SIGKILL)
			err := <-exited
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("run %d ended with %v before the kill\n%s", runs, err, out.String())
			}
			kills++
			if err := crashHeld(db, inFlight); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := <-exited; err != nil {
			t.Fatalf("final run failed: %v\n%s", err, out.String())
		}
		break
	}

	counts, err := db.OutboxCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if counts[store.StatusSent] != subscribers {
		t.Fatalf("counts = %v, want all %d sent", counts, subscribers)
	}
	got := srv.MessageIDs()
	duplicates := 0
	for _, m := range msgs {
		ids := got[m.To]
		if len(ids) != 1 {
			t.Fatalf("%s received %d distinct Message-IDs %v, want 1", m.To, len(ids), ids)
		}
		n, ok := ids[wantMessageID(m.Key)]
		if !ok {
			t.Fatalf("%s received %v, want %s", m.To, ids, wantMessageID(m.Key))
		}
		duplicates += n - 1
	}
	if duplicates > len(inFlight) {
		t.Fatalf("%d duplicates, but the killed processes held only %d messages unsettled", duplicates, len(inFlight))
	}
	t.Logf("%d runs, %d kills, %d messages received, %d sent twice (same Message-ID) of %d held unsettled at the kills",
		runs, kills, srv.Count(), duplicates, len(inFlight))
}

// crashHeld adds the rows a killed process left in sending to held.
func crashHeld(db *store.DB, held map[int64]bool) error {
	for after := int64(0); ; {
		page, err := db.OutboxMessages(context.Background(), after, 500)
		if err != nil {
			return err
		}
		for _, m := range page {
			if m.Status == store.StatusSending {
				held[m.ID] = true
			}
			after = m.ID
		}
		if len(page) < 500 {
			return nil
		}
	}
}
