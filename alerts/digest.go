package alerts

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"herald/store"
	"herald/templates/text"
)

// digestSummaryLimit bounds each release's summary in a digest.
const digestSummaryLimit = 300

// digestMaxPeriods bounds how many missed periods one run catches up (a
// year of daily digests); anything older is left, with a warning.
const digestMaxPeriods = 400

// digestWallLayout records a scheduled wall-clock time.
const digestWallLayout = "2006-01-02T15:04:05"

// DigestReport says what RunDue did.
type DigestReport struct {
	Frequency string
	Periods   []DigestPeriodReport
}

// Enqueued is the number of digests queued over all periods.
func (r DigestReport) Enqueued() int {
	n := 0
	for _, p := range r.Periods {
		n += p.Enqueued
	}
	return n
}

// DigestPeriodReport is one period of a DigestReport.
type DigestPeriodReport struct {
	Start, End time.Time
	// Releases is how many alertable releases were first stored in the
	// period; Enqueued how many digests this run added to the outbox.
	Releases int
	Enqueued int
	// AlreadyDone: the period had been run before; nothing was done.
	AlreadyDone bool
}

// digestPeriod is a fixed window [Start, End) ending at a scheduled time.
type digestPeriod struct {
	Start, End time.Time
	WallEnd    string
}

// Digest periods are computed on wall-clock times: the schedule is applied
// to the configured zone's clock readings, written as if they were UTC (a
// clock without daylight saving), and each reading is then placed in the
// zone. So a daily schedule has exactly one period per day even when the
// clocks change:
//   - at a fall-back, the repeated hour does not make a second 01:30: the
//     period ends at the first;
//   - at a spring-forward, a time in the skipped hour (01:30 in London)
//     becomes the first instant after the gap (02:30 BST), so that day's
//     period still ends that day. A scheduler that only fires at 01:30
//     never fires that day; the next RunDue finds the period due and sends
//     it then, once.
func digestWall(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
}

// digestUnwall places a wall-clock reading in loc. A reading that happens
// twice (the repeated hour of a fall-back) is its first occurrence, the
// moment a cron daemon fires.
func digestUnwall(w time.Time, loc *time.Location) time.Time {
	t := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, loc)
	for _, d := range []time.Duration{time.Hour, 30 * time.Minute} {
		if e := t.Add(-d); digestWall(e, loc).Equal(w) {
			return e
		}
	}
	return t
}

// digestPeriods lists the periods of sched that end after the anchor (the
// newest period run before) and at or before now, oldest first. With no
// anchor, Herald has never run this frequency: only the latest period that
// has ended is due, not the whole history of the schedule.
func digestPeriods(sched cron.Schedule, loc *time.Location, anchor *store.DigestRun, now time.Time) ([]digestPeriod, error) {
	var prevWall, prevEnd time.Time
	if anchor != nil {
		w, err := time.Parse(digestWallLayout, anchor.WallEnd)
		if err != nil {
			return nil, fmt.Errorf("stored digest period %q: %w", anchor.WallEnd, err)
		}
		prevWall, prevEnd = w, anchor.End
	} else {
		var ok bool
		prevWall, prevEnd, ok = digestLastBefore(sched, loc, now)
		if !ok {
			return nil, nil
		}
	}
	var out []digestPeriod
	for len(out) < digestMaxPeriods {
		w := sched.Next(prevWall)
		if w.IsZero() {
			break
		}
		end := digestUnwall(w, loc)
		if end.After(now) {
			break
		}
		if !end.After(prevEnd) {
			// Two readings fell on one instant (a gap moved one onto the
			// other): one period, not an empty second one.
			prevWall = w
			continue
		}
		out = append(out, digestPeriod{Start: prevEnd, End: end, WallEnd: w.Format(digestWallLayout)})
		prevWall, prevEnd = w, end
	}
	return out, nil
}

// digestLastBefore finds the scheduled time before the latest one at or
// before now, so that the latest becomes the first period due. It looks
// back further and further, so a weekly or monthly schedule costs no more
// than a daily one.
func digestLastBefore(sched cron.Schedule, loc *time.Location, now time.Time) (wall, end time.Time, ok bool) {
	for _, back := range []time.Duration{50 * time.Hour, 16 * 24 * time.Hour, 70 * 24 * time.Hour, 800 * 24 * time.Hour} {
		w := digestWall(now.Add(-back), loc)
		var prev, last time.Time
		n := 0
		for {
			next := sched.Next(w)
			if next.IsZero() || digestUnwall(next, loc).After(now) {
				break
			}
			prev, last = last, next
			w = next
			n++
		}
		if n >= 2 {
			return prev, digestUnwall(prev, loc), true
		}
	}
	return time.Time{}, time.Time{}, false
}

