package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// The hub's worker runs in every instance, so what it is about to do is
// claimed first: a due verification or delivery is locked (SKIP LOCKED on
// PostgreSQL, so instances claim side by side) and its next_attempt_at
// moved to the end of a lease. Recording the outcome settles it; if the
// instance dies first, the row is due again for anyone when the lease
// ends.

// ClaimWebSubRequests takes up to limit requests whose verification is
// due, holding them for lease.
func (db *DB) ClaimWebSubRequests(ctx context.Context, limit int, lease time.Duration) ([]WebSubRequest, error) {
	var out []WebSubRequest
	err := db.claimTx(ctx, func(tx *sql.Tx) error {
		out = nil
		now := db.Now()
		rows, err := tx.QueryContext(ctx, `UPDATE websub_requests SET next_attempt_at = ?
			WHERE id IN (SELECT id FROM websub_requests WHERE next_attempt_at <= ?
				ORDER BY next_attempt_at, id LIMIT ?`+db.skipLocked()+`)
			RETURNING `+webSubRequestCols, fmtTime(now.Add(lease)), fmtTime(now), limit)
		if err != nil {
			return err
		}
		out, err = scanWebSubRequests(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim websub requests: %w", err)
	}
	return out, nil
}

// ClaimWebSubDeliveries takes up to limit deliveries that are due, with
// their subscriptions, holding them for lease. Deliveries of expired
// subscriptions are dropped.
func (db *DB) ClaimWebSubDeliveries(ctx context.Context, limit int, lease time.Duration) ([]WebSubDelivery, error) {
	now := db.Now()
	if _, err := db.db.ExecContext(ctx, `DELETE FROM websub_deliveries WHERE subscription_id IN
		(SELECT id FROM websub_subscriptions WHERE expires_at <= ?)`, fmtTime(now)); err != nil {
		return nil, fmt.Errorf("store: claim websub deliveries: %w", err)
	}
	var out []WebSubDelivery
	err := db.claimTx(ctx, func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `UPDATE websub_deliveries SET next_attempt_at = ?
			WHERE subscription_id IN (SELECT subscription_id FROM websub_deliveries WHERE next_attempt_at <= ?
				ORDER BY next_attempt_at, subscription_id LIMIT ?`+db.skipLocked()+`)
			RETURNING subscription_id, seq, attempts, next_attempt_at`,
			fmtTime(now.Add(lease)), fmtTime(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		var ids []int64
		for rows.Next() {
			var d WebSubDelivery
			var next string
			if err := rows.Scan(&d.Subscription.ID, &d.Seq, &d.Attempts, &next); err != nil {
				return err
			}
			d.NextAttemptAt = parseTime(next)
			out = append(out, d)
			ids = append(ids, d.Subscription.ID)
		}
		if err := rows.Err(); err != nil || len(ids) == 0 {
			return err
		}
		rows.Close()
		subs := map[int64]WebSubSubscription{}
		srows, err := tx.QueryContext(ctx, `SELECT `+webSubCols+` FROM websub_subscriptions s
			WHERE s.id IN (`+placeholders(len(ids))+`)`, int64Args(ids)...)
		if err != nil {
			return err
		}
		defer srows.Close()
		for srows.Next() {
			s, err := scanWebSub(srows)
			if err != nil {
				return err
			}
			subs[s.ID] = s
		}
		if err := srows.Err(); err != nil {
			return err
		}
		for i := range out {
			out[i].Subscription = subs[out[i].Subscription.ID]
		}
		slices.SortFunc(out, func(a, b WebSubDelivery) int { return cmp.Compare(a.Subscription.ID, b.Subscription.ID) })
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim websub deliveries: %w", err)
	}
	return out, nil
}
