package store

import (
	"context"
	"database/sql"
)

// SQL exposes the underlying handle to the store's own tests, which set up
// and inspect states that no method of the store writes or shows (a
// migration from the future, an outbox row's raw columns). Everything
// else, other packages' tests included, goes through DB's methods.
func (db *DB) SQL() *sql.DB { return db.db }

// SearchSafe exposes searchSafe to the test that checks it against FTS5.
func SearchSafe(r rune) bool { return searchSafe(r) }

// GoTokens exposes goTokens, the tokens Go reads from searchSafe text.
func GoTokens(s string) []string { return goTokens(s) }

// ScratchTokens returns the tokens SQLite's FTS5 tokenizer makes of text.
func (db *DB) ScratchTokens(ctx context.Context, text string) ([]string, error) {
	var out []string
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = scratchTokens(ctx, tx, text)
		return err
	})
	return out, err
}

// SearchMatches returns the ids of the releases matched against search id
// on arrival (release_searches), in id order.
func (db *DB) SearchMatches(ctx context.Context, id int64) ([]int64, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT release_id FROM release_searches WHERE search_id = ? ORDER BY release_id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []int64{}
	for rows.Next() {
		var rid int64
		if err := rows.Scan(&rid); err != nil {
			return nil, err
		}
		out = append(out, rid)
	}
	return out, rows.Err()
}

// EncodeCategories exposes how categories are stored, for comparing it
// with encoding/json.
var EncodeCategories = encodeCategories
