package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AlertRelease is a release as the alerts side needs it: no body (emails
// carry the summary), with the ids of the active topics it belongs to and
// of the followed searches it matched when it was stored.
type AlertRelease struct {
	Release
	TopicIDs  []int64
	SearchIDs []int64
}

// alertReleaseCols is releaseCols with the body left out: fan-out holds
// many releases at once and never shows a body.
var alertReleaseCols = strings.Replace(releaseCols, "r.body", "''", 1)

func (db *DB) alertReleases(ctx context.Context, q string, args ...any) ([]AlertRelease, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+alertReleaseCols+releaseFrom+` WHERE `+q, args...)
	if err != nil {
		return nil, err
	}
	var out []AlertRelease
	idx := map[int64]int{}
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		idx[r.ID] = len(out)
		out = append(out, AlertRelease{Release: r})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Topic and search ids in chunks, to stay far below SQLite's
	// parameter limit.
	for start := 0; start < len(out); start += 500 {
		end := min(start+500, len(out))
		args := make([]any, 0, end-start)
		for _, r := range out[start:end] {
			args = append(args, r.ID)
		}
		in := placeholders(len(args))
		for _, tags := range []struct {
			q  string
			to func(*AlertRelease) *[]int64
		}{
			{`SELECT rt.release_id, rt.topic_id FROM release_topics rt JOIN topics t ON t.id = rt.topic_id
				WHERE t.retired_at = '' AND rt.release_id IN (` + in + `) ORDER BY rt.release_id, rt.topic_id`,
				func(r *AlertRelease) *[]int64 { return &r.TopicIDs }},
			{`SELECT release_id, search_id FROM release_searches WHERE release_id IN (` + in + `) ORDER BY release_id, search_id`,
				func(r *AlertRelease) *[]int64 { return &r.SearchIDs }},
		} {
			rows, err := db.db.QueryContext(ctx, tags.q, args...)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var rid, id int64
				if err := rows.Scan(&rid, &id); err != nil {
					rows.Close()
					return nil, err
				}
				ids := tags.to(&out[idx[rid]])
				*ids = append(*ids, id)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// PendingAlerts returns up to limit releases waiting for their immediate
// alert (alert_pending), with ids above afterID, in id order.
func (db *DB) PendingAlerts(ctx context.Context, afterID int64, limit int) ([]AlertRelease, error) {
	out, err := db.alertReleases(ctx, `r.alert_pending = 1 AND r.id > ? ORDER BY r.id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: pending alerts: %w", err)
	}
	return out, nil
}

// DigestReleases returns the alertable releases first stored in
// [start, end), newest published first: what a digest for that period
// holds. Publishers backdate, so the period is about when Herald first saw
// a release, not its published date.
func (db *DB) DigestReleases(ctx context.Context, start, end time.Time) ([]AlertRelease, error) {
	out, err := db.alertReleases(ctx, `r.alertable = 1 AND r.first_seen_at >= ? AND r.first_seen_at < ?
		ORDER BY r.published_at DESC, r.id DESC`, fmtTime(start), fmtTime(end))
	if err != nil {
		return nil, fmt.Errorf("store: digest releases: %w", err)
	}
	return out, nil
}

// Recipient is a subscriber and those of its active subscriptions that
// matched a recipient query.
type Recipient struct {
	SubscriberID  int64
	Address       string
	Subscriptions []Subscription
}

// RecipientQuery selects subscribers with an active subscription of
// Frequency to one of the topics, departments or searches, with
// subscriber ids above After, Limit subscriptions at a time (default
// 1000).
type RecipientQuery struct {
	Frequency     string
	TopicIDs      []int64
	DepartmentIDs []int64
	SearchIDs     []int64
	After         int64
	Limit         int
}

// targets lists q's targets by the subscriptions column that names them.
func (q RecipientQuery) targets() []struct {
	col string
	ids []int64
} {
	return []struct {
		col string
		ids []int64
	}{{"topic_id", q.TopicIDs}, {"department_id", q.DepartmentIDs}, {"search_id", q.SearchIDs}}
}

// RecipientPage is one batch of recipients in subscriber id order. Next is
// the After of the following batch; Done says there is none.
type RecipientPage struct {
	Recipients []Recipient
	Next       int64
	Done       bool
}

// unionTargets is the most targets read as one merged index range scan
// each; above it, one scan of the frequency's subscriptions filtered by
// target is cheaper than hundreds of merged scans (and stays below
// SQLite's limit on compound SELECTs).
const unionTargets = 32

// AlertRecipients returns the next batch of recipients of q. Each batch
// reads only index ranges from q.After on, so paging through a million
// subscribers costs what reading them once does, and memory holds one
// batch. A subscriber is never split across two batches.
func (db *DB) AlertRecipients(ctx context.Context, q RecipientQuery) (RecipientPage, error) {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	ntargets := len(q.TopicIDs) + len(q.DepartmentIDs) + len(q.SearchIDs)
	if ntargets == 0 {
		return RecipientPage{Next: q.After, Done: true}, nil
	}
	limit := max(q.Limit, 2*ntargets)
	for {
		page, full, err := db.recipientPage(ctx, q, limit)
		if err != nil {
			return RecipientPage{}, fmt.Errorf("store: alert recipients: %w", err)
		}
		if !full {
			return page, nil
		}
		// One subscriber filled the whole batch; read more at once.
		limit *= 2
	}
}

// recipientPage reads up to limit (subscriber, subscription) pairs. full
// reports a batch holding a single, possibly cut, subscriber.
func (db *DB) recipientPage(ctx context.Context, q RecipientQuery, limit int) (RecipientPage, bool, error) {
	var sqlq string
	var args []any
	if len(q.TopicIDs)+len(q.DepartmentIDs)+len(q.SearchIDs) <= unionTargets {
		var arms []string
		for _, t := range q.targets() {
			for _, id := range t.ids {
				arms = append(arms, `SELECT subscriber_id, id FROM subscriptions WHERE status = 'active' AND `+t.col+` = ?
					AND frequency = ? AND subscriber_id > ?`)
				args = append(args, id, q.Frequency, q.After)
			}
		}
		sqlq = strings.Join(arms, " UNION ALL ") + ` ORDER BY 1, 2 LIMIT ?`
	} else {
		var or []string
		args = append(args, q.Frequency, q.After)
		for _, t := range q.targets() {
			if len(t.ids) == 0 {
				continue
			}
			or = append(or, t.col+` IN (`+placeholders(len(t.ids))+`)`)
			for _, id := range t.ids {
				args = append(args, id)
			}
		}
		sqlq = `SELECT subscriber_id, id FROM subscriptions` + db.indexedBy("subscriptions_frequency") + `
			WHERE status = 'active' AND frequency = ? AND subscriber_id > ? AND (` + strings.Join(or, " OR ") + `)
			ORDER BY subscriber_id, id LIMIT ?`
	}
	args = append(args, limit)
	rows, err := db.db.QueryContext(ctx, sqlq, args...)
	if err != nil {
		return RecipientPage{}, false, err
	}
	type pair struct{ subscriber, subscription int64 }
	pairs := make([]pair, 0, limit)
	for rows.Next() {
		var p pair
		if err := rows.Scan(&p.subscriber, &p.subscription); err != nil {
			rows.Close()
			return RecipientPage{}, false, err
		}
		pairs = append(pairs, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return RecipientPage{}, false, err
	}
	page := RecipientPage{Next: q.After, Done: len(pairs) < limit}
	if !page.Done {
		// The last subscriber may continue in rows not read: leave it
		// whole to the next batch.
		last := pairs[len(pairs)-1].subscriber
		cut := len(pairs)
		for cut > 0 && pairs[cut-1].subscriber == last {
			cut--
		}
		if cut == 0 {
			return RecipientPage{}, true, nil
		}
		pairs = pairs[:cut]
	}
	if len(pairs) == 0 {
		return page, false, nil
	}
	// Details of the batch's subscriptions, in chunks below the parameter
	// limit.
	byID := make(map[int64]Subscription, len(pairs))
	addrs := map[int64]string{}
	for start := 0; start < len(pairs); start += 500 {
		end := min(start+500, len(pairs))
		ids := make([]any, 0, end-start)
		for _, p := range pairs[start:end] {
			ids = append(ids, p.subscription)
		}
		rows, err := db.db.QueryContext(ctx, `SELECT `+subscriptionCols+`, s.address`+subscriptionFrom+`
			JOIN subscribers s ON s.id = sub.subscriber_id WHERE sub.id IN (`+placeholders(len(ids))+`)`, ids...)
		if err != nil {
			return RecipientPage{}, false, err
		}
		for rows.Next() {
			var addr string
			s, err := scanSubscription(rows, &addr)
			if err != nil {
				rows.Close()
				return RecipientPage{}, false, err
			}
			byID[s.ID] = s
			addrs[s.SubscriberID] = addr
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return RecipientPage{}, false, err
		}
	}
	for _, p := range pairs {
		s, ok := byID[p.subscription]
		if !ok {
			continue // ended or erased between the two reads
		}
		n := len(page.Recipients)
		if n == 0 || page.Recipients[n-1].SubscriberID != p.subscriber {
			page.Recipients = append(page.Recipients, Recipient{SubscriberID: p.subscriber, Address: addrs[p.subscriber]})
			n++
		}
		page.Recipients[n-1].Subscriptions = append(page.Recipients[n-1].Subscriptions, s)
	}
	page.Next = pairs[len(pairs)-1].subscriber
	return page, false, nil
}

// AlertDone marks the immediate alert of a release as sent for Version.
type AlertDone struct {
	ReleaseID int64
	Version   int
}

// CompleteAlertBatch queues msgs and, when done is set, clears the
// release's pending alert in the same transaction, unless an edit raised
// its alert version meanwhile (that edit is then still to be announced).
func (db *DB) CompleteAlertBatch(ctx context.Context, msgs []OutboxMessage, done *AlertDone) (int, error) {
	var n int
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if n, err = db.insertOutbox(ctx, tx, db.Now(), msgs); err != nil {
			return err
		}
		if done == nil {
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE releases SET alert_pending = 0 WHERE id = ? AND alert_version = ?`, done.ReleaseID, done.Version)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: complete alert batch: %w", err)
	}
	return n, nil
}

// MarkAlertPending asks for release id's immediate alert to be sent again
// at its current version: the subscribers who already have it get nothing
// more, since the outbox keys are per version, so it reaches only those a
// crash or a restored backup left out. It fails with ErrNotFound for an
// unknown release.
func (db *DB) MarkAlertPending(ctx context.Context, id int64) error {
	res, err := db.db.ExecContext(ctx, `UPDATE releases SET alert_pending = 1 WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("store: mark alert of release %d pending: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: mark alert of release %d pending: %w", id, ErrNotFound)
	}
	return nil
}

// Digest run statuses.
const (
	DigestRunning = "running"
	DigestDone    = "done"
)

// DigestRun is one digest period of one frequency and how its run went.
type DigestRun struct {
	Frequency string    `json:"frequency"`
	Start     time.Time `json:"period_start"`
	End       time.Time `json:"period_end"`
	// WallEnd is End as the schedule's wall-clock time in the configured
	// zone, "2006-01-02T15:04:05"; the next period is computed from it.
	WallEnd string `json:"wall_end"`
	Status  string `json:"status"`
	// After is the run's progress: every subscriber with an id up to After
	// has been handled.
	After      int64     `json:"-"`
	Releases   int       `json:"releases"`
	Enqueued   int       `json:"enqueued"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

const digestRunCols = `frequency, period_start, period_end, wall_end, status, after_subscriber, releases, enqueued, started_at, finished_at`

func scanDigestRun(row interface{ Scan(...any) error }) (DigestRun, error) {
	var r DigestRun
	var start, end, started, finished string
	err := row.Scan(&r.Frequency, &start, &end, &r.WallEnd, &r.Status, &r.After, &r.Releases, &r.Enqueued, &started, &finished)
	r.Start, r.End, r.StartedAt, r.FinishedAt = parseTime(start), parseTime(end), parseTime(started), parseTime(finished)
	return r, err
}

// FirstAlertableSeen returns when the first alertable release was stored;
// ok is false when there is none.
func (db *DB) FirstAlertableSeen(ctx context.Context) (first time.Time, ok bool, err error) {
	var s sql.NullString
	if err := db.db.QueryRowContext(ctx, `SELECT min(first_seen_at) FROM releases WHERE alertable = 1`).Scan(&s); err != nil {
		return time.Time{}, false, fmt.Errorf("store: first alertable release: %w", err)
	}
	if !s.Valid || s.String == "" {
		return time.Time{}, false, nil
	}
	return parseTime(s.String), true, nil
}

// DigestRuns lists the newest limit runs of a frequency, newest period
// first.
func (db *DB) DigestRuns(ctx context.Context, frequency string, limit int) ([]DigestRun, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+digestRunCols+` FROM digest_runs WHERE frequency = ?
		ORDER BY period_end DESC LIMIT ?`, frequency, limit)
	if err != nil {
		return nil, fmt.Errorf("store: digest runs: %w", err)
	}
	defer rows.Close()
	out := []DigestRun{}
	for rows.Next() {
		r, err := scanDigestRun(rows)
		if err != nil {
			return nil, fmt.Errorf("store: digest runs: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// UnfinishedDigestRuns lists the runs of a frequency that started and
// never finished (a crash), oldest first.
func (db *DB) UnfinishedDigestRuns(ctx context.Context, frequency string) ([]DigestRun, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+digestRunCols+` FROM digest_runs WHERE frequency = ? AND status = 'running'
		ORDER BY period_end`, frequency)
	if err != nil {
		return nil, fmt.Errorf("store: unfinished digest runs: %w", err)
	}
	defer rows.Close()
	out := []DigestRun{}
	for rows.Next() {
		r, err := scanDigestRun(rows)
		if err != nil {
			return nil, fmt.Errorf("store: unfinished digest runs: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// StartDigestRun records that the period run.End of run.Frequency is being
// run and returns the stored run: Status "done" means it had already been
// run to the end (the caller does nothing); a run left "running" by a crash
// comes back with its progress (After), to resume from.
//
// It is a write transaction on purpose: SQLite has one writer, and a pull
// stamps first_seen_at while holding the write lock, so once this commits
// after the period's end, every release first seen within the period is
// committed and visible. PostgreSQL has many writers: there the run takes
// a lock on releases that waits for every pull in progress to commit, and
// that a pull takes before it reads the clock (orderWithDigests), for the
// same guarantee.
func (db *DB) StartDigestRun(ctx context.Context, run DigestRun) (DigestRun, error) {
	var out DigestRun
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := db.orderWithDigests(ctx, tx, "SHARE"); err != nil {
			return err
		}
		var err error
		out, err = scanDigestRun(tx.QueryRowContext(ctx, `INSERT INTO digest_runs (frequency, period_start, period_end, wall_end, status, started_at)
			VALUES (?, ?, ?, ?, 'running', ?)
			ON CONFLICT (frequency, period_end) DO UPDATE SET
				started_at = CASE WHEN digest_runs.status = 'running' THEN excluded.started_at ELSE digest_runs.started_at END
			RETURNING `+digestRunCols, run.Frequency, fmtTime(run.Start), fmtTime(run.End), run.WallEnd, fmtTime(db.Now())))
		return err
	})
	if err != nil {
		return DigestRun{}, fmt.Errorf("store: start digest run %s %s: %w", run.Frequency, fmtTime(run.End), err)
	}
	return out, nil
}

// DigestProgress is what one batch of a digest run did.
type DigestProgress struct {
	Frequency string
	End       time.Time
	// After: every subscriber with an id up to After is handled.
	After int64
	// Done finishes the run; Releases is then the number of releases in
	// its period.
	Done     bool
	Releases int
}

// CompleteDigestBatch queues msgs and records the run's progress in the
// same transaction, so a crash loses neither and a resumed run starts
// after the last batch written. It returns how many messages were new.
func (db *DB) CompleteDigestBatch(ctx context.Context, msgs []OutboxMessage, p DigestProgress) (int, error) {
	var n int
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if n, err = db.insertOutbox(ctx, tx, db.Now(), msgs); err != nil {
			return err
		}
		// SQLite's two-argument max is PostgreSQL's greatest: a CASE is both.
		q := `UPDATE digest_runs SET after_subscriber = CASE WHEN after_subscriber > ? THEN after_subscriber ELSE ? END,
			enqueued = enqueued + ?`
		args := []any{p.After, p.After, n}
		if p.Done {
			q += `, status = 'done', releases = ?, finished_at = ?`
			args = append(args, p.Releases, fmtTime(db.Now()))
		}
		res, err := tx.ExecContext(ctx, q+` WHERE frequency = ? AND period_end = ?`, append(args, p.Frequency, fmtTime(p.End))...)
		if err != nil {
			return err
		}
		if c, _ := res.RowsAffected(); c == 0 {
			return errors.New("the run was never started")
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: complete digest batch: %w", err)
	}
	return n, nil
}
