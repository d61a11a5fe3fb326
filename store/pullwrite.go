package store

// The writing side of a pull: what ApplyPull derives from a feed's entries
// before its transaction, and the multi-row statements that store them.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
)

// pullEntry is an entry of a pull with what the store derives from it
// before the transaction: its content hash and its categories as stored.
type pullEntry struct {
	Entry
	hash string
	cats string
	// keys are the categories in CategoryKey form, as the search page's
	// document-type filter reads them (categoryKeys).
	keys string
}

// preparePull drops the entries without an id and the repeats of an id
// (the first in the feed stays), and derives what the store keeps of each.
// On PostgreSQL an id is taken as its TEXT will hold it, so that the ids
// the database gives back match.
func preparePull(entries []Entry, engine Engine) []pullEntry {
	out := make([]pullEntry, 0, len(entries))
	seen := make(map[string]bool, len(entries))
	var buf []byte
	for _, e := range entries {
		if engine == Postgres {
			e.GUID = postgresText(e.GUID)
		}
		if e.GUID == "" || seen[e.GUID] {
			continue
		}
		seen[e.GUID] = true
		if e.Categories == nil {
			e.Categories = []string{}
		}
		buf = e.appendHashInput(buf[:0])
		sum := sha256.Sum256(buf)
		out = append(out, pullEntry{Entry: e, hash: hex.EncodeToString(sum[:16]), cats: encodeCategories(e.Categories), keys: categoryKeys(e.Categories)})
	}
	return out
}

// storedRelease is what a pull compares an entry with.
type storedRelease struct {
	id                                   int64
	hash, title, published, majorVersion string
	alertable                            bool
}

// storedReleases returns the stored releases of source with the ids of
// batch, by id.
func (db *DB) storedReleases(ctx context.Context, tx *sql.Tx, sourceID int64, batch []pullEntry) (map[string]storedRelease, error) {
	guids := make([]any, len(batch))
	for i := range batch {
		guids[i] = batch[i].GUID
	}
	out := map[string]storedRelease{}
	sel := db.newMultiRow(tx, 1, func(k int) string {
		return `SELECT guid, id, content_hash, title, published_at, alertable, major_version_at FROM releases
			WHERE source_id = ? AND guid IN (` + placeholders(k) + `)`
	}, sourceID)
	defer sel.close()
	err := sel.query(ctx, guids, func(rows *sql.Rows) error {
		var guid string
		var r storedRelease
		if err := rows.Scan(&guid, &r.id, &r.hash, &r.title, &r.published, &r.alertable, &r.majorVersion); err != nil {
			return err
		}
		out[guid] = r
		return nil
	})
	return out, err
}

// freshRelease is an entry of a pull stored for the first time.
type freshRelease struct {
	entry   int // in the batch
	updated string
	alert   bool
}

// pullTag is a topic an entry of a pull belongs to.
type pullTag struct {
	topic int64
	entry int // in the batch
}

// insertReleases inserts the fresh entries of batch and sets their ids.
func (db *DB) insertReleases(ctx context.Context, tx *sql.Tx, sourceID, deptID int64, now string, batch []pullEntry,
	fresh []freshRelease, published []string, ids []int64) error {
	const cols = 19
	args := make([]any, 0, cols*len(fresh))
	byGUID := make(map[string]int, len(fresh))
	for _, f := range fresh {
		e := &batch[f.entry]
		byGUID[e.GUID] = f.entry
		args = append(args, sourceID, deptID, e.GUID, e.Link, e.Title, e.Summary, e.Body, e.PlainSummary,
			e.cats, e.keys, e.DocumentType, e.hash, published[f.entry], f.updated, now, now, f.alert, f.alert, fmtTime(e.MajorVersionAt))
	}
	ins := db.newMultiRow(tx, cols, func(k int) string {
		return `INSERT INTO releases (source_id, department_id, guid, link, title, summary, body, plain_summary, categories,
			category_keys, document_type, content_hash, published_at, updated_at, first_seen_at, changed_at, alertable, alert_pending, major_version_at)
			VALUES ` + valuesList(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, k) + ` RETURNING id, guid`
	})
	defer ins.close()
	err := ins.query(ctx, args, func(rows *sql.Rows) error {
		var id int64
		var guid string
		if err := rows.Scan(&id, &guid); err != nil {
			return err
		}
		ids[byGUID[guid]] = id
		return nil
	})
	if err != nil {
		return fmt.Errorf("insert releases: %w", err)
	}
	return nil
}

// untagEdited removes the tags of the releases ids of active topics and
// adds the slugs of every topic they were tagged with to dirty.
func (db *DB) untagEdited(ctx context.Context, tx *sql.Tx, ids []int64, dirty map[string]bool) error {
	if len(ids) == 0 {
		return nil
	}
	args := int64Args(ids)
	old := db.newMultiRow(tx, 1, func(k int) string {
		return `SELECT t.slug FROM release_topics rt JOIN topics t ON t.id = rt.topic_id WHERE rt.release_id IN (` + placeholders(k) + `)`
	})
	defer old.close()
	err := old.query(ctx, args, func(rows *sql.Rows) error {
		var slug string
		if err := rows.Scan(&slug); err != nil {
			return err
		}
		dirty[slug] = true
		return nil
	})
	if err != nil {
		return err
	}
	del := db.newMultiRow(tx, 1, func(k int) string {
		return `DELETE FROM release_topics WHERE release_id IN (` + placeholders(k) + `)
			AND topic_id IN (SELECT id FROM topics WHERE retired_at = '')`
	})
	defer del.close()
	return del.exec(ctx, args)
}

func (db *DB) markDirty(ctx context.Context, tx *sql.Tx, now string, keys ...string) error {
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, now)
	}
	mark := db.newMultiRow(tx, 2, func(k int) string {
		return `INSERT INTO feed_dirty (key, marked_at) VALUES ` + valuesList(`(?, ?)`, k) + `
			ON CONFLICT (key) DO UPDATE SET marked_at = excluded.marked_at`
	})
	defer mark.close()
	if err := mark.exec(ctx, args); err != nil {
		return fmt.Errorf("mark %d feeds dirty: %w", len(keys), err)
	}
	return nil
}
