package alerts_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"herald/alerts"
	"herald/alerts/alertstest"
	"herald/store"
)

// runDue runs the due digests at now, with the store's clock at now too.
func (f *subFixture) runDue(freq string, now time.Time) alerts.DigestReport {
	f.t.Helper()
	f.clock.Set(now)
	rep, err := f.svc.RunDue(f.ctx, freq, now)
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

// periods renders a report's periods in UTC, for comparing.
func subPeriods(rep alerts.DigestReport) []string {
	var out []string
	for _, p := range rep.Periods {
		out = append(out, p.Start.UTC().Format(time.RFC3339)+" "+p.End.UTC().Format(time.RFC3339))
	}
	return out
}

func subSamePeriods(t *testing.T, rep alerts.DigestReport, want ...string) {
	t.Helper()
	if got := subPeriods(rep); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("periods:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func entry(guid, title, summary string, published time.Time) store.Entry {
	return store.Entry{GUID: guid, Link: "https://www.example.org/news/" + guid, Title: title, Summary: summary, Published: published}
}

func TestDigestContent(t *testing.T) {
	f := newSubFixture(t, nil)
	ana := f.subscribe("ana@example.org", store.Target{TopicID: f.traffick.ID}, "daily")
	f.subscribe("ana@example.org", store.Target{TopicID: f.immig.ID}, "daily")
	f.subscribe("ana@example.org", store.Target{DepartmentID: f.treasury.ID}, "daily")
	f.subscribe("ana@example.org", store.Target{TopicID: f.budget.ID}, "weekly")
	f.subscribe("bo@example.org", store.Target{DepartmentID: f.home.ID}, "daily")
	f.subscribe("ben@example.org", store.Target{TopicID: f.traffick.ID}, "weekly")
	f.subscribe("cat@example.org", store.Target{TopicID: f.budget.ID}, "daily")
	f.subscribe("dan@example.org", store.Target{TopicID: f.traffick.ID}, "immediately")

	// First run ever: only the latest period is due, and it is empty.
	rep := f.runDue("daily", time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	subSamePeriods(t, rep, "2026-03-01T08:30:00Z 2026-03-02T08:30:00Z")
	if rep.Enqueued() != 0 {
		t.Fatalf("empty period enqueued %d", rep.Enqueued())
	}

	f.clock.Set(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	f.pull(f.src,
		entry("r1", "Joint patrols against human trafficking", "<p>Officers from Valmora and Estland will patrol the ferry routes together.</p>", time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)),
		entry("r2", "New visa rules for seasonal workers", "<p>Seasonal workers can apply from April.</p>", time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)),
		// Backdated by its publisher: first stored in this period all the same.
		entry("r3", "Border checks to find trafficking victims", "<p>Border staff get new training.</p>", time.Date(2026, 3, 1, 4, 0, 0, 0, time.UTC)),
	)
	f.pull(f.trSrc, entry("r4", "Spring budget statement", "<p>The budget &amp; the forecast.</p>", time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)))
	f.clock.Set(time.Date(2026, 3, 3, 8, 30, 0, 0, time.UTC))
	f.pull(f.src, entry("r5", "Trafficking report published", "<p>After the period.</p>", time.Date(2026, 3, 3, 8, 30, 0, 0, time.UTC)))

	rep = f.runDue("daily", time.Date(2026, 3, 3, 8, 30, 0, 0, time.UTC))
	subSamePeriods(t, rep, "2026-03-02T08:30:00Z 2026-03-03T08:30:00Z")
	if p := rep.Periods[0]; p.Releases != 4 || p.Enqueued != 3 {
		t.Fatalf("period: %+v; want 4 releases, digests for ana, bo and cat", p)
	}
	rows := f.outbox(alertstest.Kind(store.KindDigest))
	byTo := map[string]subOutboxRow{}
	for _, r := range rows {
		byTo[r.To] = r
	}
	a := byTo["ana@example.org"]
	if a.Key != fmt.Sprintf("digest:daily:2026-03-03T08:30:00Z:%d", ana.Subscriber.ID) {
		t.Errorf("key %q", a.Key)
	}
	for _, title := range []string{"Joint patrols", "New visa rules", "Border checks", "Spring budget"} {
		if n := strings.Count(a.Text, title); n != 1 {
			t.Errorf("ana's digest lists %q %d times", title, n)
		}
	}
	if strings.Contains(a.Text, "Trafficking report published") {
		t.Errorf("a release first stored after the period is in the digest")
	}
	// Grouped by subscription, by name; the release matching two topics
	// sits under the first.
	iT, iI, iB := strings.Index(a.Text, "== Human trafficking"), strings.Index(a.Text, "== Immigration"), strings.Index(a.Text, "Border checks")
	if iT < 0 || iI < 0 || !(iT < iB && iB < iI) {
		t.Errorf("groups out of order:\n%s", a.Text)
	}
	tok := strings.TrimPrefix(a.Unsubscribe, subBase+"/unsubscribe/")
	if got, err := f.keys.Verify(tok, f.clock.Now(), alerts.PurposeUnsubscribeAll); err != nil || got.Subject != ana.Subscriber.ID || got.Aux != 2 {
		t.Errorf("List-Unsubscribe: %+v, %v", got, err)
	}
	subGolden(t, "digest.txt", a.Text)
	subGolden(t, "digest.html", a.HTML)
	if c, ok := byTo["cat@example.org"]; !ok || !strings.Contains(c.Text, "Spring budget") || strings.Contains(c.Text, "visa") {
		t.Errorf("cat's digest:\n%s", c.Text)
	}
	if _, ok := byTo["ben@example.org"]; ok {
		t.Errorf("a weekly subscriber got a daily digest")
	}
	if _, ok := byTo["dan@example.org"]; ok {
		t.Errorf("an immediate subscriber got a digest")
	}

	// Again at the same time: nothing.
	if rep := f.runDue("daily", time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)); len(rep.Periods) != 0 {
		t.Fatalf("second run: %+v", rep)
	}

	// The first weekly run covers the week to Saturday.
	rep = f.runDue("weekly", time.Date(2026, 3, 7, 9, 0, 0, 0, time.UTC))
	subSamePeriods(t, rep, "2026-02-28T08:30:00Z 2026-03-07T08:30:00Z")
	weekly := f.outbox(alertstest.KeyPrefix("digest:weekly:"))
	got := map[string]string{}
	for _, r := range weekly {
		got[r.To] = r.Text
	}
	if len(got) != 2 || !strings.Contains(got["ben@example.org"], "Trafficking report published") ||
		!strings.Contains(got["ana@example.org"], "Spring budget") || strings.Contains(got["ana@example.org"], "visa") {
		t.Errorf("weekly digests: %v", got)
	}
}

