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
	sum := sha256.Sum256(e.appendHashInput(nil))
	return hex.EncodeToString(sum[:16])
}

// appendHashInput appends to b the bytes Hash hashes.
func (e *Entry) appendHashInput(b []byte) []byte {
	for _, s := range [...]string{e.Title, e.Link, e.Summary, e.Body, e.DocumentType} {
		b = append(b, s...)
		b = append(b, 0)
	}
	for _, c := range e.Categories {
		b = append(b, c...)
		b = append(b, 1)
	}
	if !e.MajorVersionAt.IsZero() {
		b = append(b, fmtTime(e.MajorVersionAt)...)
	}
	return b
}

// encodeCategories is the JSON array categories are stored as, what
// json.Marshal writes. Labels are nearly always printable ASCII that JSON
// writes as it is; those are written here without reflection, anything
// else by json.Marshal.
func encodeCategories(cats []string) string {
	n := 2
	for _, c := range cats {
		for i := 0; i < len(c); i++ {
			if b := c[i]; b < 0x20 || b >= 0x7f || b == '"' || b == '\\' || b == '<' || b == '>' || b == '&' {
				out, _ := json.Marshal(cats)
				return string(out)
			}
		}
		n += len(c) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, c := range cats {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, c...)
		b = append(b, '"')
	}
	return string(append(b, ']'))
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
	version, err := topicsRev(tx.QueryRowContext(ctx, topicsRevSQL))
	if err != nil {
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
//
// The releases, their topics and their search index are written with
// multi-row statements (see multiRow), a few statements for hundreds of
// entries rather than several for each.
func (db *DB) ApplyPull(ctx context.Context, sourceID int64, entries []Entry, opt PullOptions) (PullResult, error) {
	batch := preparePull(entries, db.engine)
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
		stored, err := db.storedReleases(ctx, tx, sourceID, batch)
		if err != nil {
			return err
		}

		// Each entry's release id and published time, once known.
		ids := make([]int64, len(batch))
		published := make([]string, len(batch))
		var fresh []freshRelease
		var edited []int // indexes in batch
		// Edits of alertable releases are matched against followed
		// searches again, losing what they matched before.
		var rematch []int // indexes in batch
		docTypes := map[string]bool{}
		var tags []pullTag
		dirtyTopics := map[string]bool{}
		var upd *sql.Stmt
		defer func() {
			if upd != nil {
				upd.Close()
			}
		}()
		var hits []int
		for i := range batch {
			e := &batch[i]
			old, found := stored[e.GUID]
			if e.DocumentType != "" {
				docTypes[e.DocumentType] = true
			}
			switch {
			case !found:
				pub := e.Published
				if pub.IsZero() || pub.After(nowT.Add(24*time.Hour)) {
					pub = nowT
				}
				updated := e.Updated
				if updated.IsZero() || updated.Before(pub) || updated.After(nowT.Add(24*time.Hour)) {
					updated = pub
				}
				alert := opt.Alert != nil && opt.Alert(NewRelease{BackCatalogue: !pulledOnce, Published: pub, Now: nowT})
				published[i] = fmtTime(pub)
				fresh = append(fresh, freshRelease{entry: i, updated: fmtTime(updated), alert: alert})
				res.New++
				if alert {
					res.Alerts++
				}
			case old.hash == e.hash:
				res.Unchanged++
				continue
			default:
				ids[i], published[i] = old.id, old.published
				updated := e.Updated
				if updated.IsZero() || updated.After(nowT.Add(24*time.Hour)) || !updated.After(parseTime(old.published)) {
					updated = nowT
				}
				realert := old.alertable && opt.Realert != nil && opt.Realert(Edit{Title: old.title, MajorVersionAt: parseTime(old.majorVersion)}, e.Entry)
				bump := 0
				if realert {
					bump = 1
					res.Alerts++
				}
				if upd == nil {
					if upd, err = db.txPrepared(ctx, tx, `UPDATE releases SET link = ?, title = ?, summary = ?, body = ?, plain_summary = ?,
						categories = ?, category_keys = ?, document_type = ?, content_hash = ?, updated_at = ?, changed_at = ?, edit_count = edit_count + 1,
						major_version_at = ?, alert_version = alert_version + ?, alert_pending = CASE WHEN ? = 1 THEN 1 ELSE alert_pending END
						WHERE id = ?`); err != nil {
						return err
					}
				}
				if _, err := upd.ExecContext(ctx, e.Link, e.Title, e.Summary, e.Body, e.PlainSummary, e.cats, e.keys, e.DocumentType,
					e.hash, fmtTime(updated), now, fmtTime(e.MajorVersionAt), bump, realert, old.id); err != nil {
					return fmt.Errorf("update %q: %w", e.GUID, err)
				}
				edited = append(edited, i)
				if old.alertable {
					rematch = append(rematch, i)
				}
				res.Updated++
			}
			if topics == nil {
				continue
			}
			hits = topics.MatchTopics(deptSlug, e.Categories, e.Title, e.PlainSummary, hits)
			for _, h := range hits {
				t := topics.Topic(h)
				tags = append(tags, pullTag{topic: t.ID, entry: i})
				dirtyTopics[t.Slug] = true
			}
		}

		if err := db.insertReleases(ctx, tx, sourceID, deptID, now, batch, fresh, published, ids); err != nil {
			return err
		}
		for _, f := range fresh {
			res.NewIDs = append(res.NewIDs, ids[f.entry])
		}
		editedIDs := make([]int64, len(edited))
		for k, i := range edited {
			editedIDs[k] = ids[i]
		}
		// An edit is tagged afresh: the feeds of the topics it leaves change
		// too. Tags of retired topics stay.
		if err := db.untagEdited(ctx, tx, editedIDs, dirtyTopics); err != nil {
			return err
		}
		tagArgs := make([]any, 0, 3*len(tags))
		for _, t := range tags {
			tagArgs = append(tagArgs, t.topic, ids[t.entry], published[t.entry])
		}
		tagIns := db.newMultiRow(tx, 3, func(k int) string {
			return `INSERT INTO release_topics (topic_id, release_id, published_at) VALUES ` + valuesList(`(?, ?, ?)`, k) + ` ON CONFLICT DO NOTHING`
		})
		defer tagIns.close()
		if err := tagIns.exec(ctx, tagArgs); err != nil {
			return fmt.Errorf("tag releases: %w", err)
		}

		index := db.newSearchIndex(tx)
		defer index.close()
		if err := index.remove(ctx, editedIDs); err != nil {
			return fmt.Errorf("index edited releases for search: %w", err)
		}
		docs := make([]searchDoc, 0, len(edited)+len(fresh))
		for _, i := range edited {
			docs = append(docs, searchDoc{ids[i], batch[i].Title, batch[i].PlainSummary, batch[i].PlainBody})
		}
		// New releases in the order of their ids, which keeps FTS5 from
		// flushing its index per row.
		for _, f := range fresh {
			e := &batch[f.entry]
			docs = append(docs, searchDoc{ids[f.entry], e.Title, e.PlainSummary, e.PlainBody})
		}
		if err := index.add(ctx, docs); err != nil {
			return fmt.Errorf("index releases for search: %w", err)
		}

		// Releases that alert are matched against followed searches, now
		// that the index holds them.
		var toMatch []arrival
		rematchIDs := make([]int64, len(rematch))
		for k, i := range rematch {
			rematchIDs[k] = ids[i]
			toMatch = append(toMatch, arrival{searchDoc{ids[i], batch[i].Title, batch[i].PlainSummary, batch[i].PlainBody}, batch[i].Categories})
		}
		for _, f := range fresh {
			if f.alert {
				e := &batch[f.entry]
				toMatch = append(toMatch, arrival{searchDoc{ids[f.entry], e.Title, e.PlainSummary, e.PlainBody}, e.Categories})
			}
		}
		if err := db.matchSearches(ctx, tx, deptSlug, toMatch, rematchIDs); err != nil {
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
		if res.New+res.Updated > 0 {
			res.Feeds = append(res.Feeds, "all", "department:"+deptSlug)
		}
		for slug := range dirtyTopics {
			res.Feeds = append(res.Feeds, "topic:"+slug)
		}
		slices.Sort(res.Feeds)
		if err := db.markDirty(ctx, tx, now, res.Feeds...); err != nil {
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

// DirtyFeed is a feed key waiting to be re-rendered and when it was marked.
type DirtyFeed struct {
	Key      string
	MarkedAt string
}

// DirtyFeeds lists the feed keys whose content changed since they were last
// rendered.
func (db *DB) DirtyFeeds(ctx context.Context) ([]DirtyFeed, error) {
	rows, err := db.queryPrepared(ctx, `SELECT key, marked_at FROM feed_dirty ORDER BY key`)
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
	return scanReleases(db.db.QueryContext(ctx, q, args...))
}

// queryReleasesPrepared is queryReleases for a statement of fixed text,
// kept prepared (see stmtCache).
func (db *DB) queryReleasesPrepared(ctx context.Context, q string, args ...any) ([]Release, error) {
	return scanReleases(db.queryPrepared(ctx, q, args...))
}

func scanReleases(rows *sql.Rows, err error) ([]Release, error) {
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
