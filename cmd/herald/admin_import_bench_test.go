package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/feeds/rules"
	"herald/store"
	"herald/store/storetest"
)

// BenchmarkSubscribersImport runs `herald subscribers import` on a CSV
// file of 10,000 and of 100,000 rows into a fresh database holding 200
// topics and one department, through the command's own code (the file is
// read as the command reads it; only process start and config are left
// out). Each row is one subscription; about 70% as many addresses as rows,
// so that most subscribers have one subscription and some two, to a topic
// or to the department, at one of the three frequencies. It reports rows
// imported per second and the peak of the live heap while the import
// runs, which stays flat as the file grows. With HERALD_TEST_ENGINE=postgres
// the database is a PostgreSQL one.
//
//	go test -run '^$' -bench SubscribersImport -benchtime 1x ./cmd/herald/
func BenchmarkSubscribersImport(b *testing.B) {
	for _, rows := range []int{10_000, 100_000} {
		b.Run("rows="+strconv.Itoa(rows), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "subscribers.csv")
			writeImportFile(b, path, rows)
			var elapsed time.Duration
			var peak uint64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				db := importBenchDB(b)
				heap := watchHeap()
				b.StartTimer()
				start := time.Now()
				out := benchImport(b, db, path)
				elapsed += time.Since(start)
				b.StopTimer()
				peak = max(peak, heap())
				if want := fmt.Sprintf("imported %d subscriptions", rows); !strings.Contains(out, want) {
					b.Fatalf("import said %q, want %q", out, want)
				}
				if n, err := db.CountSubscriptions(context.Background()); err != nil || n != rows {
					b.Fatalf("%d subscriptions stored (%v), want %d", n, err, rows)
				}
			}
			b.ReportMetric(float64(rows*b.N)/elapsed.Seconds(), "rows/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		})
	}
}

// importBenchDB is a fresh store with topics topic-000 to topic-199 and
// the department "coastal".
func importBenchDB(b *testing.B) *store.DB {
	b.Helper()
	ctx := context.Background()
	db, _ := storetest.Open(b, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	storetest.Department(b, db, "coastal", "Department for Coastal Affairs")
	for i := range 200 {
		t := store.Topic{Slug: fmt.Sprintf("topic-%03d", i), Title: fmt.Sprintf("Subject %03d", i),
			Rule: store.Rule{Keywords: []string{fmt.Sprintf("subject%03d", i)}}}
		if _, err := db.CreateTopic(ctx, t, &rules.Topics{}); err != nil {
			b.Fatal(err)
		}
	}
	return db
}

// writeImportFile writes a CSV file of n subscriptions in the import's
// format.
func writeImportFile(b *testing.B, path string, n int) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "email,topic,department,frequency")
	freqs := []string{"immediately", "daily", "weekly"}
	for i := range n {
		topic, dept := fmt.Sprintf("topic-%03d", i%200), ""
		if i%10 == 0 {
			topic, dept = "", "coastal"
		}
		fmt.Fprintf(w, "Reader.%d@Example.net,%s,%s,%s\n", i*7/10, topic, dept, freqs[i%3])
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// benchImport runs the import command on path and returns what it printed.
func benchImport(b *testing.B, db *store.DB, path string) string {
	b.Helper()
	var stdout strings.Builder
	open := func(context.Context, string, io.Writer) (*store.DB, func(), error) { return db, func() {}, nil }
	err := runNoun(context.Background(), "subscribers", subscriberVerbs(false), nil,
		[]string{"import", path}, &stdout, io.Discard, open)
	if err != nil {
		b.Fatalf("import: %v\n%s", err, stdout.String())
	}
	return stdout.String()
}

// watchHeap samples the live heap every 10 ms until the function it
// returns is called, which returns the largest sample.
func watchHeap() func() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, read())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(stop)
		wg.Wait()
		return peak
	}
}