// RunDue runs every due period of the daily or weekly digest that has not
// been run: each period ends at a time scheduled by the frequency's cron
// spec (in Config.Location) and starts at the one before (the first
// period ever run starts at the first release that alerts, if that is
// earlier). Periods missed
// while Herald was down are run now, oldest first; a period already run is
// never run again (digest_runs), and one interrupted by a crash resumes
// after the last batch it wrote, the outbox keys
// (digest:<frequency>:<period end>:<subscriber>) making any overlap
// harmless. now is normally the current time; the CLI may pass another
// (then set the store's clock to it too, so "first stored" means the same
// thing on both sides). A period is final once run: running one early, with
// a now in the future, leaves out what is stored after. An email template
// failing on the period's data stops the run without an error, as in
// ProcessPending: the period stays unfinished until the template works.
func (s *Service) RunDue(ctx context.Context, frequency string, now time.Time) (_ DigestReport, err error) {
	failed := false
	rep := DigestReport{Frequency: frequency}
	sched, ok := s.sched[frequency]
	if !ok {
		return rep, fmt.Errorf("alerts: digest frequency %q must be daily or weekly", frequency)
	}
	s.digestMu.Lock()
	defer s.digestMu.Unlock()
	last, err := s.db.DigestRuns(ctx, frequency, 1)
	if err != nil {
		return rep, fmt.Errorf("alerts: run %s digests: %w", frequency, err)
	}
	var anchor *store.DigestRun
	if len(last) > 0 {
		anchor = &last[0]
	}
	periods, err := digestPeriods(sched, s.cfg.Location, anchor, now)
	if err != nil {
		return rep, fmt.Errorf("alerts: run %s digests: %w", frequency, err)
	}
	unfinished, err := s.db.UnfinishedDigestRuns(ctx, frequency)
	if err != nil {
		return rep, fmt.Errorf("alerts: run %s digests: %w", frequency, err)
	}
	if anchor == nil && len(periods) > 0 {
		// The first period ever run reaches back to the first release
		// that alerts: releases stored before a first run that came late
		// (a slow start, a crash) are in a digest too, once.
		first, ok, err := s.db.FirstAlertableSeen(ctx)
		if err != nil {
			return rep, fmt.Errorf("alerts: run %s digests: %w", frequency, err)
		}
		if ok && first.Before(periods[0].Start) {
			periods[0].Start = first
		}
	}
	for _, u := range unfinished {
		if !slices.ContainsFunc(periods, func(p digestPeriod) bool { return p.End.Equal(u.End) }) {
			periods = append(periods, digestPeriod{Start: u.Start, End: u.End, WallEnd: u.WallEnd})
		}
	}
	slices.SortFunc(periods, func(a, b digestPeriod) int { return a.End.Compare(b.End) })
	defer func() {
		if err == nil && !failed {
			s.health.worked("digest")
		}
	}()
	for _, p := range periods {
		pr, err := s.digestRun(ctx, frequency, p)
		rep.Periods = append(rep.Periods, pr)
		if err != nil && s.health.failed(err) {
			// The period stays unfinished and is run again once the
			// template works; the failure is reported once.
			failed = true
			return rep, nil
		}
		if err != nil {
			return rep, fmt.Errorf("alerts: %s digest ending %s: %w", frequency, p.End.Format(time.RFC3339), err)
		}
	}
	return rep, nil
}

// digestIndex holds a period's releases ready to list, by topic,
// department and followed search, shared by every subscriber's digest.
type digestIndex struct {
	rels      []*mailRelease
	byTopic   map[int64][]int
	byDept    map[int64][]int
	bySearch  map[int64][]int
	topicIDs  []int64
	deptIDs   []int64
	searchIDs []int64
	// mark[i] == gen when release i is already in the digest being built,
	// so each release appears once without allocating a set per digest.
	mark []uint32
	gen  uint32
}

