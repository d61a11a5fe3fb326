package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Copy moves everything one Herald database holds into another, new one:
// from SQLite to PostgreSQL when an installation outgrows one machine, or
// back. Both are opened (so migrated to this version's schema) by the
// caller. The tables are read from the schema, not listed here, so a table
// a later migration adds is copied too, in an order that puts every row
// after the rows it refers to. Rows keep their ids: links already sent
// carry subscription and subscriber ids in signed tokens (and the key that
// signs them may be a row of settings), so they go on working. Ids are
// never handed out twice: the target's id sequences start above every id
// the source has used, deleted rows' included.
//
// The search index is derived data, in a form each engine keeps its own
// way (FTS5 on SQLite, tsvector on PostgreSQL): it is not copied but built
// on the target, by the code that indexes new releases.

// ErrNotEmpty is returned by Copy when the target already holds data.
var ErrNotEmpty = errors.New("the target database is not empty")

// CopySearchIndex is the table name Copy's progress gives the search
// index as it builds it, counting releases.
const CopySearchIndex = "search index"

// CopyOptions are what Copy needs besides the two databases.
type CopyOptions struct {
	// PlainText returns the text a reader sees in a release's body HTML.
	// The search index is built from each release's title, its plain
	// summary (which the store keeps) and its body's plain text (which it
	// does not keep): the pull side's rule makes it. Required.
	PlainText func(html string) string
	// Progress, when set, is called as rows are copied: the table, the
	// rows of it copied so far, and its rows in all.
	Progress func(table string, done, total int64)
}

// TableCount is how many rows of one table Copy moved.
type TableCount struct {
	Table string
	Rows  int64
}

// CopyReport is what Copy did: the tables in the order it copied them,
// each with its rows (counted on both sides and found equal), and how
// many releases it indexed for search on the target.
type CopyReport struct {
	Tables  []TableCount
	Indexed int64
}

// Rows returns the rows copied in all.
func (r CopyReport) Rows() int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.Rows
	}
	return n
}

// notCopied are tables Copy leaves alone: each database records the
// migrations it ran itself, and releases_search is PostgreSQL's search
// index (search.go), built again on the target. SQLite's FTS5 index is a
// virtual table with shadow tables, which the schema query leaves out.
var notCopied = map[string]bool{"schema_migrations": true, "releases_search": true}

// copyBatchParams and copyBatchBytes bound one INSERT of a copy: its
// parameters (well below either engine's limit) and the bytes of its
// values (feed documents can be large).
const (
	copyBatchParams = 2000
	copyBatchBytes  = 4 << 20
)

// Copy copies every row of from into to, which must hold none (any row in
// any table: ErrNotEmpty), in one transaction on to, and rebuilds the
// search index there. It reads from in one read-only transaction, so it
// copies one consistent state, and verifies before committing that every
// table has as many rows on to as on from. Nothing should write to from
// meanwhile: what is written after the copy starts is not copied.
func Copy(ctx context.Context, from, to *DB, opts CopyOptions) (CopyReport, error) {
	if opts.PlainText == nil {
		return CopyReport{}, errors.New("store: copy: no PlainText function for the search index")
	}
	if from == to {
		return CopyReport{}, errors.New("store: copy: the source and the target are the same database")
	}
	srcTables, err := from.copyTables(ctx)
	if err != nil {
		return CopyReport{}, fmt.Errorf("store: copy: read the source's schema: %w", err)
	}
	dstTables, err := to.copyTables(ctx)
	if err != nil {
		return CopyReport{}, fmt.Errorf("store: copy: read the target's schema: %w", err)
	}
	order, err := to.copyOrder(ctx, dstTables)
	if err != nil {
		return CopyReport{}, fmt.Errorf("store: copy: read the target's schema: %w", err)
	}

	srcOpts := &sql.TxOptions{ReadOnly: true}
	if from.engine == Postgres {
		srcOpts.Isolation = sql.LevelRepeatableRead
	}
	src, err := from.db.BeginTx(ctx, srcOpts)
	if err != nil {
		return CopyReport{}, fmt.Errorf("store: copy: read the source: %w", err)
	}
	defer src.Rollback()
	dst, err := to.db.BeginTx(ctx, nil)
	if err != nil {
		return CopyReport{}, fmt.Errorf("store: copy: write the target: %w", err)
	}
	defer dst.Rollback()

	c := copier{ctx: ctx, from: from, to: to, src: src, dst: dst, opts: opts}
	rep, err := c.run(srcTables, dstTables, order)
	if err != nil {
		return CopyReport{}, err
	}
	if err := dst.Commit(); err != nil {
		return CopyReport{}, fmt.Errorf("store: copy: commit: %w", err)
	}
	return rep, nil
}