func TestDigestCatchesUpMissedPeriodsOnce(t *testing.T) {
	f := newSubFixture(t, nil)
	f.subscribe("ana@example.org", store.Target{DepartmentID: f.home.ID}, "daily")
	f.runDue("daily", time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	for day := 2; day <= 4; day++ {
		f.clock.Set(time.Date(2026, 3, day, 12, 0, 0, 0, time.UTC))
		f.pull(f.src, entry(fmt.Sprintf("d%d", day), fmt.Sprintf("Release of %d March", day), "", f.clock.Now()))
	}
	// Herald was down from the 2nd to the 5th.
	rep := f.runDue("daily", time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC))
	subSamePeriods(t, rep,
		"2026-03-02T08:30:00Z 2026-03-03T08:30:00Z",
		"2026-03-03T08:30:00Z 2026-03-04T08:30:00Z",
		"2026-03-04T08:30:00Z 2026-03-05T08:30:00Z")
	rows := f.outbox(alertstest.Kind(store.KindDigest))
	if len(rows) != 3 {
		t.Fatalf("%d digests, want 3", len(rows))
	}
	for i, r := range rows {
		want := fmt.Sprintf("Release of %d March", i+2)
		if !strings.Contains(r.Text, want) || strings.Count(r.Text, "Release of") != 1 {
			t.Errorf("digest %d should hold only %q:\n%s", i, want, r.Text)
		}
	}
	// Started again (or by `herald digest`) at any later time: nothing twice.
	for _, now := range []time.Time{time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC), time.Date(2026, 3, 5, 20, 0, 0, 0, time.UTC)} {
		if rep := f.runDue("daily", now); len(rep.Periods) != 0 {
			t.Fatalf("rerun at %s: %v", now, subPeriods(rep))
		}
	}
	if n := len(f.outbox(alertstest.Kind(store.KindDigest))); n != 3 {
		t.Fatalf("%d digests after reruns, want 3", n)
	}
	runs, err := f.db.DigestRuns(f.ctx, "daily", 10)
	if err != nil || len(runs) != 4 {
		t.Fatalf("runs: %+v, %v", runs, err)
	}
	for _, r := range runs {
		if r.Status != store.DigestDone {
			t.Errorf("run %s is %s", r.End, r.Status)
		}
	}
}

