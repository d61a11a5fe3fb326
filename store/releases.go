package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Release is one published item: a press release, an announcement, a notice.
type Release struct {
	ID             int64     `json:"id"`
	SourceID       int64     `json:"-"`
	Source         string    `json:"source"`
	DepartmentID   int64     `json:"-"`
	DepartmentSlug string    `json:"department"`
	DepartmentName string    `json:"department_name"`
	GUID           string    `json:"guid"`
	Link           string    `json:"link"`
	Title          string    `json:"title"`
	Summary        string    `json:"summary"` // sanitised HTML
	Body           string    `json:"body"`    // sanitised HTML
	Categories     []string  `json:"categories"`
	DocumentType   string    `json:"document_type,omitempty"`
	ContentHash    string    `json:"-"`
	Published      time.Time `json:"published"`
	Updated        time.Time `json:"updated"`
	FirstSeen      time.Time `json:"first_seen"`
	Changed        time.Time `json:"-"`
	EditCount      int       `json:"edit_count"`
	Alertable      bool      `json:"-"`
	AlertVersion   int       `json:"-"`
	Topics         []string  `json:"topics"`
}

// Entry is a normalised upstream item, ready to store. Its strings are
// already cleaned (plain-text title, sanitised HTML).
type Entry struct {
	GUID    string
	Link    string
	Title   string
	Summary string
	Body    string
	// PlainSummary and PlainBody are the text of Summary and Body, which the
	// pull side reads from the HTML: the store matches topic rules against
	// the title and PlainSummary and indexes all three for search. They
	// follow from Summary and Body, so they are not part of Hash.
	PlainSummary string
	PlainBody    string
	Categories   []string
	DocumentType string
	Published    time.Time // zero: unknown, the first-seen time is used
	Updated      time.Time // zero: same as Published
	// MajorChange marks an edit that upstream calls a new version worth
	// announcing again.
	MajorChange bool
	// MajorVersionAt, when upstream has one, is a time it moves only for a
	// major change (GOV.UK's public_timestamp); a later value than the one
	// stored counts as MajorChange.
	MajorVersionAt time.Time
}

