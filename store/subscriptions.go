package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// SubscriptionByID returns one subscription, whatever its status, or
// ErrNotFound.
func (db *DB) SubscriptionByID(ctx context.Context, id int64) (Subscription, error) {
	s, err := scanSubscription(db.db.QueryRowContext(ctx, `SELECT `+subscriptionCols+subscriptionFrom+` WHERE sub.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Subscription{}, fmt.Errorf("store: subscription %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("store: subscription %d: %w", id, err)
	}
	return s, nil
}

// Subscriptions lists a subscriber's active subscriptions by name.
func (db *DB) Subscriptions(ctx context.Context, subscriberID int64) ([]Subscription, error) {
	out, err := querySubscriptions(ctx, db.db, `sub.subscriber_id = ? AND sub.status = 'active'
		ORDER BY `+subscriptionOrder, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("store: subscriptions of %d: %w", subscriberID, err)
	}
	return out, nil
}

// ChangeFrequency sets the frequency of one of a subscriber's active
// subscriptions, or fails with ErrNotFound.
func (db *DB) ChangeFrequency(ctx context.Context, subscriberID, subscriptionID int64, frequency string) (Subscription, error) {
	if !ValidFrequency(frequency) {
		return Subscription{}, fmt.Errorf("store: change frequency: %q is not a frequency", frequency)
	}
	var out Subscription
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE subscriptions SET frequency = ? WHERE id = ? AND subscriber_id = ? AND status = 'active'`,
			frequency, subscriptionID, subscriberID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		out, err = scanSubscription(tx.QueryRowContext(ctx, `SELECT `+subscriptionCols+subscriptionFrom+` WHERE sub.id = ?`, subscriptionID))
		return err
	})
	if err != nil {
		return Subscription{}, fmt.Errorf("store: change frequency of subscription %d: %w", subscriptionID, err)
	}
	return out, nil
}

// EndFilter selects subscriptions to end. SubscriberID or SubscriptionID
// must be set; when both are, the subscription must belong to the
// subscriber. Frequency, when set, narrows to that frequency.
type EndFilter struct {
	SubscriberID   int64
	SubscriptionID int64
	Frequency      string
}

