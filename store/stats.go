package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// DayCount is a count for one calendar day in some time zone.
type DayCount struct {
	Day   time.Time `json:"day"` // midnight at the start of the day, in that zone
	Count int       `json:"count"`
}

// Dashboard is the state of the archive and of delivery that the admin
// console's front page shows.
type Dashboard struct {
	// ReleasesPerDay counts releases by the day Herald first stored them
	// (publishers backdate, so the published date would hide a busy day).
	ReleasesPerDay []DayCount `json:"releases_per_day"`
	// EmailsSentPerDay counts outbox messages by the day they were sent.
	EmailsSentPerDay []DayCount `json:"emails_sent_per_day"`
	// Releases is the size of the archive.
	Releases int `json:"releases"`
	// OutboxDepth counts messages waiting to be sent or being sent.
	OutboxDepth int `json:"outbox_depth"`
	// OutboxOldest is when the oldest waiting message was queued; zero when
	// nothing waits.
	OutboxOldest time.Time `json:"outbox_oldest,omitzero"`
}

// Dashboard returns the counts of the last `days` days (today included) in
// loc, and the outbox's backlog now.
func (db *DB) Dashboard(ctx context.Context, days int, loc *time.Location) (Dashboard, error) {
	if days < 1 {
		days = 1
	}
	if loc == nil {
		loc = time.UTC
	}
	var d Dashboard
	var err error
	now := db.Now()
	d.ReleasesPerDay, err = db.statsPerDay(ctx, now, days, loc,
		`SELECT substr(first_seen_at, 1, 13), count(*) FROM releases WHERE first_seen_at >= ? GROUP BY 1`)
	if err != nil {
		return Dashboard{}, fmt.Errorf("store: dashboard releases per day: %w", err)
	}
	d.EmailsSentPerDay, err = db.statsPerDay(ctx, now, days, loc,
		`SELECT substr(sent_at, 1, 13), count(*) FROM outbox WHERE status = 'sent' AND sent_at >= ? GROUP BY 1`)
	if err != nil {
		return Dashboard{}, fmt.Errorf("store: dashboard emails per day: %w", err)
	}
	if err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM releases`).Scan(&d.Releases); err != nil {
		return Dashboard{}, fmt.Errorf("store: dashboard releases: %w", err)
	}
	var oldest string
	err = db.db.QueryRowContext(ctx, `SELECT count(*), coalesce(min(created_at), '') FROM outbox
		WHERE status IN ('pending', 'sending')`).Scan(&d.OutboxDepth, &oldest)
	if err != nil {
		return Dashboard{}, fmt.Errorf("store: dashboard outbox: %w", err)
	}
	d.OutboxOldest = parseTime(oldest)
	return d, nil
}

// statsPerDay runs q, which takes the UTC start of the window and returns
// (UTC hour as "2006-01-02T15", count) rows, and folds the hours into the
// days of loc. Hours rather than days come out of SQL because a day in loc
// does not start at a UTC midnight.
func (db *DB) statsPerDay(ctx context.Context, now time.Time, days int, loc *time.Location, q string) ([]DayCount, error) {
	local := now.In(loc)
	out := make([]DayCount, days)
	index := make(map[string]int, days)
	for i := range out {
		day := time.Date(local.Year(), local.Month(), local.Day()-(days-1-i), 0, 0, 0, 0, loc)
		out[i].Day = day
		index[day.Format(time.DateOnly)] = i
	}
	rows, err := db.db.QueryContext(ctx, q, fmtTime(out[0].Day))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var hour string
		var n int
		if err := rows.Scan(&hour, &n); err != nil {
			return nil, err
		}
		t, err := time.Parse("2006-01-02T15", hour)
		if err != nil {
			continue
		}
		if i, ok := index[t.In(loc).Format(time.DateOnly)]; ok {
			out[i].Count += n
		}
	}
	return out, rows.Err()
}

// RuleAudience counts the distinct subscribers who would be emailed about
// releases a topic rule matches: those with an active subscription to the
// topic topicSlug (the topic being edited; "" for a new one) or to one of
// departmentSlugs (who hear about every release of those departments),
// each counted once.
func (db *DB) RuleAudience(ctx context.Context, topicSlug string, departmentSlugs []string) (int, error) {
	var or []string
	var args []any
	if topicSlug != "" {
		or = append(or, `sub.topic_id = (SELECT id FROM topics WHERE slug = ?)`)
		args = append(args, topicSlug)
	}
	if len(departmentSlugs) > 0 {
		or = append(or, `sub.department_id IN (SELECT id FROM departments WHERE slug IN (`+placeholders(len(departmentSlugs))+`))`)
		for _, d := range departmentSlugs {
			args = append(args, d)
		}
	}
	if len(or) == 0 {
		return 0, nil
	}
	var n int
	err := db.db.QueryRowContext(ctx, `SELECT count(DISTINCT sub.subscriber_id) FROM subscriptions sub
		WHERE sub.status = 'active' AND (`+strings.Join(or, ` OR `)+`)`, args...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: rule audience: %w", err)
	}
	return n, nil
}
