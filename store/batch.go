package store

import (
	"context"
	"database/sql"
	"strings"
)

// batchRows is the most rows one multi-row statement carries: enough that
// the cost of a statement (a round trip on PostgreSQL, binding and
// stepping through database/sql on SQLite) is spread thin, and far below
// both engines' limits on parameters (SQLite 32,766, PostgreSQL 65,535)
// with the widest row written (18 columns).
const batchRows = 256

// batchSizes splits n rows into the batches a multi-row statement runs:
// full batches of batchRows, then what is left in powers of two. A
// statement is thus only ever written for one of nine sizes, which keeps
// the statements PostgreSQL's driver caches, and the rebinder's cache,
// few.
func batchSizes(n, full int) []int {
	var out []int
	for ; n >= full; n -= full {
		out = append(out, full)
	}
	for k := full / 2; n > 0; k /= 2 {
		if n >= k {
			out = append(out, k)
			n -= k
		}
	}
	return out
}

// valuesList is the VALUES list of k rows, each written as row
// ("(?, ?, ?)").
func valuesList(row string, k int) string {
	return strings.Repeat(row+", ", k-1) + row
}

// multiRow is one statement over many rows at once (INSERT ... VALUES
// with a row each, or ... IN with a value each) in a transaction. Its
// statements, one text for each batch size, are prepared once for the
// database and kept (DB.prepared): a transaction takes the connection's
// prepared copy, so a pull of one release does not compile its few
// statements again every time, and a pull of thousands compiles none.
type multiRow struct {
	db    *DB
	tx    *sql.Tx
	width int                // arguments a row
	build func(k int) string // the statement for k rows
	lead  []any              // arguments before the rows' in every statement
	// rows is the size of a full batch: batchRows unless set.
	rows  int
	stmts map[int]*sql.Stmt // this transaction's, by batch size
}

func (db *DB) newMultiRow(tx *sql.Tx, width int, build func(k int) string, lead ...any) *multiRow {
	return &multiRow{db: db, tx: tx, width: width, build: build, lead: lead, rows: batchRows}
}

// exec runs the statement for the rows whose arguments args holds, width
// a row, one batch at a time.
func (m *multiRow) exec(ctx context.Context, args []any) error {
	return m.query(ctx, args, nil)
}

// query runs the statement as exec does and calls scan, unless it is nil,
// for each row of the results.
func (m *multiRow) query(ctx context.Context, args []any, scan func(*sql.Rows) error) error {
	for _, k := range batchSizes(len(args)/m.width, m.rows) {
		batch := args[:k*m.width]
		args = args[k*m.width:]
		if len(m.lead) > 0 {
			batch = append(append(make([]any, 0, len(m.lead)+len(batch)), m.lead...), batch...)
		}
		st, err := m.stmt(ctx, k)
		if err != nil {
			return err
		}
		if scan == nil {
			if _, err := st.ExecContext(ctx, batch...); err != nil {
				return err
			}
			continue
		}
		rows, err := st.QueryContext(ctx, batch...)
		if err != nil {
			return err
		}
		for err == nil && rows.Next() {
			err = scan(rows)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// stmt is the transaction's statement for batches of k rows. It is closed
// with the transaction; the database's prepared statement stays.
func (m *multiRow) stmt(ctx context.Context, k int) (*sql.Stmt, error) {
	if st := m.stmts[k]; st != nil {
		return st, nil
	}
	st, err := m.db.txPrepared(ctx, m.tx, m.build(k))
	if err != nil {
		return nil, err
	}
	if m.stmts == nil {
		m.stmts = map[int]*sql.Stmt{}
	}
	m.stmts[k] = st
	return st, nil
}

func (m *multiRow) close() {
	for _, st := range m.stmts {
		st.Close()
	}
}
