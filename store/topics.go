package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Topic is a subject subscribers follow, defined by a Rule over releases.
type Topic struct {
	ID          int64     `json:"id"`
	Slug        string    `json:"slug"`
	Title       string    `json:"title"`
	Description string    `json:"description,omitempty"`
	Rule        Rule      `json:"match"`
	RetiredAt   time.Time `json:"retired_at,omitzero"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Retired reports whether the topic has ended.
func (t Topic) Retired() bool { return !t.RetiredAt.IsZero() }

// Problems lists what is wrong with the topic's definition.
func (t Topic) Problems() []string {
	var out []string
	if !ValidSlug(t.Slug) {
		out = append(out, fmt.Sprintf("slug %q must be lower-case letters, digits and single hyphens", t.Slug))
	}
	if strings.TrimSpace(t.Title) == "" {
		out = append(out, "title is empty")
	}
	if t.Rule.Empty() {
		out = append(out, "match rule is empty: give departments, categories or keywords")
	}
	return append(out, t.Rule.Problems()...)
}

const topicCols = `id, slug, title, description, rule, retired_at, created_at, updated_at`

func scanTopic(row interface{ Scan(...any) error }) (Topic, error) {
	var t Topic
	var rule, retired, created, updated string
	if err := row.Scan(&t.ID, &t.Slug, &t.Title, &t.Description, &rule, &retired, &created, &updated); err != nil {
		return Topic{}, err
	}
	if err := json.Unmarshal([]byte(rule), &t.Rule); err != nil {
		return Topic{}, fmt.Errorf("topic %q: bad stored rule: %w", t.Slug, err)
	}
	t.RetiredAt, t.CreatedAt, t.UpdatedAt = parseTime(retired), parseTime(created), parseTime(updated)
	return t, nil
}

// UpsertTopic creates the topic or updates its title, description and rule.
// A new or changed rule re-tags the whole archive in the same transaction,
// with the matcher rules compiles; an upserted topic is active again even
// if it had been retired.
func (db *DB) UpsertTopic(ctx context.Context, t Topic, rules TopicRules) (Topic, error) {
	return db.saveTopic(ctx, t, rules, false)
}

// CreateTopic adds a topic, failing with ErrConflict if the slug is taken,
// and tags the archive with it (see UpsertTopic).
func (db *DB) CreateTopic(ctx context.Context, t Topic, rules TopicRules) (Topic, error) {
	return db.saveTopic(ctx, t, rules, true)
}

func (db *DB) saveTopic(ctx context.Context, t Topic, rules TopicRules, mustBeNew bool) (Topic, error) {
	if p := t.Problems(); len(p) > 0 {
		return Topic{}, fmt.Errorf("store: topic %q: %s", t.Slug, strings.Join(p, "; "))
	}
	rule, err := json.Marshal(t.Rule)
	if err != nil {
		return Topic{}, fmt.Errorf("store: topic %q: %w", t.Slug, err)
	}
	var out Topic
	err = db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = db.saveTopicTx(ctx, tx, t, rule, rules, mustBeNew)
		return err
	})
	if errors.Is(err, ErrConflict) {
		return Topic{}, fmt.Errorf("store: topic %q: %w", t.Slug, ErrConflict)
	}
	if err != nil {
		return Topic{}, fmt.Errorf("store: save topic %q: %w", t.Slug, err)
	}
	return out, nil
}

// saveTopicTx is saveTopic in tx, with t's rule already encoded.
func (db *DB) saveTopicTx(ctx context.Context, tx *sql.Tx, t Topic, rule []byte, rules TopicRules, mustBeNew bool) (Topic, error) {
	now := fmtTime(db.Now())
	old, err := scanTopic(tx.QueryRowContext(ctx, `SELECT `+topicCols+` FROM topics WHERE slug = ?`, t.Slug))
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Topic{}, err
	}
	if exists && mustBeNew {
		return Topic{}, ErrConflict
	}
	oldRule, _ := json.Marshal(old.Rule)
	changed := !exists || old.Title != t.Title || old.Description != t.Description || string(oldRule) != string(rule) || old.Retired()
	if !changed {
		return old, nil
	}
	out, err := scanTopic(tx.QueryRowContext(ctx, `
		INSERT INTO topics (slug, title, description, rule, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (slug) DO UPDATE SET title = excluded.title, description = excluded.description,
			rule = excluded.rule, retired_at = '', updated_at = excluded.updated_at
		RETURNING `+topicCols, t.Slug, strings.TrimSpace(t.Title), t.Description, string(rule), now, now))
	if err != nil {
		return Topic{}, err
	}
	if !exists || string(oldRule) != string(rule) {
		if err := retagTopic(ctx, tx, out, rules); err != nil {
			return Topic{}, err
		}
	}
	if err := bumpTopicsRev(ctx, tx); err != nil {
		return Topic{}, err
	}
	return out, db.markDirty(ctx, tx, now, "topic:"+t.Slug)
}

// compileOne compiles the rule of a single topic.
func compileOne(rules TopicRules, t Topic) (TopicMatcher, error) {
	return rules.Compile("", func() ([]Topic, error) { return []Topic{t}, nil })
}

// retagTopic recomputes which releases of the archive belong to topic t.
func retagTopic(ctx context.Context, tx *sql.Tx, t Topic, rules TopicRules) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM release_topics WHERE topic_id = ?`, t.ID); err != nil {
		return err
	}
	m, err := compileOne(rules, t)
	if err != nil {
		return err
	}
	q := `SELECT r.id, d.slug, r.categories, r.title, coalesce(r.plain_summary, ''), r.published_at
		FROM releases r JOIN departments d ON d.id = r.department_id`
	var args []any
	if len(t.Rule.Departments) > 0 {
		q += ` WHERE d.slug IN (` + placeholders(len(t.Rule.Departments)) + `)`
		for _, d := range t.Rule.Departments {
			args = append(args, d)
		}
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	type hit struct {
		id        int64
		published string
	}
	var hits []hit
	var buf []int
	for rows.Next() {
		var id int64
		var dept, cats, title, summary, published string
		if err := rows.Scan(&id, &dept, &cats, &title, &summary, &published); err != nil {
			rows.Close()
			return err
		}
		if buf = m.MatchTopics(dept, decodeCategories(cats), title, summary, buf); len(buf) > 0 {
			hits = append(hits, hit{id, published})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO release_topics (topic_id, release_id, published_at) VALUES (?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, h := range hits {
		if _, err := stmt.ExecContext(ctx, t.ID, h.id, h.published); err != nil {
			return err
		}
	}
	return nil
}

// RetireTopic ends a topic: it keeps its releases and subscribers' history,
// stops matching new releases, and its feeds say that they have ended.
func (db *DB) RetireTopic(ctx context.Context, slug string) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		now := fmtTime(db.Now())
		res, err := tx.ExecContext(ctx, `UPDATE topics SET retired_at = ?, updated_at = ? WHERE slug = ? AND retired_at = ''`, now, now, slug)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var exists int
			tx.QueryRowContext(ctx, `SELECT count(*) FROM topics WHERE slug = ?`, slug).Scan(&exists)
			if exists == 0 {
				return ErrNotFound
			}
			return nil
		}
		if err := bumpTopicsRev(ctx, tx); err != nil {
			return err
		}
		return db.markDirty(ctx, tx, now, "topic:"+slug)
	})
	if err != nil {
		return fmt.Errorf("store: retire topic %q: %w", slug, err)
	}
	return nil
}

