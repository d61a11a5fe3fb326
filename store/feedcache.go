package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Feed document kinds.
const (
	FeedKindCurrent = "current"
	FeedKindArchive = "archive"
	FeedKindOPML    = "opml"
)

// FeedDoc is one rendered feed document in the feed cache: the bytes served
// at Path, their gzip copy and their validators.
type FeedDoc struct {
	Path   string // URL path below base_url, e.g. /feeds/all.atom
	Key    string // all, department:SLUG, topic:SLUG or opml
	Kind   string // FeedKindCurrent, FeedKindArchive or FeedKindOPML
	Format string // atom, rss, json or opml
	Page   int    // archive page, 1 being the oldest; 0 otherwise
	// Body is nil when the document was loaded without its body (see
	// FeedDocs); Size is its length all the same.
	Body []byte
	Size int
	// Gzip is the document's gzip copy, or empty when none was made:
	// the feeds make one for archive pages as they render them, and for
	// other documents on first request.
	Gzip         []byte
	ETag         string
	LastModified time.Time
}

// FeedArchive is the paging state of one feed's RFC 5005 archive: Pages
// full pages of PageSize releases each, in the order they were first
// stored, the newest of them LastID.
type FeedArchive struct {
	Key      string
	PageSize int
	Pages    int
	LastID   int64
	// IDSum is the sum of the release ids in the full pages; a different
	// sum means older membership changed and the pages must be rebuilt.
	IDSum int64
}

// FeedDocs returns every document of the feed cache. With archiveBodies
// false, archive pages come without Body (their Gzip copy is enough to
// serve them), which keeps a large archive's memory down.
func (db *DB) FeedDocs(ctx context.Context, archiveBodies bool) ([]FeedDoc, error) {
	return db.feedDocs(ctx, archiveBodies, "")
}

// feedDocs returns the documents of the feed cache that match where (all
// of them when it is empty).
func (db *DB) feedDocs(ctx context.Context, archiveBodies bool, where string, args ...any) ([]FeedDoc, error) {
	body := `body`
	if !archiveBodies {
		body = `CASE WHEN kind = 'archive' THEN NULL ELSE body END`
	}
	if where != "" {
		where = ` WHERE ` + where
	}
	rows, err := db.db.QueryContext(ctx, `SELECT path, feed_key, kind, format, page, `+body+`, size, gzip, etag, last_modified
		FROM feed_docs`+where+` ORDER BY path`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: feed docs: %w", err)
	}
	defer rows.Close()
	var out []FeedDoc
	for rows.Next() {
		var d FeedDoc
		var lm string
		if err := rows.Scan(&d.Path, &d.Key, &d.Kind, &d.Format, &d.Page, &d.Body, &d.Size, &d.Gzip, &d.ETag, &lm); err != nil {
			return nil, fmt.Errorf("store: feed docs: %w", err)
		}
		d.LastModified = parseTime(lm)
		out = append(out, d)
	}
	return out, rows.Err()
}

