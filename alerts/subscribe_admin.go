package alerts

import (
	"context"
	"time"

	"herald/store"
)

// TopicSubscriptionCounts returns, per topic slug, the number of active
// subscriptions per frequency, for the admin pages.
func (s *Service) TopicSubscriptionCounts(ctx context.Context) (map[string]map[string]int, error) {
	return s.db.SubscriberCounts(ctx)
}

// SubscribersPerDay counts the subscribers who first confirmed an address
// on each of the last days days (today included) in loc, oldest first, for
// the admin dashboard.
func (s *Service) SubscribersPerDay(ctx context.Context, days int, loc *time.Location) ([]store.DayCount, error) {
	return s.db.SubscribersPerDay(ctx, days, loc)
}