// Topics lists topics by title; retired ones only when includeRetired.
func (db *DB) Topics(ctx context.Context, includeRetired bool) ([]Topic, error) {
	q := `SELECT ` + topicCols + ` FROM topics`
	if !includeRetired {
		q += ` WHERE retired_at = ''`
	}
	rows, err := db.db.QueryContext(ctx, q+` ORDER BY title, slug`)
	if err != nil {
		return nil, fmt.Errorf("store: topics: %w", err)
	}
	defer rows.Close()
	var out []Topic
	for rows.Next() {
		t, err := scanTopic(rows)
		if err != nil {
			return nil, fmt.Errorf("store: topics: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// TopicBySlug returns one topic (retired or not) or ErrNotFound.
func (db *DB) TopicBySlug(ctx context.Context, slug string) (Topic, error) {
	t, err := scanTopic(db.db.QueryRowContext(ctx, `SELECT `+topicCols+` FROM topics WHERE slug = ?`, slug))
	if errors.Is(err, sql.ErrNoRows) {
		return Topic{}, fmt.Errorf("store: topic %q: %w", slug, ErrNotFound)
	}
	if err != nil {
		return Topic{}, fmt.Errorf("store: topic %q: %w", slug, err)
	}
	return t, nil
}

// RuleMatches counts the releases first stored since `since` that rule,
// compiled by rules, would match, with up to limit of the newest as
// examples.
func (db *DB) RuleMatches(ctx context.Context, rule Rule, rules TopicRules, since time.Time, limit int) (int, []Release, error) {
	m, err := compileOne(rules, Topic{Rule: rule})
	if err != nil {
		return 0, nil, fmt.Errorf("store: rule matches: %w", err)
	}
	q := `SELECT ` + releaseCols + `, coalesce(r.plain_summary, '')` + releaseFrom + ` WHERE r.first_seen_at >= ?`
	args := []any{fmtTime(since)}
	if len(rule.Departments) > 0 {
		q += ` AND d.slug IN (` + placeholders(len(rule.Departments)) + `)`
		for _, d := range rule.Departments {
			args = append(args, d)
		}
	}
	rows, err := db.db.QueryContext(ctx, q+` ORDER BY r.published_at DESC, r.id DESC`, args...)
	if err != nil {
		return 0, nil, fmt.Errorf("store: rule matches: %w", err)
	}
	defer rows.Close()
	n := 0
	var examples []Release
	var buf []int
	for rows.Next() {
		var summary string
		r, err := scanRelease(scanAlso{rows, []any{&summary}})
		if err != nil {
			return 0, nil, fmt.Errorf("store: rule matches: %w", err)
		}
		if buf = m.MatchTopics(r.DepartmentSlug, r.Categories, r.Title, summary, buf); len(buf) > 0 {
			n++
			if len(examples) < limit {
				examples = append(examples, r)
			}
		}
	}
	return n, examples, rows.Err()
}

// TopicsRevision returns the revision of the topics, which every change to
// a topic moves in the transaction that makes it: what a reader built from
// the topics stays right for as long as the revision stays the same. It is
// "" before any topic exists.
func (db *DB) TopicsRevision(ctx context.Context) (string, error) {
	rev, err := topicsRev(db.queryRowPrepared(ctx, topicsRevSQL))
	if err != nil {
		return "", fmt.Errorf("store: topics revision: %w", err)
	}
	return rev, nil
}

const topicsRevSQL = `SELECT value FROM settings WHERE key = 'topics_rev'`

// topicsRev reads the topics revision (see TopicsRevision) from the row
// of topicsRevSQL.
func topicsRev(row *sql.Row) (string, error) {
	var rev string
	err := row.Scan(&rev)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return rev, err
}

// bumpTopicsRev records that topics changed, so compiled rule sets kept by
// any process are rebuilt at their next pull.
func bumpTopicsRev(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES ('topics_rev', '1')
		ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(settings.value AS INTEGER) + 1 AS TEXT)`)
	return err
}
