package alerts_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"herald/alerts"
	"herald/alerts/alertstest"
	"herald/feeds/rules"
	"herald/store"
	"herald/templates"
)

// BenchmarkDigestFanout composes and queues a daily digest for N
// subscribers spread over 200 topics (1 to 3 daily subscriptions each, 300
// releases in the period). It reports queued messages per second and the
// peak Go heap while it runs; the heap should not grow with N.
//
//	go test -run XXX -bench DigestFanout -benchtime 1x ./alerts/
func BenchmarkDigestFanout(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) { benchDigestFanout(b, n) })
	}
}

func benchDigestFanout(b *testing.B, subscribers int) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	clock := alertstest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	db.Now = clock.Now
	if _, err := db.UpsertDepartment(ctx, store.Department{Slug: "dept", Name: "Department of Examples"}); err != nil {
		b.Fatal(err)
	}
	src, err := db.UpsertSource(ctx, store.Source{Name: "dept", URL: "https://example.org/feed", DepartmentSlug: "dept", Format: "auto", Enabled: true})
	if err != nil {
		b.Fatal(err)
	}
	const topics = 200
	topicIDs := make([]int64, topics)
	for i := range topics {
		tp, err := db.UpsertTopic(ctx, store.Topic{Slug: fmt.Sprintf("topic-%d", i), Title: fmt.Sprintf("Topic number %d", i),
			Rule: store.Rule{Keywords: []string{fmt.Sprintf("kw%d", i)}}}, &rules.Topics{})
		if err != nil {
			b.Fatal(err)
		}
		topicIDs[i] = tp.ID
	}
	if _, err := db.ApplyPull(ctx, src.ID, nil, store.PullOptions{Topics: &rules.Topics{}, Alert: rules.AlertNew(0), Realert: rules.Realert}); err != nil {
		b.Fatal(err)
	}
	keys, _ := alerts.NewKeys("benchmark key of sufficient length")
	svc, err := alerts.NewService(db, alerts.Config{BaseURL: subBase, Location: time.UTC, TemplatesFS: templates.Embedded()}, keys, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	// The first run records the anchor period.
	if _, err := svc.RunDue(ctx, "daily", clock.Now()); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	var es []store.Entry
	for i := range 300 {
		kw := fmt.Sprintf("kw%d", i%topics)
		if i%3 == 0 {
			kw += fmt.Sprintf(" and kw%d", rng.IntN(topics))
		}
		es = append(es, store.Entry{GUID: fmt.Sprintf("r%d", i), Link: fmt.Sprintf("https://example.org/news/%d", i),
			Title:     fmt.Sprintf("Release %d about %s", i, kw),
			Summary:   "<p>An invented summary of a release, long enough to be cut in a digest: the department announced a plan, consulted partners, and set out what happens next, with dates and figures for each region and a note on funding.</p>",
			Published: clock.Now()})
	}
	if _, err := db.ApplyPull(ctx, src.ID, es, store.PullOptions{Topics: &rules.Topics{}, Alert: rules.AlertNew(0), Realert: rules.Realert}); err != nil {
		b.Fatal(err)
	}
	// Subscribers straight into the tables: the sign-up path is not what
	// is measured.
	if err := benchSubscribers(ctx, db, subscribers, topicIDs, rng); err != nil {
		b.Fatal(err)
	}

	var enqueued int
	var elapsed time.Duration
	var peak uint64
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		if i > 0 {
			if _, err := db.SQL().Exec(`DELETE FROM outbox`); err != nil {
				b.Fatal(err)
			}
			if _, err := db.SQL().Exec(`DELETE FROM digest_runs WHERE period_end > ?`, store.FormatTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var high atomic.Uint64
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			var m runtime.MemStats
			for {
				runtime.ReadMemStats(&m)
				if m.HeapInuse > high.Load() {
					high.Store(m.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		b.StartTimer()
		start := time.Now()
		now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
		clock.Set(now)
		rep, err := svc.RunDue(ctx, "daily", now)
		if err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		b.StopTimer()
		close(stop)
		wg.Wait()
		enqueued += rep.Enqueued()
		if rep.Enqueued() != subscribers {
			b.Fatalf("enqueued %d digests for %d subscribers", rep.Enqueued(), subscribers)
		}
		peak = max(peak, high.Load())
		b.StartTimer()
	}
	b.StopTimer()
	var size int64
	db.SQL().QueryRow(`SELECT coalesce(sum(length(text_body) + length(html_body)), 0) / count(*) FROM outbox`).Scan(&size)
	b.ReportMetric(float64(enqueued)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(size), "body-bytes/msg")
	if rss := benchPeakRSS(); rss > 0 {
		b.ReportMetric(rss, "process-peak-rss-MB")
	}
}

// benchPeakRSS is the process's peak resident memory so far (Linux), SQLite's
// page cache and the setup included: an upper bound for the fan-out.
func benchPeakRSS() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// benchSubscribers inserts n subscribers with 1 to 3 active daily
// subscriptions to random topics.
func benchSubscribers(ctx context.Context, db *store.DB, n int, topicIDs []int64, rng *rand.Rand) error {
	tx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := store.FormatTime(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	ins, err := tx.PrepareContext(ctx, `INSERT INTO subscribers (address, created_at, confirmed_at) VALUES (?, ?, ?)`)
	if err != nil {
		return err
	}
	sub, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO subscriptions (subscriber_id, topic_id, frequency, status, created_at, confirmed_at)
		VALUES (?, ?, 'daily', 'active', ?, ?)`)
	if err != nil {
		return err
	}
	for i := range n {
		res, err := ins.ExecContext(ctx, fmt.Sprintf("reader%d@example.org", i), now, now)
		if err != nil {
			return err
		}
		id, _ := res.LastInsertId()
		for range 1 + rng.IntN(3) {
			if _, err := sub.ExecContext(ctx, id, topicIDs[rng.IntN(len(topicIDs))], now, now); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}
