package store

import (
	"context"
	"fmt"
	"time"
)

// SubscriberCounts returns, for each topic slug, the number of active
// subscriptions per frequency.
func (db *DB) SubscriberCounts(ctx context.Context) (map[string]map[string]int, error) {
	return db.subscriberCounts(ctx, `SELECT t.slug, sub.frequency, count(*) FROM subscriptions sub
		JOIN topics t ON t.id = sub.topic_id WHERE sub.status = 'active' GROUP BY t.slug, sub.frequency`)
}

// DepartmentSubscriberCounts returns, for each department slug, the number
// of active subscriptions per frequency.
func (db *DB) DepartmentSubscriberCounts(ctx context.Context) (map[string]map[string]int, error) {
	return db.subscriberCounts(ctx, `SELECT d.slug, sub.frequency, count(*) FROM subscriptions sub
		JOIN departments d ON d.id = sub.department_id WHERE sub.status = 'active' GROUP BY d.slug, sub.frequency`)
}

func (db *DB) subscriberCounts(ctx context.Context, q string) (map[string]map[string]int, error) {
	rows, err := db.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("store: subscriber counts: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]int{}
	for rows.Next() {
		var slug, freq string
		var n int
		if err := rows.Scan(&slug, &freq, &n); err != nil {
			return nil, fmt.Errorf("store: subscriber counts: %w", err)
		}
		if out[slug] == nil {
			out[slug] = map[string]int{}
		}
		out[slug][freq] = n
	}
	return out, rows.Err()
}

// SubscribersPerDay counts the subscribers who first confirmed an address
// on each of the last `days` days (today included) in loc, oldest first.
// Erased subscribers are no longer counted.
func (db *DB) SubscribersPerDay(ctx context.Context, days int, loc *time.Location) ([]DayCount, error) {
	if days < 1 {
		days = 1
	}
	if loc == nil {
		loc = time.UTC
	}
	out, err := db.statsPerDay(ctx, db.Now(), days, loc,
		`SELECT substr(confirmed_at, 1, 13), count(*) FROM subscribers WHERE confirmed_at <> '' AND confirmed_at >= ? GROUP BY 1`)
	if err != nil {
		return nil, fmt.Errorf("store: subscribers per day: %w", err)
	}
	return out, nil
}

// CountDepartmentSubscribers counts the distinct subscribers with an active
// subscription to any of the departments. A topic preview uses it with the
// rule's departments: those people already hear about every release the new
// topic could match (a topic's subscribers start at zero), so it is the
// audience the topic's releases reach today. It is 0 for no departments.
func (db *DB) CountDepartmentSubscribers(ctx context.Context, departmentSlugs []string) (int, error) {
	if len(departmentSlugs) == 0 {
		return 0, nil
	}
	args := make([]any, len(departmentSlugs))
	for i, s := range departmentSlugs {
		args[i] = s
	}
	var n int
	err := db.db.QueryRowContext(ctx, `SELECT count(DISTINCT sub.subscriber_id) FROM subscriptions sub
		JOIN departments d ON d.id = sub.department_id
		WHERE sub.status = 'active' AND d.slug IN (`+placeholders(len(args))+`)`, args...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count department subscribers: %w", err)
	}
	return n, nil
}
