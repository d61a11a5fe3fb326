package delivery_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"herald/alerts/delivery"
	"herald/alerts/smtptest"
	"herald/store"
	"herald/store/storetest"
)

// BenchmarkDelivery sends a daily digest already in the outbox to n
// subscribers through an SMTP server on loopback (in this process, keeping
// counts only), with 4 workers and no rate limit. It reports messages per
// second and the process's peak resident memory (VmHWM), which includes the
// SMTP server and SQLite. Compare the peaks of separate runs to see that
// memory does not grow with n:
//
//	go test ./alerts/delivery -run '^$' -bench 'Delivery/messages=10000$' -benchtime 1x
//	go test ./alerts/delivery -run '^$' -bench 'Delivery/messages=100000$' -benchtime 1x
func BenchmarkDelivery(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) { benchDelivery(b, n) })
	}
}

func benchDelivery(b *testing.B, n int) {
	ctx := context.Background()
	var elapsed, cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db, err := store.Open(ctx, storetest.Database(b))
		if err != nil {
			b.Fatal(err)
		}
		srv := smtptest.Start(b, smtptest.Options{CountOnly: true})
		benchEnqueueDigest(b, db, n)
		d, err := delivery.New(db, delivery.Config{
			From:      "Herald <alerts@news.example.org>",
			Transport: "smtp",
			SMTP:      delivery.SMTPConfig{Host: srv.Host(), Port: srv.Port(), TLS: "none", Timeout: 30 * time.Second},
			// Rate zero: no limit.
			Concurrency: 4, RetryMaxAge: 48 * time.Hour, SuppressAfter: 3,
		}, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			b.Fatal(err)
		}
		start, cpu0 := time.Now(), processCPU()
		b.StartTimer()
		sent, err := d.Drain(ctx)
		b.StopTimer()
		elapsed += time.Since(start)
		cpu += processCPU() - cpu0
		if err != nil || sent != n || srv.Count() != n {
			b.Fatalf("sent %d (server got %d), %v; want %d", sent, srv.Count(), err, n)
		}
		srv.Close()
		db.Close()
	}
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "msgs/s")
	// CPU time per message (Herald, SQLite and the test server together)
	// does not depend on what else the machine is running; two cores
	// deliver at most 2s/that.
	b.ReportMetric(float64(cpu.Microseconds())/float64(n*b.N), "cpu-µs/msg")
	if hwm := peakRSS(); hwm > 0 {
		b.ReportMetric(float64(hwm)/(1<<20), "peak-RSS-MB")
	}
}

// benchEnqueueDigest stores one digest per subscriber, 1,000 per
// transaction, each about the size of a 15-entry digest.
func benchEnqueueDigest(b *testing.B, db *store.DB, n int) {
	b.Helper()
	var text, html strings.Builder
	html.WriteString(`<table role="presentation" width="100%" style="font-family:Arial,sans-serif">`)
	for e := 1; e <= 15; e++ {
		fmt.Fprintf(&text, "Home Office: Partners pledge to tackle human trafficking (%d)\n2 March 2026\nJoint action announced today to protect victims and prosecute offenders.\nhttps://news.example.org/releases/%d\n\n", e, e)
		fmt.Fprintf(&html, `<tr><td style="padding:8px 0"><a href="https://news.example.org/releases/%d" style="color:#1d70b8;font-size:18px">Partners pledge to tackle human trafficking (%d)</a><p style="margin:4px 0;color:#505a5f">Home Office · 2 March 2026</p><p style="margin:4px 0">Joint action announced today to protect victims and prosecute offenders.</p></td></tr>`, e, e)
	}
	html.WriteString(`</table>`)
	batch := make([]store.OutboxMessage, 0, 1000)
	for i := 1; i <= n; i++ {
		batch = append(batch, store.OutboxMessage{
			Key: fmt.Sprintf("digest:daily:2026-03-02:%d", i), Kind: store.KindDigest, SubscriberID: int64(i),
			To: fmt.Sprintf("subscriber%d@example.net", i), Subject: "Your daily digest: 15 new releases",
			Text: text.String(), HTML: html.String(),
			UnsubscribeURL: fmt.Sprintf("https://news.example.org/unsubscribe/t%d", i),
		})
		if len(batch) == cap(batch) || i == n {
			if _, err := db.EnqueueEmails(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// processCPU is the user and system time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS reads the process's peak resident set size from /proc, or 0
// where there is no /proc.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
