package alerts

import (
	"context"
	"fmt"

	"herald/store"
)

// fanSummaryLimit bounds the summary of an immediate alert, in characters.
const fanSummaryLimit = 2000

// ProcessPending sends the immediate alerts of every release waiting for
// one: for each, every subscriber with at least one matching active
// "immediately" subscription (to the release's department, one of its
// active topics or a followed search it matched) gets one message, however many of their subscriptions
// match. Subscribers are read in batches of Config.BatchSize subscriptions,
// each batch queued in one transaction, and the release's pending flag is
// cleared with the last batch. A crash part-way leaves the flag set; the
// next call repeats the release and the outbox keys
// (immediate:<release>.<alert version>:<subscriber>) skip what was queued.
// It returns how many messages it added. Calls are serialised. An email
// template failing on a release's data is not an error of the run: that
// release stays pending (tried again at each run), the others go on, and
// the failure is logged once and shown by herald_email_template_failing,
// not told again at every run.
func (s *Service) ProcessPending(ctx context.Context) (enqueued int, err error) {
	s.fanMu.Lock()
	defer s.fanMu.Unlock()
	var after int64
	clean := true
	for {
		rels, err := s.db.PendingAlerts(ctx, after, 50)
		if err != nil {
			return enqueued, fmt.Errorf("alerts: process pending: %w", err)
		}
		if len(rels) == 0 {
			if clean {
				s.health.worked("immediate")
			}
			return enqueued, nil
		}
		for _, r := range rels {
			after = r.ID
			n, err := s.fanRelease(ctx, r)
			enqueued += n
			if err != nil && s.health.failed(err) {
				// The release stays pending, tried again at the next
				// run; the releases after it go on.
				clean = false
				continue
			}
			if err != nil {
				return enqueued, fmt.Errorf("alerts: alert for release %d: %w", r.ID, err)
			}
		}
	}
}

// fanRelease queues one release's immediate alerts.
func (s *Service) fanRelease(ctx context.Context, r store.AlertRelease) (int, error) {
	now := s.now()
	mr := s.mailReleaseOf(r.Release, fanSummaryLimit)
	q := store.RecipientQuery{
		Frequency:     store.FrequencyImmediately,
		TopicIDs:      r.TopicIDs,
		DepartmentIDs: []int64{r.DepartmentID},
		SearchIDs:     r.SearchIDs,
		Limit:         s.cfg.BatchSize,
	}
	total := 0
	for {
		page, err := s.db.AlertRecipients(ctx, q)
		if err != nil {
			return total, err
		}
		msgs := make([]store.OutboxMessage, 0, len(page.Recipients))
		for _, rc := range page.Recipients {
			m, err := s.composeImmediate(r, mr, rc, now)
			if err != nil {
				return total, err
			}
			msgs = append(msgs, m)
		}
		var done *store.AlertDone
		if page.Done {
			done = &store.AlertDone{ReleaseID: r.ID, Version: r.AlertVersion}
		}
		n, err := s.db.CompleteAlertBatch(ctx, msgs, done)
		if err != nil {
			return total, err
		}
		total += n
		s.metrics.enqueued.WithLabelValues(store.KindImmediate).Add(float64(n))
		if page.Done {
			return total, nil
		}
		q.After = page.Next
	}
}