// Hash is the content hash that decides whether a stored release changed.
func (e Entry) Hash() string {
	h := sha256.New()
	for _, s := range []string{e.Title, e.Link, e.Summary, e.Body, e.DocumentType} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	for _, c := range e.Categories {
		h.Write([]byte(c))
		h.Write([]byte{1})
	}
	if !e.MajorVersionAt.IsZero() {
		h.Write([]byte(fmtTime(e.MajorVersionAt)))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// PullOptions says how ApplyPull treats what it stores.
type PullOptions struct {
	ETag         string
	LastModified string
	StartedAt    time.Time
	Duration     time.Duration
	// Topics compiles the rules that tag what is stored; nil tags nothing.
	Topics TopicRules
	// Alert decides whether a release stored for the first time alerts
	// subscribers (and can be announced again when edited); nil alerts
	// none.
	Alert func(n NewRelease) bool
	// Realert decides whether an edit of an alertable release is announced
	// again; nil announces no edit.
	Realert func(old Edit, e Entry) bool
}

// NewRelease is what the store knows of a release it is storing for the
// first time, for deciding whether it alerts.
type NewRelease struct {
	// BackCatalogue is true on a source's first successful pull, which
	// stores what the source had published before Herald read it.
	BackCatalogue bool
	// Published is the publication time as stored: upstream's, or the
	// first-seen time when upstream gave none or one more than a day
	// ahead.
	Published time.Time
	// Now is the pull's time, which is also the first-seen time.
	Now time.Time
}

// PullResult is what one pull changed.
type PullResult struct {
	New       int
	Updated   int
	Unchanged int
	// NewIDs are the releases stored for the first time.
	NewIDs []int64
	// Alerts counts releases queued for immediate alerts.
	Alerts int
	// Feeds are the feed keys whose content changed.
	Feeds []string
}

// TopicMatcher says which of a list of topics a release belongs to. The
// rules are the pull side's (feeds/rules); the store records the answers.
type TopicMatcher interface {
	// MatchTopics appends to buf[:0] the indexes, in the list the matcher
	// was compiled for, of the topics that a release of department dept
	// with these categories, title and plain-text summary belongs to, in
	// increasing order.
	MatchTopics(dept string, categories []string, title, plainSummary string, buf []int) []int
	// Topic returns the topic at index i of that list.
	Topic(i int) Topic
}

// TopicRules compiles topics' rules into a TopicMatcher.
type TopicRules interface {
	// Compile returns a matcher for the topics load returns. A rev that
	// is not "" is the revision of the active topics, which every topic
	// change moves in its own transaction, so an implementation may
	// reuse what it compiled for the same rev without calling load.
	Compile(rev string, load func() ([]Topic, error)) (TopicMatcher, error)
}

// Edit is what the store knew of a release before a pull changed it, for
// deciding whether the change is announced again.
type Edit struct {
	Title string
	// MajorVersionAt is the stored major-version time (see
	// Entry.MajorVersionAt); zero when upstream gave none.
	MajorVersionAt time.Time
}

// activeTopics returns the matcher for the active topics, compiled by
// rules for the topics revision read in tx.
func activeTopics(ctx context.Context, tx *sql.Tx, rules TopicRules) (TopicMatcher, error) {
	var version string
	err := tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = 'topics_rev'`).Scan(&version)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	// The revision is "" only before any topic exists; "0" keeps it from
	// meaning "do not keep".
	if version == "" {
		version = "0"
	}
	return rules.Compile(version, func() ([]Topic, error) {
		rows, err := tx.QueryContext(ctx, `SELECT `+topicCols+` FROM topics WHERE retired_at = ''`)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var topics []Topic
		for rows.Next() {
			t, err := scanTopic(rows)
			if err != nil {
				return nil, err
			}
			topics = append(topics, t)
		}
		return topics, rows.Err()
	})
}

// ApplyPull stores the entries of one successful pull of a source in one
// transaction: new releases are inserted and tagged with topics, changed ones
// updated and re-tagged, identical ones left alone; the source's validators
// and health are updated and the affected feeds marked for re-rendering.
//
// Alerting is the caller's policy: a new release is alertable when
// opt.Alert says so, and an edit of an alertable release is announced
// again when opt.Realert says so. Which topics a release belongs to is
// opt.Topics' answer.
func (db *DB) ApplyPull(ctx context.Context, sourceID int64, entries []Entry, opt PullOptions) (PullResult, error) {
	var res PullResult
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res = PullResult{}
		// The clock is read under the lock that orders pulls with digest
		// runs (see StartDigestRun).
		if err := db.orderWithDigests(ctx, tx, "ROW EXCLUSIVE"); err != nil {
			return err
		}
		nowT := db.Now().UTC()
		now := fmtTime(nowT)
		var deptID int64
		var deptSlug string
		var pulledOnce bool
		err := tx.QueryRowContext(ctx, `SELECT s.department_id, d.slug, s.pulled_once FROM sources s
			JOIN departments d ON d.id = s.department_id WHERE s.id = ?`, sourceID).Scan(&deptID, &deptSlug, &pulledOnce)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		var topics TopicMatcher
		if opt.Topics != nil {
			if topics, err = activeTopics(ctx, tx, opt.Topics); err != nil {
				return err
			}
		}
		sel, err := tx.PrepareContext(ctx, `SELECT id, content_hash, title, published_at, alertable, major_version_at FROM releases WHERE source_id = ? AND guid = ?`)
		if err != nil {
			return err
		}
		defer sel.Close()
		ins, err := tx.PrepareContext(ctx, `INSERT INTO releases (source_id, department_id, guid, link, title, summary, body,
			plain_summary, categories, category_keys, document_type, content_hash, published_at, updated_at, first_seen_at, changed_at,
			alertable, alert_pending, major_version_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`)
		if err != nil {
			return err
		}
		defer ins.Close()
		upd, err := tx.PrepareContext(ctx, `UPDATE releases SET link = ?, title = ?, summary = ?, body = ?, plain_summary = ?,
			categories = ?, category_keys = ?, document_type = ?, content_hash = ?, updated_at = ?, changed_at = ?, edit_count = edit_count + 1, major_version_at = ?,
			alert_version = alert_version + ?, alert_pending = CASE WHEN ? = 1 THEN 1 ELSE alert_pending END WHERE id = ?`)
		if err != nil {
			return err
		}
		defer upd.Close()
		tagIns, err := tx.PrepareContext(ctx, `INSERT INTO release_topics (topic_id, release_id, published_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		defer tagIns.Close()
		oldTags, err := tx.PrepareContext(ctx, `SELECT t.slug FROM release_topics rt JOIN topics t ON t.id = rt.topic_id WHERE rt.release_id = ?`)
		if err != nil {
			return err
		}
		defer oldTags.Close()
		tagDel, err := tx.PrepareContext(ctx, `DELETE FROM release_topics WHERE release_id = ? AND topic_id IN (SELECT id FROM topics WHERE retired_at = '')`)
		if err != nil {
			return err
		}
		defer tagDel.Close()
		index, err := db.newSearchIndex(ctx, tx)
		if err != nil {
			return err
		}
		defer index.close()

		dirty := map[string]bool{}
		// New releases are indexed for search after the loop, in the order
		// of their ids, which keeps FTS5 from flushing its index per row.
		var fresh []searchDoc
		// Releases that alert are matched against followed searches once
		// indexed; edited ones lose what they matched before.
		var toMatch []arrival
		var edited []int64
		docTypes := map[string]bool{}
		seen := map[string]bool{}
		var hits []int
		for _, e := range entries {
			if e.GUID == "" || seen[e.GUID] {
				continue
			}
			seen[e.GUID] = true
			if e.Categories == nil {
				e.Categories = []string{}
			}
			if e.DocumentType != "" {
				docTypes[e.DocumentType] = true
			}
			hash := e.Hash()
			cats, _ := json.Marshal(e.Categories)
			var id int64
			var oldHash, oldTitle, published, oldVersion string
			var alertable bool
			err := sel.QueryRowContext(ctx, sourceID, e.GUID).Scan(&id, &oldHash, &oldTitle, &published, &alertable, &oldVersion)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				pub := e.Published
				if pub.IsZero() || pub.After(nowT.Add(24*time.Hour)) {
					pub = nowT
				}
				updated := e.Updated
				if updated.IsZero() || updated.Before(pub) || updated.After(nowT.Add(24*time.Hour)) {
					updated = pub
				}
				alert := opt.Alert != nil && opt.Alert(NewRelease{BackCatalogue: !pulledOnce, Published: pub, Now: nowT})
				published = fmtTime(pub)
				err := ins.QueryRowContext(ctx, sourceID, deptID, e.GUID, e.Link, e.Title, e.Summary, e.Body, e.PlainSummary,
					string(cats), categoryKeys(e.Categories), e.DocumentType, hash, published, fmtTime(updated), now, now, alert, alert,
					fmtTime(e.MajorVersionAt)).Scan(&id)
				if err != nil {
					return fmt.Errorf("insert %q: %w", e.GUID, err)
				}
				fresh = append(fresh, searchDoc{id, e.Title, e.PlainSummary, e.PlainBody})
				if alert {
					toMatch = append(toMatch, arrival{fresh[len(fresh)-1], e.Categories})
				}
				res.New++
				res.NewIDs = append(res.NewIDs, id)
				if alert {
					res.Alerts++
				}
			case err != nil:
				return err
			case oldHash == hash:
				res.Unchanged++
				continue
			default:
				updated := e.Updated
				if updated.IsZero() || updated.After(nowT.Add(24*time.Hour)) || !updated.After(parseTime(published)) {
					updated = nowT
				}
				realert := alertable && opt.Realert != nil && opt.Realert(Edit{Title: oldTitle, MajorVersionAt: parseTime(oldVersion)}, e)
				bump := 0
				if realert {
					bump = 1
					res.Alerts++
				}
				if _, err := upd.ExecContext(ctx, e.Link, e.Title, e.Summary, e.Body, e.PlainSummary, string(cats), categoryKeys(e.Categories),
					e.DocumentType, hash, fmtTime(updated), now, fmtTime(e.MajorVersionAt), bump, realert, id); err != nil {
					return fmt.Errorf("update %q: %w", e.GUID, err)
				}
				doc := searchDoc{id, e.Title, e.PlainSummary, e.PlainBody}
				if err := index.replace(ctx, doc); err != nil {
					return fmt.Errorf("index %q for search: %w", e.GUID, err)
				}
				if alertable {
					edited = append(edited, id)
					toMatch = append(toMatch, arrival{doc, e.Categories})
				}
				rows, err := oldTags.QueryContext(ctx, id)
				if err != nil {
					return err
				}
				for rows.Next() {
					var slug string
					rows.Scan(&slug)
					dirty["topic:"+slug] = true
				}
				rows.Close()
				if _, err := tagDel.ExecContext(ctx, id); err != nil {
					return err
				}
				res.Updated++
			}
			dirty["all"] = true
			dirty["department:"+deptSlug] = true
			if topics == nil {
				continue
			}
			hits = topics.MatchTopics(deptSlug, e.Categories, e.Title, e.PlainSummary, hits)
			for _, i := range hits {
				t := topics.Topic(i)
				if _, err := tagIns.ExecContext(ctx, t.ID, id, published); err != nil {
					return err
				}
				dirty["topic:"+t.Slug] = true
			}
		}
		for _, d := range fresh {
			if err := index.add(ctx, d); err != nil {
				return fmt.Errorf("index new releases for search: %w", err)
			}
		}
		if err := db.matchSearches(ctx, tx, deptSlug, toMatch, edited); err != nil {
			return fmt.Errorf("match followed searches: %w", err)
		}
		for _, t := range slices.Sorted(maps.Keys(docTypes)) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO document_types (name) VALUES (?) ON CONFLICT DO NOTHING`, t); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sources SET etag = ?, last_modified = ?, last_pull_at = ?, last_success_at = ?,
			last_status = 'ok', last_error = '', failure_count = 0, next_pull_at = '', pulled_once = 1 WHERE id = ?`,
			opt.ETag, opt.LastModified, now, now, sourceID); err != nil {
			return err
		}
		for k := range dirty {
			res.Feeds = append(res.Feeds, k)
		}
		if err := markDirty(ctx, tx, now, res.Feeds...); err != nil {
			return err
		}
		started := opt.StartedAt
		if started.IsZero() {
			started = nowT
		}
		return insertPull(ctx, tx, sourceID, started, opt.Duration, "ok", res, "")
	})
	if err != nil {
		return PullResult{}, fmt.Errorf("store: apply pull of source %d: %w", sourceID, err)
	}
	return res, nil
}