// copyTable is one table as the schema describes it.
type copyTable struct {
	name    string
	columns []copyColumn
}

// copyColumn is one column and how its values are kept.
type copyColumn struct {
	name     string
	kind     columnKind
	identity bool // PostgreSQL: an id the table's sequence hands out
}

type columnKind int

const (
	kindOther columnKind = iota
	kindText
	kindBlob
)

func (t copyTable) columnNames() []string {
	names := make([]string, len(t.columns))
	for i, c := range t.columns {
		names[i] = c.name
	}
	return names
}

// copyTables returns the tables of db whose rows Copy moves, by name.
func (db *DB) copyTables(ctx context.Context) (map[string]copyTable, error) {
	// SQLite's virtual tables (the FTS5 index) and their shadow tables
	// have types of their own in table_list.
	names, err := queryStrings(ctx, db.db, db.pick(
		`SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`,
		`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`))
	if err != nil {
		return nil, err
	}
	tables := map[string]copyTable{}
	for _, name := range names {
		if notCopied[name] {
			continue
		}
		t := copyTable{name: name}
		rows, err := db.db.QueryContext(ctx, db.pick(
			`SELECT name, type, 'NO' FROM pragma_table_info(?) ORDER BY cid`,
			`SELECT column_name, data_type, is_identity FROM information_schema.columns
				WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`), name)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var col, typ, identity string
			if err := rows.Scan(&col, &typ, &identity); err != nil {
				rows.Close()
				return nil, err
			}
			t.columns = append(t.columns, copyColumn{name: col, kind: kindOf(typ), identity: identity == "YES"})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		tables[name] = t
	}
	return tables, nil
}

// kindOf reads a column's declared type (SQLite's, by its affinity rules)
// or data type (PostgreSQL's) as far as Copy cares: text, bytes, or
// anything else, which both drivers carry as it is.
func kindOf(typ string) columnKind {
	t := strings.ToUpper(typ)
	switch {
	case strings.Contains(t, "INT"):
		return kindOther
	case strings.Contains(t, "CHAR"), strings.Contains(t, "CLOB"), strings.Contains(t, "TEXT"):
		return kindText
	case strings.Contains(t, "BLOB"), t == "BYTEA":
		return kindBlob
	}
	return kindOther
}