// TestDigestFirstRunReachesBack: releases stored before the first digest
// run ever, however late it comes, are in that run's digest.
func TestDigestFirstRunReachesBack(t *testing.T) {
	f := newSubFixture(t, nil)
	f.subscribe("ana@example.org", store.Target{DepartmentID: f.home.ID}, "daily")
	f.clock.Set(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	f.pull(f.src, entry("early", "Early release", "", f.clock.Now()))
	f.clock.Set(time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC))
	f.pull(f.src, entry("late", "Later release", "", f.clock.Now()))
	rep := f.runDue("daily", time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC))
	subSamePeriods(t, rep, "2026-03-01T12:00:00Z 2026-03-04T08:30:00Z")
	rows := f.outbox(alertstest.Kind(store.KindDigest))
	if len(rows) != 1 || !strings.Contains(rows[0].Text, "Early release") || !strings.Contains(rows[0].Text, "Later release") {
		t.Fatalf("want one digest with both releases, got %d: %+v", len(rows), rows)
	}
	if rep := f.runDue("daily", time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC)); len(rep.Periods) != 1 {
		t.Fatalf("the next day: %v", subPeriods(rep))
	}
	if rows := f.outbox(alertstest.Kind(store.KindDigest)); len(rows) != 1 {
		t.Fatalf("%d digests, want 1: nothing new was stored", len(rows))
	}
}

func TestDigestRerunAfterCrash(t *testing.T) {
	f := newSubFixture(t, func(c *alerts.Config) { c.BatchSize = 2 })
	var ids []int64
	for i := range 7 {
		ids = append(ids, f.subscribe(fmt.Sprintf("s%d@example.org", i), store.Target{DepartmentID: f.home.ID}, "daily").Subscriber.ID)
	}
	f.runDue("daily", time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	f.pull(f.src, entry("x", "A release", "", f.clock.Now()))
	now := time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)
	// A crash after some batches: the run started and wrote the digests
	// of the first four subscribers with its progress, and what the last
	// batches would have written is not there.
	end := time.Date(2026, 3, 3, 8, 30, 0, 0, time.UTC)
	run, err := f.db.StartDigestRun(f.ctx, store.DigestRun{Frequency: "daily", Start: end.Add(-24 * time.Hour), End: end, WallEnd: "2026-03-03T08:30:00"})
	if err != nil || run.Status != store.DigestRunning {
		t.Fatalf("start: %+v, %v", run, err)
	}
	var written []store.OutboxMessage
	for i, id := range ids[:4] {
		written = append(written, store.OutboxMessage{Key: fmt.Sprintf("digest:daily:%s:%d", end.Format(time.RFC3339), id),
			Kind: store.KindDigest, SubscriberID: id, To: fmt.Sprintf("s%d@example.org", i), Subject: "Digest"})
	}
	cut := ids[3]
	if _, err := f.db.CompleteDigestBatch(f.ctx, written, store.DigestProgress{Frequency: "daily", End: end, After: cut}); err != nil {
		t.Fatal(err)
	}
	rep := f.runDue("daily", now)
	subSamePeriods(t, rep, "2026-03-02T08:30:00Z 2026-03-03T08:30:00Z")
	if rep.Enqueued() != 3 {
		t.Fatalf("rerun enqueued %d, want the 3 lost", rep.Enqueued())
	}
	seen := map[string]bool{}
	for _, r := range f.outbox(alertstest.Kind(store.KindDigest)) {
		if seen[r.To] {
			t.Errorf("%s has two digests", r.To)
		}
		seen[r.To] = true
	}
	if len(seen) != 7 {
		t.Errorf("%d subscribers have a digest, want 7", len(seen))
	}
	if rep := f.runDue("daily", now); len(rep.Periods) != 0 {
		t.Fatalf("third run: %v", subPeriods(rep))
	}
}

