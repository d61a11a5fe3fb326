package main_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"herald/alerts/smtptest"
	"herald/cmd/herald/harness"
)

// testCrash kills `herald serve` with SIGKILL while it pulls, stores,
// renders, fans alerts out, composes digests and sends mail, restarting it
// each time, and then checks that nothing was lost: every release stored
// once and in every feed it belongs to, every subscriber given each of its
// immediate alerts and each matching release in exactly one digest, and
// any message sent twice sent with the same Message-ID.
func testCrash(t *testing.T, bin string, fig *figures, rng *rand.Rand) {
	smtp := smtptest.Start(t, smtptest.Options{})
	// A slow publisher, so that a kill can come in the middle of a pull.
	const pause = 150 * time.Millisecond
	pub := harness.NewPublisher(t, harness.PublisherOptions{Pause: pause})
	in := harness.NewInstance(t, bin, t.TempDir())
	var w world
	w.configure(in, pub)
	// Daily digest periods of 10 seconds, so that digests are composed
	// and sent all through the test, catch-ups of missed periods included.
	in.Config["schedule"] = map[string]any{"pull": "0 0 1 1 *", "daily_digest": "@every 10s", "weekly_digest": "0 0 1 1 *"}
	in.Config["pull"] = map[string]any{"allow_private": true, "timeout": "10s"}
	in.UseSMTP(smtp, 5*time.Second, 5000)
	in.WriteConfig()
	w.wave(pub, 0, 3)
	in.Run(2*time.Minute, "pull") // the back catalogue: stored, never alerted
	const subscribers = 1200
	in.ImportSubscribers(w.subscribe(subscribers))

	type kill struct {
		phase       string
		interrupted bool
	}
	var kills []kill
	// interrupted tells from the database whether a kill cut the work of
	// its phase short: releases of the wave not stored, feeds left to
	// render, releases left to fan out, a digest run left unfinished,
	// messages left claimed.
	interrupted := func(phase string, wave int) bool {
		switch phase {
		case "pull", "store":
			var guids []any
			for _, it := range w.items {
				if it.Wave == wave {
					guids = append(guids, it.GUID)
				}
			}
			return in.QueryInt(`SELECT count(*) FROM releases WHERE guid IN (`+strings.Repeat("?,", len(guids)-1)+`?)`, guids...) < len(guids)
		case "render":
			return in.QueryInt(`SELECT count(*) FROM feed_dirty`) > 0
		case "fan-out":
			return in.QueryInt(`SELECT count(*) FROM releases WHERE alert_pending = 1`) > 0
		case "digest":
			return in.QueryInt(`SELECT count(*) FROM digest_runs WHERE status = 'running'`) > 0
		}
		return in.QueryInt(`SELECT count(*) FROM outbox WHERE status = 'sending'`) > 0
	}
	// killDuring starts Herald, waits for the moment of phase and kills it
	// a random instant later.
	killDuring := func(phase string, wave int) {
		begin, end := make(chan struct{}, 64), make(chan struct{}, 64)
		pub.SetHook(func(ev string) {
			ch := begin
			if ev == "end" {
				ch = end
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		})
		defer pub.SetHook(nil)
		sent := smtp.Count()
		lastSeen := in.QueryStrings(`SELECT coalesce(max(first_seen_at), '') FROM releases WHERE alertable = 1`)[0][0]
		s := in.Serve()
		jitter := func(lo, hi time.Duration) { time.Sleep(lo + time.Duration(rng.Int64N(int64(hi-lo)+1))) }
		waitCh := func(ch chan struct{}, n int) bool {
			timeout := time.After(10 * time.Second)
			for range n {
				select {
				case <-ch:
				case <-timeout:
					return false
				}
			}
			return true
		}
		hit := false
		switch phase {
		case "pull": // while the publisher is half-way through a body
			hit = waitCh(begin, 1)
			jitter(0, pause)
		case "store": // as the last body arrives: parsing and storing
			hit = waitCh(end, len(worldDepts))
			jitter(0, 5*time.Millisecond)
		case "render":
			hit = s.WaitLog("pulled", 10*time.Second)
			jitter(0, 15*time.Millisecond)
		case "fan-out":
			hit = s.WaitLog("feeds rendered", 10*time.Second)
			jitter(0, 20*time.Millisecond)
		case "digest": // while the start-up catch-up composes the period with the newest releases
			deadline := time.Now().Add(10 * time.Second)
			for !hit && !s.Exited() && time.Now().Before(deadline) {
				hit = in.QueryInt(`SELECT count(*) FROM digest_runs WHERE status = 'running' AND period_end > ?`, lastSeen) > 0
				time.Sleep(time.Millisecond)
			}
			jitter(0, 20*time.Millisecond)
		case "digest-sending":
			hit = s.WaitLog("digest queued", 10*time.Second)
			jitter(0, 300*time.Millisecond)
		case "sending":
			deadline := time.Now().Add(10 * time.Second)
			for smtp.Count() == sent && time.Now().Before(deadline) && !s.Exited() {
				time.Sleep(2 * time.Millisecond)
			}
			hit = smtp.Count() > sent
			jitter(20*time.Millisecond, 400*time.Millisecond)
		}
		if err := s.Check(); err != nil {
			t.Fatalf("herald serve ended by itself during %s: %v", phase, err)
		}
		s.Kill()
		if !hit {
			t.Logf("kill %d (%s): the moment aimed for did not come within 10s", len(kills)+1, phase)
		}
		kills = append(kills, kill{phase, interrupted(phase, wave)})
	}

	phases := []string{"pull", "store", "render", "fan-out", "sending"}
	for wave := 1; wave <= 10; wave++ {
		w.wave(pub, wave, 2)
		killDuring(phases[(wave-1)%len(phases)], wave)
	}
	// Twice: let one run finish its pull, so the last wave is stored, and
	// kill it once it is ready (sending, usually); wait for the digest
	// period holding the last releases to end; kill the next starts while
	// they compose that period's digests and send them.
	for round := range 2 {
		if round == 1 {
			w.wave(pub, 11, 2)
		}
		s := in.Serve()
		s.WaitReady(t, time.Minute)
		s.Kill()
		kills = append(kills, kill{"sending", interrupted("sending", 0)})
		time.Sleep(11 * time.Second)
		for _, phase := range []string{"digest", "digest-sending", "sending"} {
			killDuring(phase, 0)
		}
	}

	final := in.Serve()
	final.WaitReady(t, time.Minute)
	// Messages claimed by a killed Herald are sent again when their claim
	// expires (two minutes), so settling takes up to that long.
	alertable := 0
	for _, it := range w.items {
		if it.Wave > 0 {
			alertable++
		}
	}
	start := time.Now()
	for {
		c := outboxCounts(t, in)
		stored := in.QueryInt(`SELECT count(*) FROM releases`)
		lastSeen := in.QueryStrings(`SELECT coalesce(max(first_seen_at), '') FROM releases WHERE alertable = 1`)[0][0]
		covered := in.QueryInt(`SELECT count(*) FROM digest_runs WHERE frequency = 'daily' AND status = 'done' AND period_end > ?`, lastSeen)
		running := in.QueryInt(`SELECT count(*) FROM digest_runs WHERE status = 'running'`)
		if c["pending"] == 0 && c["sending"] == 0 && stored == len(w.items) && covered > 0 && running == 0 {
			break
		}
		if time.Since(start) > 4*time.Minute {
			t.Fatalf("not settled after 4 minutes: outbox %v, %d of %d releases stored, digest covered %d, running %d",
				c, stored, len(w.items), covered, running)
		}
		time.Sleep(time.Second)
	}
	settle := time.Since(start)

	// Every release stored once, alertable exactly when it is new.
	want := map[string]worldItem{}
	for _, it := range w.items {
		want[it.GUID] = it
	}
	rows := in.QueryStrings(`SELECT r.guid, r.title, r.alertable, s.name FROM releases r JOIN sources s ON s.id = r.source_id`)
	if len(rows) != len(w.items) {
		t.Errorf("%d releases stored, want %d", len(rows), len(w.items))
	}
	for _, r := range rows {
		it, ok := want[r[0]]
		switch {
		case !ok:
			t.Errorf("release %q was never published", r[0])
		case r[1] != it.Title || r[3] != it.Dept+"-news":
			t.Errorf("release %q stored as %q from %s", r[0], r[1], r[3])
		case (r[2] == "1") != (it.Wave > 0):
			t.Errorf("release %q alertable=%s, wave %d", r[0], r[2], it.Wave)
		}
		delete(want, r[0])
	}
	for g := range want {
		t.Errorf("release %q was lost", g)
	}
	tags := in.QueryStrings(`SELECT r.guid, t.slug FROM release_topics rt JOIN releases r ON r.id = rt.release_id JOIN topics t ON t.id = rt.topic_id`)
	gotTags := map[string][]string{}
	for _, r := range tags {
		gotTags[r[0]] = append(gotTags[r[0]], r[1])
	}
	for _, it := range w.items {
		g := gotTags[it.GUID]
		sort.Strings(g)
		k := slices.Clone(it.Keywords)
		sort.Strings(k)
		if !slices.Equal(g, k) {
			t.Errorf("release %q tagged %v, want %v", it.GUID, g, k)
		}
	}

	// Every feed valid in three formats and holding exactly its releases.
	feedDocs := 0
	for _, key := range w.feedKeys() {
		titles, docs := feedTitles(t, in, key)
		feedDocs += docs
		sort.Strings(titles)
		if want := w.inFeed(key); !slices.Equal(titles, want) {
			t.Errorf("feed %s (with its archive) holds %d entries, want %d", key, len(titles), len(want))
		}
	}

	mc := w.checkMail(t, in, smtp)
	if problems := logProblems(in, false); len(problems) > 0 {
		t.Errorf("the logs report %d problems, first: %s", len(problems), problems[0])
	}
	if leaks := infoLeaks(in, "@example.net", harness.AdminToken, harness.TokenKey); len(leaks) > 0 {
		t.Errorf("%d info-level log lines hold an address or secret, first: %s", len(leaks), leaks[0])
	}
	final.Stop(t)

	counts, cut := map[string]int{}, map[string]int{}
	for _, k := range kills {
		counts[k.phase]++
		if k.interrupted {
			cut[k.phase]++
		}
	}
	var parts []string
	for _, p := range []string{"pull", "store", "render", "fan-out", "digest", "digest-sending", "sending"} {
		parts = append(parts, fmt.Sprintf("%s %d/%d", p, cut[p], counts[p]))
	}
	fig.add(t, "crash: %d SIGKILLs, by phase aimed for with how many left its work unfinished (%s), %d starts; "+
		"%d releases stored once (%d alertable), "+
		"%d feed documents valid with every release; %d subscribers got %d immediate alerts and %d digests: %d lost, "+
		"%d wrong, %d in-flight duplicates (same Message-ID); settled %s after the last start",
		len(kills), strings.Join(parts, ", "), len(kills)+1, len(rows), alertable, feedDocs, subscribers,
		mc.immediates, mc.digests, mc.lost, mc.wrong, mc.dups, settle.Round(time.Second))
}