func (s *Service) newDigestIndex(rels []store.AlertRelease) (*digestIndex, error) {
	idx := &digestIndex{byTopic: map[int64][]int{}, byDept: map[int64][]int{}, bySearch: map[int64][]int{}, mark: make([]uint32, len(rels))}
	for i, r := range rels {
		mr := s.mailReleaseOf(r.Release, digestSummaryLimit)
		if err := s.mail.renderEntry("digest", mr); err != nil {
			return nil, err
		}
		idx.rels = append(idx.rels, mr)
		if len(idx.byDept[r.DepartmentID]) == 0 {
			idx.deptIDs = append(idx.deptIDs, r.DepartmentID)
		}
		idx.byDept[r.DepartmentID] = append(idx.byDept[r.DepartmentID], i)
		for _, t := range r.TopicIDs {
			if len(idx.byTopic[t]) == 0 {
				idx.topicIDs = append(idx.topicIDs, t)
			}
			idx.byTopic[t] = append(idx.byTopic[t], i)
		}
		for _, q := range r.SearchIDs {
			if len(idx.bySearch[q]) == 0 {
				idx.searchIDs = append(idx.searchIDs, q)
			}
			idx.bySearch[q] = append(idx.bySearch[q], i)
		}
	}
	return idx, nil
}

// digestRun runs one period.
func (s *Service) digestRun(ctx context.Context, frequency string, p digestPeriod) (DigestPeriodReport, error) {
	began := time.Now()
	pr := DigestPeriodReport{Start: p.Start, End: p.End}
	run, err := s.db.StartDigestRun(ctx, store.DigestRun{Frequency: frequency, Start: p.Start, End: p.End, WallEnd: p.WallEnd})
	if err != nil {
		return pr, err
	}
	if run.Status == store.DigestDone {
		pr.AlreadyDone = true
		return pr, nil
	}
	rels, err := s.db.DigestReleases(ctx, p.Start, p.End)
	if err != nil {
		return pr, err
	}
	pr.Releases = len(rels)
	idx, err := s.newDigestIndex(rels)
	if err != nil {
		return pr, err
	}
	now := s.now()
	// Composing and writing overlap: while one batch is written (SQLite's
	// single writer), the next is read and composed. At most two batches
	// are in memory, so memory stays flat however many subscribers there
	// are. Each batch records the run's progress with its messages, so a
	// run interrupted by a crash resumes after the last batch written.
	type batch struct {
		msgs  []store.OutboxMessage
		after int64
		last  bool
	}
	batches := make(chan batch, 1)
	written := make(chan error, 1)
	go func() {
		var werr error
		for b := range batches {
			if werr != nil {
				continue // drain, so the composer never blocks
			}
			var n int
			n, werr = s.db.CompleteDigestBatch(ctx, b.msgs, store.DigestProgress{Frequency: frequency, End: p.End,
				After: b.after, Done: b.last, Releases: len(rels)})
			pr.Enqueued += n
			s.metrics.enqueued.WithLabelValues(store.KindDigest).Add(float64(n))
		}
		written <- werr
	}()
	cerr := s.digestCompose(ctx, frequency, p, idx, run.After, now, func(msgs []store.OutboxMessage, after int64, last bool) {
		batches <- batch{msgs, after, last}
	})
	close(batches)
	if werr := <-written; werr != nil {
		return pr, werr
	}
	if cerr != nil {
		return pr, cerr
	}
	s.metrics.digestRuns.WithLabelValues(frequency).Inc()
	s.metrics.digestDuration.WithLabelValues(frequency).Observe(time.Since(began).Seconds())
	return pr, nil
}

