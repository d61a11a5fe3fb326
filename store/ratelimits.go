package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RateWindow is one window of a rate limit: the events of one client in
// one bucket ("login", "signup") counted from Start, which count against
// the client until Expires. The policy (how long a window is, how many
// events a client may have) is the caller's; the counts live in the
// database so that a limit holds across every instance on it.
type RateWindow struct {
	Start   time.Time
	Expires time.Time
	N       int
}

// RateWindows returns key's windows in bucket that still count at now
// (expiring after it), oldest first.
func (db *DB) RateWindows(ctx context.Context, bucket, key string, now time.Time) ([]RateWindow, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT window_start, expires_at, n FROM rate_limits
		WHERE bucket = ? AND client_key = ? AND expires_at > ? ORDER BY window_start`, bucket, key, fmtTime(now))
	if err != nil {
		return nil, fmt.Errorf("store: rate windows %s: %w", bucket, err)
	}
	defer rows.Close()
	var out []RateWindow
	for rows.Next() {
		var w RateWindow
		var start, expires string
		if err := rows.Scan(&start, &expires, &w.N); err != nil {
			return nil, fmt.Errorf("store: rate windows %s: %w", bucket, err)
		}
		w.Start, w.Expires = parseTime(start), parseTime(expires)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: rate windows %s: %w", bucket, err)
	}
	return out, nil
}

// CountRate counts one event of key in bucket's window that starts at
// start and counts until expires, unless that window has limit events
// already. It returns the window's new count, or 0 when it counted
// nothing. The check and the count are one statement, so instances
// counting at once never take the window past limit.
func (db *DB) CountRate(ctx context.Context, bucket, key string, start, expires time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	var n int
	err := db.db.QueryRowContext(ctx, `INSERT INTO rate_limits (bucket, client_key, window_start, expires_at, n)
		VALUES (?, ?, ?, ?, 1)
		ON CONFLICT (bucket, client_key, window_start) DO UPDATE SET n = rate_limits.n + 1 WHERE rate_limits.n < ?
		RETURNING n`, bucket, key, fmtTime(start), fmtTime(expires), limit).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: count rate %s: %w", bucket, err)
	}
	return n, nil
}

// PurgeRateWindows deletes the windows that no longer count at now and
// returns how many there were.
func (db *DB) PurgeRateWindows(ctx context.Context, now time.Time) (int, error) {
	res, err := db.db.ExecContext(ctx, `DELETE FROM rate_limits WHERE expires_at <= ?`, fmtTime(now))
	if err != nil {
		return 0, fmt.Errorf("store: purge rate windows: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
