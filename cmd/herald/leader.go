package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"herald/store"
)

// Several `herald serve` processes may share one PostgreSQL. Each serves
// HTTP, sends mail from the outbox and runs the WebSub hub (all of which
// claim their work in the store); the scheduled work (pulls, digests,
// housekeeping, WebSub lease expiry, rendering feeds marked dirty between
// pulls) runs on one of them, the leader. On SQLite the one process leads.

// Intervals of the coordination between instances.
const (
	// leaderEvery is how often the leader checks it still holds
	// leadership, and a follower tries to take it: a dead leader's work
	// resumes elsewhere within this (plus the server noticing a vanished
	// connection, about 20 s, when the leader's machine went silent).
	leaderEvery = 5 * time.Second
	// feedCheckEvery is how often an instance compares the store's feed
	// generation with its own, in case a change notification was missed.
	feedCheckEvery = 5 * time.Second
)

// leader runs work on this instance while it holds leadership.
type leader struct {
	l     *store.Leadership
	every time.Duration
	log   *slog.Logger
	gauge prometheus.Gauge
	// work runs the scheduled work until its ctx ends; it starts anew each
	// time this instance takes leadership, and first catches up what is
	// due, from the store's state.
	work func(ctx context.Context)
	// following is called after each attempt that found another instance
	// leading (or could not ask).
	following func()
}

func newLeaderGauge(reg prometheus.Registerer) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_leader",
		Help: "1 while this instance runs the scheduled work, 0 otherwise."})
	if reg != nil {
		reg.MustRegister(g)
	}
	return g
}

// run tries for leadership every ld.every, leads while it can, and gives
// leadership up when ctx ends.
func (ld *leader) run(ctx context.Context) {
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ld.l.Release(rctx)
	}()
	wait, failing, announced := ld.every, false, false
	for ctx.Err() == nil {
		actx, cancel := context.WithTimeout(ctx, ld.every)
		ok, err := ld.l.Acquire(actx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				ld.log.Warn("leadership: cannot reach the database; retrying", slog.Any("error", err))
			}
			failing, wait = true, min(wait*2, 4*ld.every)
		case err == nil:
			if failing {
				ld.log.Info("leadership: the database answers again")
			}
			failing, wait = false, ld.every
		}
		if ok {
			ld.lead(ctx)
			announced = false
			continue
		}
		if err == nil && !announced {
			ld.log.Info("leadership: another instance runs the scheduled work")
			announced = true
		}
		if ld.following != nil {
			ld.following()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// lead runs the work until leadership is lost or ctx ends, and stops it
// at once then.
func (ld *leader) lead(ctx context.Context) {
	ld.log.Info("leadership taken: running the scheduled work")
	ld.gauge.Set(1)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ld.work(wctx)
	}()
	stop := func() {
		cancel()
		<-done
		ld.gauge.Set(0)
	}
	t := time.NewTicker(ld.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			stop()
			return
		case <-t.C:
			cctx, c := context.WithTimeout(ctx, ld.every)
			ok, err := ld.l.Held(cctx)
			c()
			if ok || ctx.Err() != nil {
				continue
			}
			stop()
			ld.log.Warn("leadership lost: scheduled work stopped", slog.Any("error", err))
			return
		}
	}
}
