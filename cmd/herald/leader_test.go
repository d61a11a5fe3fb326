package main

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"herald/store"
	"herald/store/storetest"
)

// instanceLeader is one instance's leader loop over its own store handle,
// with work that only records that it runs.
type instanceLeader struct {
	db      *store.DB
	ld      *leader
	running atomic.Int32
	starts  atomic.Int32
	cancel  context.CancelFunc
	done    chan struct{}
}

func startLeader(t *testing.T, database string, every time.Duration) *instanceLeader {
	t.Helper()
	db, err := store.Open(context.Background(), database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	il := &instanceLeader{db: db, done: make(chan struct{})}
	il.ld = &leader{l: db.Leadership(), every: every, log: slog.New(slog.DiscardHandler), gauge: newLeaderGauge(nil),
		work: func(ctx context.Context) {
			il.starts.Add(1)
			il.running.Add(1)
			defer il.running.Add(-1)
			<-ctx.Done()
		}}
	ctx, cancel := context.WithCancel(context.Background())
	il.cancel = cancel
	go func() {
		defer close(il.done)
		il.ld.run(ctx)
	}()
	var once sync.Once
	t.Cleanup(func() { once.Do(il.stop) })
	return il
}

func (il *instanceLeader) stop() {
	il.cancel()
	<-il.done
}

func (il *instanceLeader) leads() bool {
	return il.running.Load() == 1 && gaugeValue(il.ld.gauge) == 1
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}

// TestScheduledWorkRunsOnOneInstance: of two instances on one database one
// runs the scheduled work; when it goes, the other takes over within the
// check interval.
func TestScheduledWorkRunsOnOneInstance(t *testing.T) {
	const every = 200 * time.Millisecond
	database := storetest.Database(t)
	a := startLeader(t, database, every)
	storetest.Eventually(t, 2*time.Second, "the first instance to lead", a.leads)
	if storetest.Engine() != store.Postgres {
		// One process per SQLite file, and it leads; it stops when told.
		a.stop()
		if a.running.Load() != 0 || gaugeValue(a.ld.gauge) != 0 {
			t.Fatal("work still running after stop")
		}
		return
	}
	b := startLeader(t, database, every)
	time.Sleep(5 * every)
	if b.starts.Load() != 0 || gaugeValue(b.ld.gauge) != 0 || !a.leads() {
		t.Fatalf("second instance started %d times while the first leads", b.starts.Load())
	}

	// The leader's process goes: its store closes, and with it the
	// connection that held the lock.
	a.db.Close()
	took := storetest.Eventually(t, 2*every+time.Second, "the second instance to take over", b.leads)
	storetest.Eventually(t, every+time.Second, "the first instance to stop its work", func() bool {
		return a.running.Load() == 0 && gaugeValue(a.ld.gauge) == 0
	})
	t.Logf("took over %v after the leader went (interval %v)", took.Round(time.Millisecond), every)
	if took > 2*every {
		t.Errorf("took over after %v, want within two intervals of %v", took, every)
	}
	if a.starts.Load() != 1 || b.starts.Load() != 1 {
		t.Errorf("work started %d and %d times, want once each", a.starts.Load(), b.starts.Load())
	}

	// Stopping the leader (a shutdown) hands over too.
	c := startLeader(t, database, every)
	time.Sleep(3 * every)
	if c.starts.Load() != 0 {
		t.Fatal("third instance started while the second leads")
	}
	b.stop()
	storetest.Eventually(t, 2*every+time.Second, "the third instance to take over", c.leads)
}