// copyOrder returns the names of tables so that every table comes after
// the tables its foreign keys refer to (by name otherwise), as db's schema
// declares them.
func (db *DB) copyOrder(ctx context.Context, tables map[string]copyTable) ([]string, error) {
	refs := map[string][]string{}
	if db.engine == Postgres {
		rows, err := db.db.QueryContext(ctx, `SELECT cl.relname, pr.relname FROM pg_constraint c
			JOIN pg_class cl ON cl.oid = c.conrelid
			JOIN pg_class pr ON pr.oid = c.confrelid
			JOIN pg_namespace n ON n.oid = cl.relnamespace
			WHERE c.contype = 'f' AND n.nspname = current_schema()`)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var child, parent string
			if err := rows.Scan(&child, &parent); err != nil {
				return nil, err
			}
			refs[child] = append(refs[child], parent)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	} else {
		for name := range tables {
			parents, err := queryStrings(ctx, db.db, `SELECT DISTINCT "table" FROM pragma_foreign_key_list(?)`, name)
			if err != nil {
				return nil, err
			}
			refs[name] = parents
		}
	}
	var names []string
	for name := range tables {
		names = append(names, name)
	}
	slices.Sort(names)
	var order []string
	placed := map[string]bool{}
	for len(order) < len(names) {
		progress := false
		for _, name := range names {
			if placed[name] {
				continue
			}
			ready := true
			for _, p := range refs[name] {
				if p != name && tables[p].name != "" && !placed[p] {
					ready = false
				}
			}
			if ready {
				order = append(order, name)
				placed[name] = true
				progress = true
			}
		}
		if !progress {
			return nil, errors.New("the tables' foreign keys form a cycle")
		}
	}
	return order, nil
}

// copier is one run of Copy: the two databases and their transactions.
type copier struct {
	ctx      context.Context
	from, to *DB
	src, dst *sql.Tx
	opts     CopyOptions
}

func (c *copier) run(srcTables, dstTables map[string]copyTable, order []string) (CopyReport, error) {
	if err := c.checkEmpty(dstTables); err != nil {
		return CopyReport{}, err
	}
	if err := c.checkSchemas(srcTables, dstTables); err != nil {
		return CopyReport{}, err
	}
	var rep CopyReport
	for _, name := range order {
		t, ok := srcTables[name]
		if !ok {
			continue // a table the target has and the source, with no rows, has not
		}
		n, err := c.copyRows(t, dstTables[name])
		if err != nil {
			return CopyReport{}, fmt.Errorf("store: copy %s: %w", name, err)
		}
		rep.Tables = append(rep.Tables, TableCount{Table: name, Rows: n})
	}
	var err error
	if rep.Indexed, err = c.index(); err != nil {
		return CopyReport{}, fmt.Errorf("store: copy: build the search index: %w", err)
	}
	if err := c.carryIDs(dstTables); err != nil {
		return CopyReport{}, fmt.Errorf("store: copy: id sequences: %w", err)
	}
	for _, tc := range rep.Tables {
		var n int64
		if err := c.dst.QueryRowContext(c.ctx, `SELECT count(*) FROM `+quoteIdent(tc.Table)).Scan(&n); err != nil {
			return CopyReport{}, fmt.Errorf("store: copy: count %s on the target: %w", tc.Table, err)
		}
		if n != tc.Rows {
			return CopyReport{}, fmt.Errorf("store: copy: %s has %d rows on the target after copying %d; nothing was written", tc.Table, n, tc.Rows)
		}
	}
	return rep, nil
}

// checkEmpty refuses a target that holds any row: a copy must not mix two
// installations' data, or overwrite one.
func (c *copier) checkEmpty(tables map[string]copyTable) error {
	var full []string
	for name := range tables {
		var held bool
		if err := c.dst.QueryRowContext(c.ctx, `SELECT EXISTS (SELECT 1 FROM `+quoteIdent(name)+`)`).Scan(&held); err != nil {
			return fmt.Errorf("store: copy: read the target: %w", err)
		}
		if held {
			full = append(full, name)
		}
	}
	if len(full) == 0 {
		return nil
	}
	slices.Sort(full)
	return fmt.Errorf("store: copy: %w: %s hold rows", ErrNotEmpty, strings.Join(full, ", "))
}

