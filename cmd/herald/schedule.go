package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"

	"herald/alerts"
	"herald/feeds/pull"
)

// scheduledJob is one cron entry of the scheduled work.
type scheduledJob struct {
	spec string
	fn   func(ctx context.Context)
}

// scheduledJobs lists the work the leader runs on the clock.
func (a *app) scheduledJobs(p *parts) []scheduledJob {
	return []scheduledJob{
		{a.cfg.Schedule.Pull, func(ctx context.Context) { a.cycle(ctx, p, pull.Request{}) }},
		{a.cfg.Schedule.DailyDigest, func(ctx context.Context) { a.runDigests(ctx, p, "daily", a.db.Now()) }},
		{a.cfg.Schedule.WeeklyDigest, func(ctx context.Context) { a.runDigests(ctx, p, "weekly", a.db.Now()) }},
		{"@hourly", func(ctx context.Context) {
			if n, err := p.publisher.ExpireWebSub(ctx); err != nil {
				a.log.Error("websub", slog.Any("error", err))
			} else if n > 0 {
				a.log.Info("websub: subscriptions expired", slog.Int("count", n))
			}
		}},
		{"@hourly", func(ctx context.Context) {
			if rep, err := p.alerts.Housekeep(ctx, a.db.Now()); err != nil {
				a.log.Error("housekeeping", slog.Any("error", err))
			} else if rep != (alerts.HousekeepReport{}) {
				a.log.Info("housekeeping", slog.Any("report", rep))
			}
			if n, err := p.bounces.Housekeep(ctx, a.db.Now()); err != nil {
				a.log.Error("housekeeping: bounce records", slog.Any("error", err))
			} else if n > 0 {
				a.log.Info("housekeeping: bounce records purged", slog.Int("rows", n))
			}
		}},
	}
}

// runScheduled runs the scheduled work until ctx ends, then waits for
// jobs in flight (they see ctx end too). It first catches up: feeds and
// alerts left pending, a pull of the due sources, digests for periods
// missed (each sent once: the store records every period's progress),
// all from the store's state, so a new leader resumes where the last one
// stopped. caughtUp is called when the schedule takes over.
func (a *app) runScheduled(ctx context.Context, p *parts, jobs []scheduledJob, caughtUp func()) {
	cronLog := cron.PrintfLogger(slog.NewLogLogger(a.log.Handler(), slog.LevelError))
	c := cron.New(cron.WithLocation(a.cfg.Location()), cron.WithLogger(cronLog),
		cron.WithChain(cron.Recover(cronLog), cron.SkipIfStillRunning(cronLog)))
	for _, j := range jobs {
		if _, err := c.AddFunc(j.spec, func() { j.fn(ctx) }); err != nil {
			a.log.Error("schedule", slog.String("spec", j.spec), slog.Any("error", err)) // checked at start
		}
	}
	a.afterChange(ctx, p)
	a.cycle(ctx, p, pull.Request{})
	if ctx.Err() != nil {
		return
	}
	c.Start()
	defer func() { <-c.Stop().Done() }()
	caughtUp()

	// Changes made between pulls (a topic created in the console, a
	// department renamed through the API or by `herald departments` in
	// another process) mark feeds dirty in the store; render them within
	// seconds rather than at the next pull.
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if dirty, err := a.db.DirtyFeeds(ctx); err == nil && len(dirty) > 0 {
				a.afterChange(ctx, p)
			}
		}
	}
}