// FeedArchives returns the archive paging state of every feed.
func (db *DB) FeedArchives(ctx context.Context) ([]FeedArchive, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT feed_key, page_size, pages, last_id, id_sum FROM feed_archives ORDER BY feed_key`)
	if err != nil {
		return nil, fmt.Errorf("store: feed archives: %w", err)
	}
	defer rows.Close()
	var out []FeedArchive
	for rows.Next() {
		var a FeedArchive
		if err := rows.Scan(&a.Key, &a.PageSize, &a.Pages, &a.LastID, &a.IDSum); err != nil {
			return nil, fmt.Errorf("store: feed archives: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// FeedCacheUpdate is one batch of changes to the feed cache, written in one
// transaction.
type FeedCacheUpdate struct {
	Save         []FeedDoc
	Remove       []string // document paths
	Archives     []FeedArchive
	DropArchives []string // feed keys
	// Clear removes feed keys from the dirty set, each unless it was
	// marked again after its MarkedAt (a change that arrived while it
	// was being rendered).
	Clear []DirtyFeed
}

// UpdateFeedCache writes a batch of rendered documents and archive states.
func (db *DB) UpdateFeedCache(ctx context.Context, u FeedCacheUpdate) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		now := fmtTime(db.Now())
		if len(u.Save) > 0 {
			stmt, err := db.txPrepared(ctx, tx, `INSERT INTO feed_docs (path, feed_key, kind, format, page, body, size, gzip, etag, last_modified, rendered_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (path) DO UPDATE SET feed_key = excluded.feed_key, kind = excluded.kind, format = excluded.format,
					page = excluded.page, body = excluded.body, size = excluded.size, gzip = excluded.gzip, etag = excluded.etag,
					last_modified = excluded.last_modified, rendered_at = excluded.rendered_at`)
			if err != nil {
				return err
			}
			defer stmt.Close()
			for _, d := range u.Save {
				if d.Body == nil {
					return fmt.Errorf("document %q has no body", d.Path)
				}
				gz := d.Gzip
				if gz == nil {
					gz = []byte{} // the column holds no NULL
				}
				if _, err := stmt.ExecContext(ctx, d.Path, d.Key, d.Kind, d.Format, d.Page, d.Body, len(d.Body), gz, d.ETag,
					fmtTime(d.LastModified), now); err != nil {
					return fmt.Errorf("save %q: %w", d.Path, err)
				}
			}
		}
		for _, p := range u.Remove {
			if _, err := tx.ExecContext(ctx, `DELETE FROM feed_docs WHERE path = ?`, p); err != nil {
				return fmt.Errorf("remove %q: %w", p, err)
			}
		}
		for _, a := range u.Archives {
			if _, err := tx.ExecContext(ctx, `INSERT INTO feed_archives (feed_key, page_size, pages, last_id, id_sum) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (feed_key) DO UPDATE SET page_size = excluded.page_size, pages = excluded.pages,
					last_id = excluded.last_id, id_sum = excluded.id_sum`, a.Key, a.PageSize, a.Pages, a.LastID, a.IDSum); err != nil {
				return fmt.Errorf("archive %q: %w", a.Key, err)
			}
		}
		for _, k := range u.DropArchives {
			if _, err := tx.ExecContext(ctx, `DELETE FROM feed_archives WHERE feed_key = ?`, k); err != nil {
				return fmt.Errorf("drop archive %q: %w", k, err)
			}
		}
		for _, d := range u.Clear {
			if _, err := tx.ExecContext(ctx, `DELETE FROM feed_dirty WHERE key = ? AND marked_at = ?`, d.Key, d.MarkedAt); err != nil {
				return fmt.Errorf("clear dirty feed %q: %w", d.Key, err)
			}
		}
		if len(u.Save)+len(u.Remove)+len(u.Archives)+len(u.DropArchives) == 0 {
			return nil // nothing another instance serves changed
		}
		return db.notifyFeeds(ctx, tx, u)
	})
	if err != nil {
		return fmt.Errorf("store: update feed cache: %w", err)
	}
	return nil
}

// FeedMeta returns a value the feed renderer stored, or ErrNotFound.
func (db *DB) FeedMeta(ctx context.Context, name string) (string, error) {
	var v string
	err := db.db.QueryRowContext(ctx, `SELECT value FROM feed_meta WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("store: feed meta %q: %w", name, err)
	}
	return v, nil
}