// EndSubscriptions ends the active and pending subscriptions f selects and
// returns them. Ending what has already ended is not an error: the result is
// empty. When a subscriber is left with no active subscription, the time is
// recorded so housekeeping erases the address later.
func (db *DB) EndSubscriptions(ctx context.Context, f EndFilter) ([]Subscription, error) {
	if f.SubscriberID == 0 && f.SubscriptionID == 0 {
		return nil, fmt.Errorf("store: end subscriptions: a subscriber or a subscription is required")
	}
	where := []string{"sub.status IN ('active', 'pending')"}
	var args []any
	if f.SubscriberID != 0 {
		where = append(where, "sub.subscriber_id = ?")
		args = append(args, f.SubscriberID)
	}
	if f.SubscriptionID != 0 {
		where = append(where, "sub.id = ?")
		args = append(args, f.SubscriptionID)
	}
	if f.Frequency != "" {
		where = append(where, "sub.frequency = ?")
		args = append(args, f.Frequency)
	}
	var out []Subscription
	err := db.tx(ctx, func(tx *sql.Tx) error {
		nowT := db.Now()
		now := fmtTime(nowT)
		var err error
		out, err = querySubscriptions(ctx, tx, strings.Join(where, " AND ")+` ORDER BY `+subscriptionOrder, args...)
		if err != nil {
			return err
		}
		subscribers := map[int64]bool{}
		searches := false
		for i := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE subscriptions SET status = 'ended', ended_at = ? WHERE id = ?`, now, out[i].ID); err != nil {
				return err
			}
			searches = searches || (out[i].SearchID != 0 && out[i].Status == SubscriptionActive)
			out[i].Status, out[i].EndedAt = SubscriptionEnded, parseTime(now)
			subscribers[out[i].SubscriberID] = true
		}
		if searches {
			if err := bumpSearchesRev(ctx, tx); err != nil {
				return err
			}
		}
		for id := range subscribers {
			if err := markIdle(ctx, tx, id, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: end subscriptions: %w", err)
	}
	return out, nil
}

// ImportSubscription stores an active subscription brought from another
// system where the address already gave its consent: the subscriber is
// created, confirmed, if new, and an active subscription to the same target
// takes the given frequency. It reports whether the subscriber is new.
func (db *DB) ImportSubscription(ctx context.Context, address string, target Target, frequency string) (newSubscriber bool, err error) {
	n, err := db.ImportSubscriptions(ctx, []ImportRow{{Address: address, Target: target, Frequency: frequency}})
	return n == 1, err
}

// ImportRow is one subscription an import brings in: an address in its
// canonical form, one target and a frequency.
type ImportRow struct {
	Address   string
	Target    Target
	Frequency string
}

// ImportSubscriptions stores rows as ImportSubscription stores one, all in
// one transaction: they land together or not at all. Rows are applied in
// order, so when two name the same address and target the later frequency
// stays. It returns how many subscribers it created. The work is a few
// statements for each thousand rows, whatever the batch's size.
func (db *DB) ImportSubscriptions(ctx context.Context, rows []ImportRow) (newSubscribers int, err error) {
	var addrs []string
	// A followed search's first subscriber adds it to the searches that
	// new releases are matched against.
	followsSearch := false
	seenAddr := map[string]bool{}
	last := map[importKey]int{} // the last row for each address and target
	for i, r := range rows {
		if r.Address == "" || !ValidFrequency(r.Frequency) || !r.Target.valid() {
			return 0, fmt.Errorf("store: import subscriptions: row %d: address, frequency and one target are required", i+1)
		}
		if !seenAddr[r.Address] {
			seenAddr[r.Address] = true
			addrs = append(addrs, r.Address)
		}
		last[importKey{r.Address, r.Target}] = i
		followsSearch = followsSearch || r.Target.SearchID != 0
	}
	// Each address and target once, as its last row has it: one upsert
	// must not touch a row twice.
	subs := make([]ImportRow, 0, len(last))
	for i, r := range rows {
		if last[importKey{r.Address, r.Target}] == i {
			subs = append(subs, r)
		}
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		newSubscribers = 0
		now := fmtTime(db.Now())
		ids := make(map[string]int64, len(addrs))
		for chunk := range slices.Chunk(addrs, importChunk) {
			n, err := db.importSubscribers(ctx, tx, chunk, now, ids)
			if err != nil {
				return err
			}
			newSubscribers += n
		}
		for chunk := range slices.Chunk(subs, importChunk) {
			if err := db.importSubscriptionRows(ctx, tx, chunk, now, ids); err != nil {
				return err
			}
		}
		if !followsSearch {
			return nil
		}
		return bumpSearchesRev(ctx, tx)
	})
	if err != nil {
		return 0, fmt.Errorf("store: import subscriptions: %w", err)
	}
	return newSubscribers, nil
}

// importChunk is the most rows one statement of an import carries: seven
// parameters a row stays far below SQLite's limit of 32,766 per statement
// (and PostgreSQL's 65,535).
const importChunk = 1000

type importKey struct {
	address string
	target  Target
}

// valuesRows is the VALUES list of n rows of the form row.
func valuesRows(n int, row string) string {
	return strings.Repeat(row+", ", n-1) + row
}

// importSubscribers makes addrs confirmed subscribers, records their ids
// in ids and returns how many are new.
func (db *DB) importSubscribers(ctx context.Context, tx *sql.Tx, addrs []string, now string, ids map[string]int64) (int, error) {
	// New addresses become confirmed subscribers...
	args := make([]any, 0, 3*len(addrs))
	for _, a := range addrs {
		args = append(args, a, now, now)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO subscribers (address, created_at, confirmed_at) VALUES `+
		valuesRows(len(addrs), "(?, ?, ?)")+` ON CONFLICT (address) DO NOTHING`, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	// ...and known ones are confirmed (the first time only) and no longer
	// waiting to be erased. Only the rows that change are written: most
	// are new or confirmed already, and rewriting them would cost their
	// index entries for nothing.
	inList := `address IN (` + placeholders(len(addrs)) + `)`
	args = append(args[:0], now)
	for _, a := range addrs {
		args = append(args, a)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE subscribers SET last_ended_at = '',
		confirmed_at = CASE WHEN confirmed_at = '' THEN ? ELSE confirmed_at END
		WHERE (last_ended_at <> '' OR confirmed_at = '') AND `+inList, args...); err != nil {
		return 0, err
	}
	q, err := tx.QueryContext(ctx, `SELECT id, address FROM subscribers WHERE `+inList, args[1:]...)
	if err != nil {
		return 0, err
	}
	defer q.Close()
	for q.Next() {
		var id int64
		var a string
		if err := q.Scan(&id, &a); err != nil {
			return 0, err
		}
		ids[a] = id
	}
	return int(n), q.Err()
}

// importSubscriptionRows gives each row's subscriber one active
// subscription to its target at its frequency: a new one, or the one
// there is with the frequency changed.
func (db *DB) importSubscriptionRows(ctx context.Context, tx *sql.Tx, rows []ImportRow, now string, ids map[string]int64) error {
	var sb strings.Builder
	args := make([]any, 0, 7*len(rows))
	sb.WriteString(`INSERT INTO subscriptions (subscriber_id, topic_id, department_id, search_id, frequency, status, created_at, confirmed_at) VALUES `)
	sb.WriteString(valuesRows(len(rows), "(?, ?, ?, ?, ?, 'active', ?, ?)"))
	for _, r := range rows {
		id, ok := ids[r.Address]
		if !ok {
			return errors.New("an imported address has no subscriber id")
		}
		args = append(args, id, nullID(r.Target.TopicID), nullID(r.Target.DepartmentID), nullID(r.Target.SearchID), r.Frequency, now, now)
	}
	sb.WriteString(` ON CONFLICT (subscriber_id, coalesce(topic_id, 0), coalesce(department_id, 0), coalesce(search_id, 0)) WHERE status = 'active'`)
	sb.WriteString(` DO UPDATE SET frequency = excluded.frequency`)
	_, err := tx.ExecContext(ctx, sb.String(), args...)
	return err
}

// CountSubscriptions counts the active subscriptions.
func (db *DB) CountSubscriptions(ctx context.Context) (int, error) {
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM subscriptions WHERE status = 'active'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count subscriptions: %w", err)
	}
	return n, nil
}

// EachSubscription calls fn with every active subscription and its
// subscriber's address, in subscription order. It reads a thousand at a
// time, so fn may take its time without holding a read open.
func (db *DB) EachSubscription(ctx context.Context, fn func(address string, s Subscription) error) error {
	var after int64
	for {
		rows, err := db.db.QueryContext(ctx, `SELECT `+subscriptionCols+`, s.address`+subscriptionFrom+`
			JOIN subscribers s ON s.id = sub.subscriber_id WHERE sub.status = 'active' AND sub.id > ? ORDER BY sub.id LIMIT 1000`, after)
		if err != nil {
			return fmt.Errorf("store: each subscription: %w", err)
		}
		type row struct {
			addr string
			sub  Subscription
		}
		var page []row
		for rows.Next() {
			var r row
			if r.sub, err = scanSubscription(rows, &r.addr); err != nil {
				rows.Close()
				return fmt.Errorf("store: each subscription: %w", err)
			}
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: each subscription: %w", err)
		}
		for _, r := range page {
			if err := fn(r.addr, r.sub); err != nil {
				return err
			}
		}
		if len(page) < 1000 {
			return nil
		}
		after = page[len(page)-1].sub.ID
	}
}
