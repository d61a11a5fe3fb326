package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"herald/store"
)

func TestCountRateStopsAtTheLimit(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	end := start.Add(time.Hour)
	for i, want := range []int{1, 2, 3, 0, 0} {
		n, err := db.CountRate(ctx, "signup", "192.0.2.1", start, end, 3)
		if err != nil || n != want {
			t.Fatalf("event %d: count %d, %v; want %d", i, n, err, want)
		}
	}
	// A lower limit counts nothing more; none at all counts nothing, not
	// even a new client's first event.
	for _, limit := range []int{2, 0, -1} {
		if n, err := db.CountRate(ctx, "signup", "192.0.2.1", start, end, limit); n != 0 || err != nil {
			t.Errorf("limit %d: count %d, %v", limit, n, err)
		}
	}
	for _, limit := range []int{0, -1} {
		if n, err := db.CountRate(ctx, "signup", "192.0.2.9", start, end, limit); n != 0 || err != nil {
			t.Errorf("limit %d, new client: count %d, %v", limit, n, err)
		}
	}
	// Other clients, buckets and windows count apart.
	for _, c := range []struct {
		bucket, key string
		start       time.Time
	}{
		{"signup", "192.0.2.2", start},
		{"login", "192.0.2.1", start},
		{"signup", "192.0.2.1", start.Add(5 * time.Minute)},
	} {
		if n, err := db.CountRate(ctx, c.bucket, c.key, c.start, c.start.Add(time.Hour), 3); n != 1 || err != nil {
			t.Errorf("%+v: count %d, %v; want 1", c, n, err)
		}
	}
	ws, err := db.RateWindows(ctx, "signup", "192.0.2.1", start.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := []store.RateWindow{{Start: start, Expires: end, N: 3}, {Start: start.Add(5 * time.Minute), Expires: end.Add(5 * time.Minute), N: 1}}
	if len(ws) != len(want) || ws[0] != want[0] || ws[1] != want[1] {
		t.Fatalf("windows %+v, want %+v", ws, want)
	}
	// At its expiry a window no longer counts, and is purged.
	if ws, _ := db.RateWindows(ctx, "signup", "192.0.2.1", end); len(ws) != 1 || ws[0] != want[1] {
		t.Errorf("windows at the first's expiry: %+v", ws)
	}
	n, err := db.PurgeRateWindows(ctx, end)
	if err != nil || n != 3 {
		t.Fatalf("purged %d, %v; want the 3 windows of %s", n, err, start)
	}
	if ws, _ := db.RateWindows(ctx, "signup", "192.0.2.1", start); len(ws) != 1 || ws[0] != want[1] {
		t.Errorf("windows after the purge: %+v", ws)
	}
}

// TestCountRateHoldsAcrossInstances: two instances counting one client at
// once never let more than the limit through.
func TestCountRateHoldsAcrossInstances(t *testing.T) {
	ctx := context.Background()
	a, b := openTwice(t)
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for i := range 40 {
		db := []*store.DB{a, b}[i%2]
		wg.Go(func() {
			n, err := db.CountRate(ctx, "login", "2001:db8::/64", start, start.Add(time.Minute), 5)
			if err != nil {
				t.Error(err)
			}
			if n > 0 {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 5 {
		t.Fatalf("%d of 40 events counted, want 5", n)
	}
}
