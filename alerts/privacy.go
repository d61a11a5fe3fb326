package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"herald/store"
)

// ExportSubscriber returns, as indented JSON, everything Herald stores
// about address, given in its canonical form (herald/alerts/address):
// subscriber records (also as a pending new address), all subscriptions
// including ended ones, every message queued or sent to it with its body
// unless purged, and delivery failures or suppression. It fails with
// store.ErrNotFound when there is nothing.
func (s *Service) ExportSubscriber(ctx context.Context, address string) ([]byte, error) {
	data, err := s.db.SubscriberRecord(ctx, address)
	if err != nil {
		return nil, fmt.Errorf("alerts: export subscriber: %w", err)
	}
	out, err := json.MarshalIndent(data, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("alerts: export subscriber: %w", err)
	}
	return append(out, '\n'), nil
}

// EraseSubscriber deletes everything Herald stores about address (what
// ExportSubscriber shows), including outbox rows not yet sent, so nothing
// more is mailed to it. It fails with store.ErrNotFound when there was
// nothing.
func (s *Service) EraseSubscriber(ctx context.Context, address string) error {
	found, err := s.db.EraseSubscriber(ctx, address)
	if err != nil {
		return fmt.Errorf("alerts: erase subscriber: %w", err)
	}
	if !found {
		return fmt.Errorf("alerts: erase subscriber: %w", store.ErrNotFound)
	}
	return nil
}

// HousekeepReport says what Housekeep removed.
type HousekeepReport struct {
	// ExpiredPending: pending subscriptions whose confirmation link expired.
	ExpiredPending int
	// Erased: subscribers erased, their last subscription having ended more
	// than EraseAfter ago, or their address never confirmed.
	Erased int
	// PurgedBodies: sent messages whose bodies were deleted.
	PurgedBodies int
	// Searches: searches nobody follows any more, deleted.
	Searches int
}

// Housekeep applies the retention rules at now: pending subscriptions are
// deleted once their confirmation link has expired; a subscriber with no
// active subscription is erased EraseAfter after the last one ended (or,
// never confirmed, once their links have expired); bodies of sent messages
// are deleted PurgeBodiesAfter after sending; a search nobody follows is
// deleted once its links have expired and its last subscriber left
// EraseAfter ago. Run it hourly, on one instance.
func (s *Service) Housekeep(ctx context.Context, now time.Time) (HousekeepReport, error) {
	var rep HousekeepReport
	var err error
	if rep.ExpiredPending, err = s.db.DeleteExpiredPending(ctx, now.Add(-ConfirmTTL)); err != nil {
		return rep, fmt.Errorf("alerts: housekeeping: %w", err)
	}
	if rep.Erased, err = s.db.EraseIdleSubscribers(ctx, now.Add(-s.cfg.EraseAfter), now.Add(-ConfirmTTL)); err != nil {
		return rep, fmt.Errorf("alerts: housekeeping: %w", err)
	}
	if rep.PurgedBodies, err = s.db.PurgeBodies(ctx, now.Add(-s.cfg.PurgeBodiesAfter)); err != nil {
		return rep, fmt.Errorf("alerts: housekeeping: %w", err)
	}
	if rep.Searches, err = s.db.DeleteUnfollowedSearches(ctx, now.Add(-ConfirmTTL), now.Add(-s.cfg.EraseAfter)); err != nil {
		return rep, fmt.Errorf("alerts: housekeeping: %w", err)
	}
	return rep, nil
}