// SetFeedMeta stores a value for the feed renderer.
func (db *DB) SetFeedMeta(ctx context.Context, name, value string) error {
	_, err := db.db.ExecContext(ctx, `INSERT INTO feed_meta (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	if err != nil {
		return fmt.Errorf("store: set feed meta %q: %w", name, err)
	}
	return nil
}

// feedScope turns a feed key into the FROM and WHERE parts that select its
// releases, with idCol naming the column releases are paged by.
func feedScope(key string) (from, where, idCol, pubCol string, args []any, err error) {
	switch {
	case key == "all":
		return releaseFrom, "", "r.id", "r.published_at", nil, nil
	case strings.HasPrefix(key, "department:"):
		return releaseFrom, "r.department_id = (SELECT id FROM departments WHERE slug = ?)", "r.id", "r.published_at",
			[]any{strings.TrimPrefix(key, "department:")}, nil
	case strings.HasPrefix(key, "topic:"):
		return ` FROM release_topics rt JOIN releases r ON r.id = rt.release_id JOIN departments d ON d.id = r.department_id
			JOIN sources s ON s.id = r.source_id`,
			"rt.topic_id = (SELECT id FROM topics WHERE slug = ?)", "rt.release_id", "rt.published_at",
			[]any{strings.TrimPrefix(key, "topic:")}, nil
	}
	return "", "", "", "", nil, fmt.Errorf("store: unknown feed key %q", key)
}

// FeedReleases returns the newest releases of a feed ("all",
// "department:SLUG" or "topic:SLUG"), newest published first.
func (db *DB) FeedReleases(ctx context.Context, key string, limit int) ([]Release, error) {
	from, where, idCol, pubCol, args, err := feedScope(key)
	if err != nil {
		return nil, err
	}
	q := `SELECT ` + releaseCols + from
	if where != "" {
		q += ` WHERE ` + where
	}
	q += ` ORDER BY ` + pubCol + ` DESC, ` + idCol + ` DESC LIMIT ?`
	rs, err := db.queryReleasesPrepared(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: feed %q: %w", key, err)
	}
	return rs, nil
}

// FeedReleasesAfter returns up to limit releases of a feed whose id is
// above afterID, lowest id first: the order archive pages are filled in.
func (db *DB) FeedReleasesAfter(ctx context.Context, key string, afterID int64, limit int) ([]Release, error) {
	from, where, idCol, _, args, err := feedScope(key)
	if err != nil {
		return nil, err
	}
	cond := idCol + ` > ?`
	if where != "" {
		cond = where + ` AND ` + cond
	}
	q := `SELECT ` + releaseCols + from + ` WHERE ` + cond + ` ORDER BY ` + idCol + ` LIMIT ?`
	rs, err := db.queryReleasesPrepared(ctx, q, append(args, afterID, limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: feed %q after %d: %w", key, afterID, err)
	}
	return rs, nil
}

// FeedReleaseHeads returns, in one statement, what rendering a feed's
// current documents again needs to know: up to pageSize releases with
// ids above afterID, lowest id first (as FeedReleasesAfter), and the
// newest limit releases, newest published first (as FeedReleases). Both
// come as heads: only ID, DepartmentSlug, DepartmentName, ContentHash,
// Published and Updated are set. A renderer that keeps what it rendered
// learns from them which releases the feed holds and which it must read
// in full (ReleasesByID) to render again, without reading every body.
func (db *DB) FeedReleaseHeads(ctx context.Context, key string, afterID int64, pageSize, limit int) (after, newest []Release, err error) {
	from, where, idCol, pubCol, args, err := feedScope(key)
	if err != nil {
		return nil, nil, err
	}
	cond := idCol + ` > ?`
	if where != "" {
		cond = where + ` AND ` + cond
		where = ` WHERE ` + where
	}
	const cols = `r.id, d.slug, d.name, r.content_hash, r.published_at, r.updated_at`
	q := `SELECT * FROM (SELECT 1 AS part, ` + cols + from + ` WHERE ` + cond + ` ORDER BY ` + idCol + ` LIMIT ?) a
		UNION ALL SELECT * FROM (SELECT 0 AS part, ` + cols + from + where + ` ORDER BY ` + pubCol + ` DESC, ` + idCol + ` DESC LIMIT ?) n`
	qargs := append(append(append(slices.Clone(args), afterID, pageSize), args...), limit)
	rows, err := db.queryPrepared(ctx, q, qargs...)
	if err != nil {
		return nil, nil, fmt.Errorf("store: feed %q heads: %w", key, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r Release
		var part int
		var pub, upd string
		if err := rows.Scan(&part, &r.ID, &r.DepartmentSlug, &r.DepartmentName, &r.ContentHash, &pub, &upd); err != nil {
			return nil, nil, fmt.Errorf("store: feed %q heads: %w", key, err)
		}
		r.Published, r.Updated = parseTime(pub), parseTime(upd)
		if part == 1 {
			after = append(after, r)
		} else {
			newest = append(newest, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("store: feed %q heads: %w", key, err)
	}
	// The order within each part of a UNION is the engine's to choose.
	slices.SortFunc(after, func(a, b Release) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(newest, func(a, b Release) int {
		if c := b.Published.Compare(a.Published); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return after, newest, nil
}

// ReleasesByID returns the releases with the given ids, in no particular
// order, without their topics; an id with no release is left out.
func (db *DB) ReleasesByID(ctx context.Context, ids []int64) ([]Release, error) {
	var out []Release
	// In the batches of multi-row statements, so only a few texts are
	// kept prepared.
	for _, k := range batchSizes(len(ids), batchRows) {
		rs, err := db.queryReleasesPrepared(ctx, `SELECT `+releaseCols+releaseFrom+` WHERE r.id IN (`+placeholders(k)+`)`, int64Args(ids[:k])...)
		if err != nil {
			return nil, fmt.Errorf("store: releases by id: %w", err)
		}
		out = append(out, rs...)
		ids = ids[k:]
	}
	return out, nil
}

// FeedReleasesThrough returns up to limit releases of a feed whose id is
// at most maxID, the highest such ids, lowest id first: an archive page
// read again from its last release.
func (db *DB) FeedReleasesThrough(ctx context.Context, key string, maxID int64, limit int) ([]Release, error) {
	from, where, idCol, _, args, err := feedScope(key)
	if err != nil {
		return nil, err
	}
	cond := idCol + ` <= ?`
	if where != "" {
		cond = where + ` AND ` + cond
	}
	q := `SELECT ` + releaseCols + from + ` WHERE ` + cond + ` ORDER BY ` + idCol + ` DESC LIMIT ?`
	rs, err := db.queryReleasesPrepared(ctx, q, append(args, maxID, limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: feed %q through %d: %w", key, maxID, err)
	}
	slices.Reverse(rs)
	return rs, nil
}

// FeedMembers counts a topic feed's releases with ids up to maxID and sums
// their ids: the fingerprint FeedArchive keeps of its full pages. Only
// topic feeds can lose or gain old releases (when a rule changes), so
// other keys are not accepted.
func (db *DB) FeedMembers(ctx context.Context, key string, maxID int64) (count int, idSum int64, err error) {
	slug, ok := strings.CutPrefix(key, "topic:")
	if !ok {
		return 0, 0, fmt.Errorf("store: feed members of %q: only topic feeds are checked", key)
	}
	err = db.queryRowPrepared(ctx, `SELECT count(*), coalesce(sum(release_id), 0) FROM release_topics
		WHERE topic_id = (SELECT id FROM topics WHERE slug = ?) AND release_id <= ?`, slug, maxID).Scan(&count, &idSum)
	if err != nil {
		return 0, 0, fmt.Errorf("store: feed members of %q: %w", key, err)
	}
	return count, idSum, nil
}

// FeedTopics lists every topic, retired ones too, by title, without their
// rules: all that rendering feeds needs, and cheaper than Topics.
func (db *DB) FeedTopics(ctx context.Context) ([]Topic, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id, slug, title, description, retired_at, created_at, updated_at
		FROM topics ORDER BY title, slug`)
	if err != nil {
		return nil, fmt.Errorf("store: feed topics: %w", err)
	}
	defer rows.Close()
	var out []Topic
	for rows.Next() {
		var t Topic
		var retired, created, updated string
		if err := rows.Scan(&t.ID, &t.Slug, &t.Title, &t.Description, &retired, &created, &updated); err != nil {
			return nil, fmt.Errorf("store: feed topics: %w", err)
		}
		t.RetiredAt, t.CreatedAt, t.UpdatedAt = parseTime(retired), parseTime(created), parseTime(updated)
		out = append(out, t)
	}
	return out, rows.Err()
}
