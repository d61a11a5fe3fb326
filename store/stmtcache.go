package store

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache keeps the store's most frequent reads prepared. SQLite parses
// and plans a statement every time it runs one from its text, which costs
// more than running a short query: rendering the feeds of one new release
// spent more time preparing its listings than reading them. Only
// statements whose text is one of a few fixed ones go through it, so it
// stays small; it is not used inside transactions, whose statements stay
// on the transaction's connection.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// queryPrepared runs the read q, prepared once for the database.
func (db *DB) queryPrepared(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	s, err := db.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// queryRowPrepared is queryPrepared for a single row.
func (db *DB) queryRowPrepared(ctx context.Context, q string, args ...any) *sql.Row {
	s, err := db.prepared(ctx, q)
	if err != nil {
		// A Row that carries the error: the text fails to prepare again.
		return db.db.QueryRowContext(ctx, q, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

func (db *DB) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	db.stmts.mu.Lock()
	s := db.stmts.m[q]
	db.stmts.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := db.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	db.stmts.mu.Lock()
	defer db.stmts.mu.Unlock()
	if old := db.stmts.m[q]; old != nil {
		s.Close() // prepared meanwhile by another caller
		return old, nil
	}
	if db.stmts.m == nil {
		db.stmts.m = map[string]*sql.Stmt{}
	}
	db.stmts.m[q] = s
	return s, nil
}

// txPrepared returns q prepared for the database, as the transaction tx
// runs it: the connection's prepared copy is reused (tx.StmtContext), so a
// statement a transaction runs for each of its rows is compiled once per
// connection, not once per transaction. It is closed with tx; q's text
// must be one of a bounded few, as the cache keeps each.
func (db *DB) txPrepared(ctx context.Context, tx *sql.Tx, q string) (*sql.Stmt, error) {
	ps, err := db.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, ps), nil
}

// closeAll closes the prepared statements.
func (c *stmtCache) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.m {
		s.Close()
	}
	c.m = nil
}
