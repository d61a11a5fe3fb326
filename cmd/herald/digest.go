package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

func runDigest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgFlag := newFlags("digest", stderr)
	freq := fs.String("frequency", "", "`daily` or weekly")
	nowFlag := fs.String("now", "", "run the periods due at `RFC3339` (catching up, tests); messages are still dated now")
	noSend := fs.Bool("no-send", false, "queue the digests in the outbox but leave sending to a running serve")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *freq != "daily" && *freq != "weekly" {
		return usageError("--frequency must be daily or weekly")
	}
	now := time.Now()
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			return usageError("--now %q is not an RFC 3339 time like 2026-03-02T08:30:00Z", *nowFlag)
		}
		now = t
	}
	a, err := openConfigured(ctx, *cfgFlag, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	svc, err := a.newAlerts(ctx, nil)
	if err != nil {
		return err
	}
	rep, err := svc.RunDue(ctx, *freq, now)
	if err != nil {
		return err
	}
	if len(rep.Periods) == 0 {
		fmt.Fprintf(stdout, "no %s digest period was due\n", *freq)
	}
	for _, p := range rep.Periods {
		fmt.Fprintf(stdout, "%s digest %s to %s: %d messages queued\n", *freq,
			p.Start.In(a.cfg.Location()).Format("2006-01-02 15:04"), p.End.In(a.cfg.Location()).Format("2006-01-02 15:04 MST"), p.Enqueued)
	}
	if *noSend {
		return nil
	}
	d, err := a.newDeliverer(ctx)
	if err != nil {
		return err
	}
	sent, err := d.Drain(ctx)
	fmt.Fprintf(stdout, "%d messages sent\n", sent)
	return err
}

func runRender(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgFlag := newFlags("render", stderr)
	out := fs.String("out", "", "write every feed under `DIR`, laid out like the URLs")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *out == "" {
		return usageError("--out DIR is required")
	}
	a, err := openConfigured(ctx, *cfgFlag, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	pub, err := a.newPublisher()
	if err != nil {
		return err
	}
	if err := pub.Warm(ctx); err != nil {
		return err
	}
	if err := pub.WriteStatic(ctx, *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "feeds written to %s\n", *out)
	return nil
}