// digestCompose reads the recipients of a period with ids above after,
// batch by batch, and hands each batch of composed digests to emit with the
// last subscriber id it covers; the last batch (perhaps empty) has last
// set. On error it stops without a last batch, so the run
// stays unfinished and is run again.
func (s *Service) digestCompose(ctx context.Context, frequency string, p digestPeriod, idx *digestIndex, after int64, now time.Time,
	emit func(msgs []store.OutboxMessage, after int64, last bool)) error {
	q := store.RecipientQuery{Frequency: frequency, TopicIDs: idx.topicIDs, DepartmentIDs: idx.deptIDs, SearchIDs: idx.searchIDs,
		Limit: s.cfg.BatchSize, After: after}
	for {
		page, err := s.db.AlertRecipients(ctx, q)
		if err != nil {
			return err
		}
		msgs := make([]store.OutboxMessage, 0, len(page.Recipients))
		for _, rc := range page.Recipients {
			m, ok, err := s.composeDigest(frequency, p, idx, rc, now)
			if err != nil {
				return err
			}
			if ok {
				msgs = append(msgs, m)
			}
		}
		emit(msgs, page.Next, page.Done)
		if page.Done {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		q.After = page.Next
	}
}

// digestPeriodLabel names a period for people: the day it ends, or the
// week to that day.
func (s *Service) digestPeriodLabel(frequency string, p digestPeriod) string {
	day := p.End.In(s.cfg.Location).Format(s.mail.say("format.date"))
	if frequency == store.FrequencyWeekly {
		return s.mail.say("email.period.weekly", "Day", day)
	}
	return s.mail.say("email.period.daily", "Day", day)
}

// composeDigest builds one subscriber's digest: the period's releases
// grouped by the subscriptions they matched, each release once (under the
// first subscription, by name, that matched it). ok is false when nothing
// matched. Up to DigestMaxEntries releases are listed; if the message would
// still be too large, fewer. Each group links to its topic or department
// page for the rest. One-click unsubscribe ends the subscriber's
// subscriptions of this frequency (the digest is their daily or weekly
// list); the footer links each subscription too.
func (s *Service) composeDigest(frequency string, p digestPeriod, idx *digestIndex, rc store.Recipient, now time.Time) (store.OutboxMessage, bool, error) {
	return s.composeDigestOf(frequency, p, idx, rc, now, s.cfg.DigestMaxEntries)
}

// composeDigestOf is composeDigest listing at most maxEntries releases.
func (s *Service) composeDigestOf(frequency string, p digestPeriod, idx *digestIndex, rc store.Recipient, now time.Time, maxEntries int) (store.OutboxMessage, bool, error) {
	subs := slices.Clone(rc.Subscriptions)
	slices.SortFunc(subs, func(a, b store.Subscription) int {
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	type group struct {
		sub     store.Subscription
		entries []int
	}
	var groups []group
	idx.gen++
	total := 0
	for _, sub := range subs {
		list := idx.byDept[sub.DepartmentID]
		switch {
		case sub.TopicID != 0:
			list = idx.byTopic[sub.TopicID]
		case sub.SearchID != 0:
			list = idx.bySearch[sub.SearchID]
		}
		var mine []int
		for _, i := range list {
			if idx.mark[i] != idx.gen {
				idx.mark[i] = idx.gen
				mine = append(mine, i)
			}
		}
		if len(mine) > 0 {
			groups = append(groups, group{sub, mine})
			total += len(mine)
		}
	}
	if total == 0 {
		return store.OutboxMessage{}, false, nil
	}
	key := fmt.Sprintf("digest:%s:%s:%d", frequency, p.End.UTC().Format(time.RFC3339), rc.SubscriberID)
	unsubAll := s.unsubscribeURL(Token{Purpose: PurposeUnsubscribeAll, Subject: rc.SubscriberID, Aux: frequencyCode(frequency)})
	manage := s.manageURL(rc.SubscriberID, now)
	for limit := maxEntries; ; limit /= 2 {
		d := s.baseData()
		d.Address = rc.Address
		d.Frequency, d.FrequencyPhrase = frequency, s.mail.frequencyPhrase(frequency)
		d.Period = s.digestPeriodLabel(frequency, p)
		d.Count = total
		left := limit
		for _, g := range groups {
			name := text.Line(g.sub.Name)
			mg := mailGroup{Name: name, Kind: s.mail.kindLabel(g.sub.Kind), URL: s.targetURL(g.sub)}
			show := min(left, len(g.entries))
			for _, i := range g.entries[:show] {
				mg.Entries = append(mg.Entries, idx.rels[i])
			}
			mg.More = len(g.entries) - show
			left -= show
			d.Listed += show
			d.Groups = append(d.Groups, mg)
			d.Unsubscribes = append(d.Unsubscribes, mailLink{Label: s.mail.say("email.unsubscribe.one", "Name", name),
				URL: s.unsubscribeURL(Token{Purpose: PurposeUnsubscribe, Subject: g.sub.ID})})
		}
		d.Unsubscribes = append(d.Unsubscribes, mailLink{Label: s.mail.say("email.unsubscribe.frequency", "Frequency", frequency), URL: unsubAll})
		d.UnsubscribeURL = unsubAll
		d.ManageURL = manage
		d.Why = []string{s.mail.say("email.why.digest", "Site", s.cfg.SiteName, "FrequencyPhrase", d.FrequencyPhrase)}
		d.Preheader = s.mail.say("email.preheader.digest", "Count", total)
		m, err := s.message(store.KindDigest, key, rc.SubscriberID, rc.Address, "digest", &d)
		if err != nil {
			return store.OutboxMessage{}, false, err
		}
		if limit <= 1 || subEncodedSize(m.Text, m.HTML) <= subMaxMessage {
			return m, true, nil
		}
	}
}