func TestDigestDaylightSaving(t *testing.T) {
	// 01:30 in London does not exist on 29 March 2026 and happens twice on
	// 25 October 2026.
	f := newSubFixture(t, func(c *alerts.Config) { c.DailyDigest = "30 1 * * *" })
	f.subscribe("ana@example.org", store.Target{DepartmentID: f.home.ID}, "daily")
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, subLondon) }

	t.Run("spring forward", func(t *testing.T) {
		subSamePeriods(t, f.runDue("daily", at(2026, 3, 27, 2, 0)), "2026-03-26T01:30:00Z 2026-03-27T01:30:00Z")
		f.clock.Set(at(2026, 3, 28, 12, 0))
		f.pull(f.src, entry("sat", "Saturday release", "", f.clock.Now()))
		f.clock.Set(at(2026, 3, 29, 12, 0))
		f.pull(f.src, entry("sun", "Sunday release", "", f.clock.Now()))
		// A scheduler firing at 01:30 local never fires on the 29th; the
		// next run finds that day's period (ending at 02:30 BST, the
		// first moment after the gap) and sends it then.
		rep := f.runDue("daily", at(2026, 3, 30, 1, 30))
		subSamePeriods(t, rep,
			"2026-03-27T01:30:00Z 2026-03-28T01:30:00Z",
			"2026-03-28T01:30:00Z 2026-03-29T01:30:00Z",
			"2026-03-29T01:30:00Z 2026-03-30T00:30:00Z")
		rows := f.outbox(alertstest.Kind(store.KindDigest))
		if len(rows) != 2 || !strings.Contains(rows[0].Text, "Saturday release") || !strings.Contains(rows[1].Text, "Sunday release") {
			t.Fatalf("digests: %+v", rows)
		}
		if rep := f.runDue("daily", at(2026, 3, 30, 2, 0)); len(rep.Periods) != 0 {
			t.Fatalf("rerun: %v", subPeriods(rep))
		}
	})
	t.Run("fall back", func(t *testing.T) {
		// Skip ahead, as after a long downtime, then look at one day.
		rep := f.runDue("daily", at(2026, 10, 24, 2, 0))
		if n := len(rep.Periods); n != 208 {
			t.Fatalf("%d periods caught up between March and October, want 208", n)
		}
		first := time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC) // 01:30 BST
		subSamePeriods(t, f.runDue("daily", first), "2026-10-24T00:30:00Z 2026-10-25T00:30:00Z")
		// An hour later it is 01:30 again, in GMT: not a new day.
		f.clock.Set(first.Add(30 * time.Minute))
		f.pull(f.src, entry("rep", "Release in the repeated hour", "", f.clock.Now()))
		if rep := f.runDue("daily", first.Add(time.Hour)); len(rep.Periods) != 0 {
			t.Fatalf("the repeated 01:30 started a period: %v", subPeriods(rep))
		}
		subSamePeriods(t, f.runDue("daily", at(2026, 10, 26, 1, 30)), "2026-10-25T00:30:00Z 2026-10-26T01:30:00Z")
		rows := f.outbox(func(m alertstest.Message) bool {
			return m.Kind == store.KindDigest && strings.Contains(m.Text, "repeated hour")
		})
		if len(rows) != 1 {
			t.Fatalf("the release of the repeated hour is in %d digests, want 1", len(rows))
		}
	})
}

func TestDigestLongListsAreCut(t *testing.T) {
	f := newSubFixture(t, func(c *alerts.Config) { c.DigestMaxEntries = 3 })
	f.subscribe("ana@example.org", store.Target{DepartmentID: f.home.ID}, "daily")
	f.runDue("daily", time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	var es []store.Entry
	for i := range 5 {
		es = append(es, entry(fmt.Sprintf("e%d", i), fmt.Sprintf("Release number %d", i), "", f.clock.Now().Add(time.Duration(i)*time.Minute)))
	}
	f.pull(f.src, es...)
	f.runDue("daily", time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC))
	r := f.outbox(alertstest.Kind(store.KindDigest))[0]
	if n := strings.Count(r.Text, "Release number"); n != 3 {
		t.Errorf("%d entries listed, want 3", n)
	}
	if !strings.Contains(r.Text, "And 2 more: "+subBase+"/departments/home-office") || !strings.Contains(r.Subject, "5 new releases") {
		t.Errorf("no link to the rest:\n%s", r.Text)
	}
}

func TestDigestStaysUnderOneMegabyte(t *testing.T) {
	f := newSubFixture(t, func(c *alerts.Config) { c.DigestMaxEntries = 1 << 20 })
	f.subscribe("ana@example.org", store.Target{DepartmentID: f.home.ID}, "daily")
	f.runDue("daily", time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	summary := "<p>" + strings.Repeat("Zażółć gęślą jaźń = a long summary; ", 20) + "</p>"
	var es []store.Entry
	for i := range 2500 {
		es = append(es, entry(fmt.Sprintf("e%d", i), fmt.Sprintf("Release number %d with a title of some length", i), summary, f.clock.Now()))
	}
	f.pull(f.src, es...)
	f.runDue("daily", time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC))
	r := f.outbox(alertstest.Kind(store.KindDigest))[0]
	if size := len(r.Text) + len(r.HTML); size > 600<<10 || size < 100<<10 {
		t.Errorf("text and HTML are %d bytes; want a message well under 1 MB once encoded, yet not cut to nothing", size)
	}
	if !strings.Contains(r.Text, "the first ") || !strings.Contains(r.Text, "more: "+subBase+"/departments/home-office") {
		t.Errorf("a cut digest must say so and link to the rest")
	}
}
