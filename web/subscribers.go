package web

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"herald/store"
)

// StoreSubscribers answers the admin's questions about subscribers straight
// from the store, where the alerts side keeps them. It is the
// SubscriberAdmin and SubscriberStats that Herald runs with.
type StoreSubscribers struct {
	DB *store.DB
}

// LookupSubscriber summarises what is stored about address.
func (s StoreSubscribers) LookupSubscriber(ctx context.Context, address string) (SubscriberInfo, error) {
	data, err := s.DB.SubscriberRecord(ctx, address)
	if err != nil {
		return SubscriberInfo{}, err
	}
	info := SubscriberInfo{
		Address:           data.Address,
		Status:            "no subscriber (delivery records only)",
		Suppressed:        data.Delivery.Suppressed,
		SuppressionReason: data.Delivery.SuppressionReason,
		Subscriptions:     []SubscriptionInfo{},
	}
	for _, sub := range data.Subscribers {
		switch {
		case sub.Address == data.Address && !sub.ConfirmedAt.IsZero():
			info.Status, info.CreatedAt, info.ConfirmedAt = "confirmed", sub.CreatedAt, sub.ConfirmedAt
		case sub.Address == data.Address:
			info.Status, info.CreatedAt = "not confirmed yet", sub.CreatedAt
		case info.CreatedAt.IsZero():
			info.Status, info.CreatedAt = "waiting to become the new address of "+sub.Address, sub.CreatedAt
		}
	}
	for _, sub := range data.Subscriptions {
		si := SubscriptionInfo{Frequency: sub.Frequency, Status: sub.Status, CreatedAt: sub.CreatedAt}
		if sub.Kind == "topic" {
			si.Topic = sub.Slug
		} else {
			si.Department = sub.Slug
		}
		info.Subscriptions = append(info.Subscriptions, si)
	}
	return info, nil
}

// ExportSubscriber returns everything stored about address as JSON.
func (s StoreSubscribers) ExportSubscriber(ctx context.Context, address string) ([]byte, error) {
	data, err := s.DB.SubscriberRecord(ctx, address)
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(data, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("web: export subscriber: %w", err)
	}
	return append(out, '\n'), nil
}

// EraseSubscriber deletes everything stored about address.
func (s StoreSubscribers) EraseSubscriber(ctx context.Context, address string) error {
	found, err := s.DB.EraseSubscriber(ctx, address)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("web: erase subscriber: %w", store.ErrNotFound)
	}
	return nil
}

// LiftSuppression lets Herald mail a suppressed address again.
func (s StoreSubscribers) LiftSuppression(ctx context.Context, address string) error {
	return s.DB.LiftSuppression(ctx, address)
}

// TopicSubscriptionCounts counts active subscriptions per topic and
// frequency.
func (s StoreSubscribers) TopicSubscriptionCounts(ctx context.Context) (map[string]map[string]int, error) {
	return s.DB.SubscriberCounts(ctx)
}

// SubscribersPerDay counts new confirmed subscribers per day.
func (s StoreSubscribers) SubscribersPerDay(ctx context.Context, days int, loc *time.Location) ([]store.DayCount, error) {
	return s.DB.SubscribersPerDay(ctx, days, loc)
}
