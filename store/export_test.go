package store

import "database/sql"

// SQL exposes the underlying handle to the store's own tests, which set up
// and inspect states that no method of the store writes or shows (a
// migration from the future, an outbox row's raw columns). Everything
// else, other packages' tests included, goes through DB's methods.
func (db *DB) SQL() *sql.DB { return db.db }

// EncodeCategories exposes how categories are stored, for comparing it
// with encoding/json.
var EncodeCategories = encodeCategories

// FoldDiacritics exposes what PostgreSQL's search index is fed, for
// comparing its shortcut with the full transformation.
var FoldDiacritics = foldDiacritics