func markDirty(ctx context.Context, tx *sql.Tx, now string, keys ...string) error {
	for _, k := range keys {
		if _, err := tx.ExecContext(ctx, `INSERT INTO feed_dirty (key, marked_at) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET marked_at = excluded.marked_at`, k, now); err != nil {
			return fmt.Errorf("mark feed %q dirty: %w", k, err)
		}
	}
	return nil
}

// DirtyFeed is a feed key waiting to be re-rendered and when it was marked.
type DirtyFeed struct {
	Key      string
	MarkedAt string
}

// DirtyFeeds lists the feed keys whose content changed since they were last
// rendered.
func (db *DB) DirtyFeeds(ctx context.Context) ([]DirtyFeed, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT key, marked_at FROM feed_dirty ORDER BY key`)
	if err != nil {
		return nil, fmt.Errorf("store: dirty feeds: %w", err)
	}
	defer rows.Close()
	var out []DirtyFeed
	for rows.Next() {
		var d DirtyFeed
		if err := rows.Scan(&d.Key, &d.MarkedAt); err != nil {
			return nil, fmt.Errorf("store: dirty feeds: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ClearDirtyFeed removes key from the dirty set unless it was marked again
// after markedAt (a change that arrived while it was being rendered).
func (db *DB) ClearDirtyFeed(ctx context.Context, d DirtyFeed) error {
	_, err := db.db.ExecContext(ctx, `DELETE FROM feed_dirty WHERE key = ? AND marked_at = ?`, d.Key, d.MarkedAt)
	if err != nil {
		return fmt.Errorf("store: clear dirty feed %q: %w", d.Key, err)
	}
	return nil
}

const releaseCols = `r.id, r.source_id, s.name, r.department_id, d.slug, d.name, r.guid, r.link, r.title, r.summary, r.body,
	r.categories, r.document_type, r.content_hash, r.published_at, r.updated_at, r.first_seen_at, r.changed_at,
	r.edit_count, r.alertable, r.alert_version`

const releaseFrom = ` FROM releases r JOIN departments d ON d.id = r.department_id JOIN sources s ON s.id = r.source_id`

func scanRelease(row interface{ Scan(...any) error }) (Release, error) {
	var r Release
	var cats, pub, upd, first, changed string
	err := row.Scan(&r.ID, &r.SourceID, &r.Source, &r.DepartmentID, &r.DepartmentSlug, &r.DepartmentName, &r.GUID, &r.Link,
		&r.Title, &r.Summary, &r.Body, &cats, &r.DocumentType, &r.ContentHash, &pub, &upd, &first, &changed,
		&r.EditCount, &r.Alertable, &r.AlertVersion)
	r.Categories = decodeCategories(cats)
	r.Published, r.Updated, r.FirstSeen, r.Changed = parseTime(pub), parseTime(upd), parseTime(first), parseTime(changed)
	return r, err
}

// scanAlso scans a row of releaseCols followed by more columns into extra.
type scanAlso struct {
	row   interface{ Scan(...any) error }
	extra []any
}

func (s scanAlso) Scan(dest ...any) error { return s.row.Scan(append(dest, s.extra...)...) }

func decodeCategories(s string) []string {
	out := []string{}
	json.Unmarshal([]byte(s), &out)
	return out
}

// ReleaseFilter selects releases, newest published first.
type ReleaseFilter struct {
	Department string // slug
	Topic      string // slug
	// Before continues a listing after the release with this published time
	// and id (keyset pagination).
	BeforePublished time.Time
	BeforeID        int64
	Offset          int
	Limit           int // default 50
	// WithTopics fills Release.Topics.
	WithTopics bool
}

// Releases lists releases matching f, newest published first.
func (db *DB) Releases(ctx context.Context, f ReleaseFilter) ([]Release, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	var where []string
	var args []any
	q := `SELECT ` + releaseCols + releaseFrom
	if f.Topic != "" {
		q = `SELECT ` + releaseCols + ` FROM release_topics rt JOIN topics t ON t.id = rt.topic_id
			JOIN releases r ON r.id = rt.release_id JOIN departments d ON d.id = r.department_id JOIN sources s ON s.id = r.source_id`
		where = append(where, "t.slug = ?")
		args = append(args, f.Topic)
	}
	if f.Department != "" {
		where = append(where, "d.slug = ?")
		args = append(args, f.Department)
	}
	pubCol := "r.published_at"
	if f.Topic != "" {
		pubCol = "rt.published_at"
	}
	if !f.BeforePublished.IsZero() {
		where = append(where, "("+pubCol+" < ? OR ("+pubCol+" = ? AND r.id < ?))")
		b := fmtTime(f.BeforePublished)
		args = append(args, b, b, f.BeforeID)
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY " + pubCol + " DESC, r.id DESC LIMIT ? OFFSET ?"
	args = append(args, f.Limit, f.Offset)
	out, err := db.queryReleases(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	if f.WithTopics {
		if err := db.fillTopics(ctx, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (db *DB) queryReleases(ctx context.Context, q string, args ...any) ([]Release, error) {
	rows, err := db.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: releases: %w", err)
	}
	defer rows.Close()
	out := []Release{}
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, fmt.Errorf("store: releases: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// fillTopics sets Topics on each release (active and retired topics alike).
func (db *DB) fillTopics(ctx context.Context, rs []Release) error {
	if len(rs) == 0 {
		return nil
	}
	idx := make(map[int64]int, len(rs))
	args := make([]any, len(rs))
	for i := range rs {
		idx[rs[i].ID] = i
		args[i] = rs[i].ID
		rs[i].Topics = []string{}
	}
	rows, err := db.db.QueryContext(ctx, `SELECT rt.release_id, t.slug FROM release_topics rt JOIN topics t ON t.id = rt.topic_id
		WHERE rt.release_id IN (`+placeholders(len(rs))+`) ORDER BY t.slug`, args...)
	if err != nil {
		return fmt.Errorf("store: release topics: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var slug string
		if err := rows.Scan(&id, &slug); err != nil {
			return fmt.Errorf("store: release topics: %w", err)
		}
		rs[idx[id]].Topics = append(rs[idx[id]].Topics, slug)
	}
	return rows.Err()
}

// ReleaseByID returns one release with its topics, or ErrNotFound.
func (db *DB) ReleaseByID(ctx context.Context, id int64) (Release, error) {
	rs, err := db.queryReleases(ctx, `SELECT `+releaseCols+releaseFrom+` WHERE r.id = ?`, id)
	if err != nil {
		return Release{}, err
	}
	if len(rs) == 0 {
		return Release{}, fmt.Errorf("store: release %d: %w", id, ErrNotFound)
	}
	if err := db.fillTopics(ctx, rs); err != nil {
		return Release{}, err
	}
	return rs[0], nil
}

// CountReleases returns the number of stored releases.
func (db *DB) CountReleases(ctx context.Context) (int, error) {
	var n int
	err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM releases`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count releases: %w", err)
	}
	return n, nil
}
