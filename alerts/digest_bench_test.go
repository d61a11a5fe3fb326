package alerts_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"herald/alerts"
	"herald/feeds/rules"
	"herald/store"
	"herald/store/storetest"
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
	seed := storetest.Database(b)
	clock := storetest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	db := storetest.OpenFile(b, seed, clock)
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
	service := func(db *store.DB) *alerts.Service {
		svc, err := alerts.NewService(db, alerts.Config{BaseURL: subBase, Location: time.UTC, TemplatesFS: templates.Embedded()}, keys, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		return svc
	}
	// The first run records the anchor period.
	if _, err := service(db).RunDue(ctx, "daily", clock.Now()); err != nil {
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
	benchSubscribers(b, db, clock, subscribers, topicIDs, rng)

	// Each iteration runs on its own copy of the seeded database.
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	var enqueued int
	var elapsed time.Duration
	var peak uint64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		clock.Set(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
		db = storetest.OpenFile(b, storetest.Clone(b, seed), clock)
		svc := service(db)
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
	var size, msgs int64
	for after := int64(0); ; {
		page, err := db.OutboxMessages(ctx, after, 1000)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range page {
			size += int64(len(m.Text) + len(m.HTML))
			msgs++
			after = m.ID
		}
		if len(page) < 1000 {
			break
		}
	}
	if msgs > 0 {
		size /= msgs
	}
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

// benchSubscribers stores n subscribers with 1 to 3 active daily
// subscriptions to random topics, subscribed on 1 February 2026 (clock
// shows that while they are stored).
func benchSubscribers(t testing.TB, db *store.DB, clock *storetest.Clock, n int, topicIDs []int64, rng *rand.Rand) {
	t.Helper()
	was := clock.Now()
	clock.Set(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	defer clock.Set(was)
	var wishes []storetest.Wish
	for i := range n {
		for range 1 + rng.IntN(3) {
			wishes = append(wishes, storetest.Wish{Address: fmt.Sprintf("reader%d@example.org", i),
				Target: store.Target{TopicID: topicIDs[rng.IntN(len(topicIDs))]}, Frequency: store.FrequencyDaily})
		}
	}
	storetest.SubscribeMany(t, db, wishes)
}