// checkSchemas makes sure every row of the source has a place on the
// target: the same tables and columns, but for tables the source leaves
// empty.
func (c *copier) checkSchemas(srcTables, dstTables map[string]copyTable) error {
	var names []string
	for name := range srcTables {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		st := srcTables[name]
		dt, ok := dstTables[name]
		if !ok {
			var n int64
			if err := c.src.QueryRowContext(c.ctx, `SELECT count(*) FROM `+quoteIdent(name)).Scan(&n); err != nil {
				return fmt.Errorf("store: copy: count %s: %w", name, err)
			}
			if n > 0 {
				return fmt.Errorf("store: copy: the source's table %s holds %d rows and the target has no such table", name, n)
			}
			delete(srcTables, name)
			continue
		}
		sc, dc := st.columnNames(), dt.columnNames()
		slices.Sort(sc)
		slices.Sort(dc)
		if !slices.Equal(sc, dc) {
			return fmt.Errorf("store: copy: table %s has columns %s on the source and %s on the target",
				name, strings.Join(sc, ", "), strings.Join(dc, ", "))
		}
	}
	return nil
}

// copyRows copies the rows of table s into its counterpart d, in batches
// of several rows to an INSERT, and returns how many it copied.
func (c *copier) copyRows(s, d copyTable) (int64, error) {
	var total int64
	if err := c.src.QueryRowContext(c.ctx, `SELECT count(*) FROM `+quoteIdent(s.name)).Scan(&total); err != nil {
		return 0, err
	}
	c.progress(s.name, 0, total)
	if total == 0 {
		return 0, nil
	}
	cols := make([]string, len(d.columns))
	identity := false
	for i, col := range d.columns {
		cols[i] = quoteIdent(col.name)
		identity = identity || col.identity
	}
	rows, err := c.src.QueryContext(c.ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+quoteIdent(s.name))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	insert := `INSERT INTO ` + quoteIdent(d.name) + ` (` + strings.Join(cols, ", ") + `)`
	if identity {
		// The ids come from the source, whatever the column's default.
		insert += ` OVERRIDING SYSTEM VALUE`
	}
	insert += ` VALUES `
	row := "(" + placeholders(len(cols)) + ")"
	maxRows := max(1, copyBatchParams/len(cols))
	var (
		args  []any
		n     int64
		size  int
		flush = func() error {
			if len(args) == 0 {
				return nil
			}
			k := len(args) / len(cols)
			q := insert + valuesList(row, k)
			if _, err := c.dst.ExecContext(c.ctx, q, args...); err != nil {
				return err
			}
			n += int64(k)
			c.progress(s.name, n, total)
			args, size = args[:0], 0
			return nil
		}
	)
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		for i, v := range vals {
			v, bytes := convertValue(v, d.columns[i].kind)
			args = append(args, v)
			size += bytes
		}
		if len(args)/len(cols) >= maxRows || size >= copyBatchBytes {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	if err := flush(); err != nil {
		return n, err
	}
	if n != total {
		return n, fmt.Errorf("read %d rows of the %d counted", n, total)
	}
	return n, nil
}

// convertValue returns v as the target column of kind keeps it, and its
// size in bytes. The drivers give text as string and bytes as []byte;
// SQLite may hold either in a column of the other kind.
func convertValue(v any, kind columnKind) (any, int) {
	switch x := v.(type) {
	case string:
		if kind == kindBlob {
			return []byte(x), len(x)
		}
		return x, len(x)
	case []byte:
		if kind == kindText {
			return string(x), len(x)
		}
		return x, len(x)
	}
	return v, 8
}

func (c *copier) progress(table string, done, total int64) {
	if c.opts.Progress != nil {
		c.opts.Progress(table, done, total)
	}
}

// index builds the target's search index from the releases as the source
// holds them, through the store's own indexing code, and returns how many
// releases it indexed. A release without plain text yet (stored before
// Herald kept it) is indexed by its title and body; the target gets its
// plain text, and is indexed again, as the source would have been
// (ReleasesWithoutPlainText).
func (c *copier) index() (int64, error) {
	const table = CopySearchIndex
	var total int64
	if err := c.src.QueryRowContext(c.ctx, `SELECT count(*) FROM releases`).Scan(&total); err != nil {
		return 0, err
	}
	if total > 0 {
		c.progress(table, 0, total)
	}
	x := c.to.newSearchIndex(c.dst)
	defer x.close()
	rows, err := c.src.QueryContext(c.ctx, `SELECT id, title, coalesce(plain_summary, ''), body FROM releases`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	docs := make([]searchDoc, 0, 1000)
	for rows.Next() {
		var d searchDoc
		if err := rows.Scan(&d.id, &d.title, &d.summary, &d.body); err != nil {
			return n, err
		}
		d.body = c.opts.PlainText(d.body)
		docs = append(docs, d)
		if len(docs) == cap(docs) {
			if err := x.add(c.ctx, docs); err != nil {
				return n, err
			}
			n += int64(len(docs))
			docs = docs[:0]
			c.progress(table, n, total)
		}
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	if err := x.add(c.ctx, docs); err != nil {
		return n, err
	}
	n += int64(len(docs))
	c.progress(table, n, total)
	return n, nil
}

// carryIDs makes the target hand out ids above every id the source has
// used: the highest in each table, or higher where the source remembers
// ids of deleted rows (SQLite's AUTOINCREMENT tables, PostgreSQL's
// sequences), so an erased subscriber's id, which old links name, is never
// given to someone else.
func (c *copier) carryIDs(dstTables map[string]copyTable) error {
	used, err := c.from.usedIDs(c.ctx, c.src)
	if err != nil {
		return err
	}
	if c.to.engine == Postgres {
		for _, t := range dstTables {
			for _, col := range t.columns {
				if !col.identity {
					continue
				}
				var top int64
				if err := c.dst.QueryRowContext(c.ctx, `SELECT coalesce(max(`+quoteIdent(col.name)+`), 0) FROM `+quoteIdent(t.name)).Scan(&top); err != nil {
					return err
				}
				top = max(top, used[t.name])
				if top == 0 {
					continue // a new sequence starts at 1
				}
				if _, err := c.dst.ExecContext(c.ctx, `SELECT setval(pg_get_serial_sequence(?, ?), ?)`, quoteIdent(t.name), col.name, top); err != nil {
					return err
				}
			}
		}
		return nil
	}
	// SQLite hands out max(id)+1 by itself, and, for AUTOINCREMENT tables,
	// never less than their sqlite_sequence entry.
	auto, err := queryStrings(c.ctx, c.dst, `SELECT name FROM sqlite_schema WHERE type = 'table' AND sql LIKE '%AUTOINCREMENT%'`)
	if err != nil {
		return err
	}
	for _, name := range auto {
		top := used[name]
		if top == 0 {
			continue
		}
		res, err := c.dst.ExecContext(c.ctx, `UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?`, top, name)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k == 0 {
			if _, err := c.dst.ExecContext(c.ctx, `INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)`, name, top); err != nil {
				return err
			}
		}
	}
	return nil
}

// usedIDs returns, by table, the highest id db remembers handing out where
// that may be above the table's highest id: SQLite's sqlite_sequence, or
// PostgreSQL's identity sequences.
func (db *DB) usedIDs(ctx context.Context, tx *sql.Tx) (map[string]int64, error) {
	q := db.pick(`SELECT name, seq FROM sqlite_sequence`,
		`SELECT c.table_name, coalesce(pg_sequence_last_value(pg_get_serial_sequence(quote_ident(c.table_name), c.column_name)::regclass), 0)
			FROM information_schema.columns c WHERE c.table_schema = current_schema() AND c.is_identity = 'YES'`)
	if db.engine == SQLite {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_sequence'`).Scan(&n); err != nil || n == 0 {
			return map[string]int64{}, err
		}
	}
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	used := map[string]int64{}
	for rows.Next() {
		var name string
		var id int64
		if err := rows.Scan(&name, &id); err != nil {
			return nil, err
		}
		used[name] = max(used[name], id)
	}
	return used, rows.Err()
}

// querier is what runs a query: a database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryStrings returns the one text column of a query's rows.
func queryStrings(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// quoteIdent quotes a table or column name, as both engines read it.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
