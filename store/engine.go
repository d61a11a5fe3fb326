package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// Herald keeps its data in SQLite (a file path) or PostgreSQL (a
// postgres:// URL) through one store API. The statements are written once,
// in SQL both engines accept, with ? placeholders; where the engines
// differ (full-text search, row locking, upserts of the migrations), the
// code holds both statements side by side and picks by db.engine.

// Engine names a database engine.
type Engine string

const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// defaultPoolSize is the number of connections an instance keeps to
// PostgreSQL when the URL does not say (pool_max_conns), besides the one
// that holds leadership and the one that listens for feed changes.
const defaultPoolSize = 16

// minPostgres is the oldest PostgreSQL Herald runs on (server_version_num).
const minPostgres = 130000

// IsPostgresURL reports whether database names a PostgreSQL server rather
// than a SQLite file.
func IsPostgresURL(database string) bool {
	return strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
}

// Redact returns database fit for logs and errors: a URL's password is
// replaced by xxxxx; a path is returned as it is.
func Redact(database string) string {
	if !IsPostgresURL(database) {
		return database
	}
	u, err := url.Parse(database)
	if err != nil {
		return "the configured postgres URL"
	}
	return u.Redacted()
}

// Engine returns the engine the store runs on.
func (db *DB) Engine() Engine { return db.engine }

// pick returns the statement for the store's engine.
func (db *DB) pick(sqlite, postgres string) string {
	if db.engine == Postgres {
		return postgres
	}
	return sqlite
}

// indexedBy is SQLite's INDEXED BY clause for a statement that must use
// the named index (SQLite's planner, without statistics, may pick a worse
// one); PostgreSQL plans from its statistics and has no such clause.
func (db *DB) indexedBy(index string) string {
	if db.engine == Postgres {
		return ""
	}
	return " INDEXED BY " + index
}

// skipLocked ends the row selection of a claim: on PostgreSQL, where
// several instances claim at once, each locks the rows it takes and skips
// those another holds; SQLite has one writer at a time.
func (db *DB) skipLocked() string {
	if db.engine == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// OpenReader opens a plain database/sql handle on database (a SQLite path,
// opened read-only, or a postgres:// URL) for tools that audit what Herald
// stored, such as the reliability suite: statements use ? placeholders on
// both engines. It runs no migrations; Herald's own code uses Open.
func OpenReader(ctx context.Context, database string) (*sql.DB, error) {
	if IsPostgresURL(database) {
		sdb, _, err := openPostgres(ctx, database)
		return sdb, err
	}
	sdb, err := sql.Open("sqlite", "file:"+database+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", database, err)
	}
	return sdb, nil
}

// orderWithDigests takes, on PostgreSQL, a lock on releases in mode
// (before the transaction's first query, so that its snapshot comes
// after): pulls take ROW EXCLUSIVE, which they share, and a digest run
// SHARE, which waits for the pulls in progress and holds off new ones
// until it commits. SQLite's single writer orders them already.
func (db *DB) orderWithDigests(ctx context.Context, tx *sql.Tx, mode string) error {
	if db.engine != Postgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, `LOCK TABLE releases IN `+mode+` MODE`)
	return err
}

// openPostgres connects to the server at rawURL through a pgx pool and
// checks its version. The pool is served to database/sql through a
// connector that rewrites ? placeholders to $n, so every statement of the
// store runs unchanged on both engines.
func openPostgres(ctx context.Context, rawURL string) (*sql.DB, *pgxpool.Pool, error) {
	where := Redact(rawURL)
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot connect to %s: %s", where, pgErrorLine(err))
	}
	// pool_max_conns in the URL sizes the pool; otherwise 16 connections,
	// enough for the HTTP server, the mail workers and a pull at once.
	if !strings.Contains(rawURL, "pool_max_conns=") {
		cfg.MaxConns = defaultPoolSize
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot connect to %s: %s", where, pgErrorLine(err))
	}
	var version int
	if err := pool.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("cannot connect to %s: %s", where, pgErrorLine(err))
	}
	if version < minPostgres {
		pool.Close()
		return nil, nil, fmt.Errorf("%s runs PostgreSQL %d.%d; Herald needs PostgreSQL 13 or newer", where, version/10000, version%10000)
	}
	sdb := sql.OpenDB(&rebinder{Connector: stdlib.GetPoolConnector(pool)})
	sdb.SetMaxOpenConns(int(cfg.MaxConns))
	sdb.SetMaxIdleConns(int(cfg.MaxConns))
	return sdb, pool, nil
}

// pgErrorLine is err as one line without the URL (which may carry a
// password): the server's message, or the network's reason for the last
// address tried (pgx tries each address, with and without TLS, and quotes
// them all).
func pgErrorLine(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Message
	}
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		err = dns
	case errors.As(err, &op):
		err = op
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// rebinder hands database/sql connections whose statements are rewritten
// from ? to $n placeholders and whose bool arguments become 0 or 1, the
// way SQLite stores them (see flags).
type rebinder struct {
	driver.Connector
	cache sync.Map // string -> string
}

func (r *rebinder) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := r.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &rebindConn{Conn: c.(*stdlib.Conn), r: r}, nil
}

func (r *rebinder) rebind(q string) string {
	if v, ok := r.cache.Load(q); ok {
		return v.(string)
	}
	out := rebind(q)
	r.cache.Store(q, out)
	return out
}

type rebindConn struct {
	*stdlib.Conn
	r *rebinder
}

func (c *rebindConn) Prepare(q string) (driver.Stmt, error) {
	return c.Conn.Prepare(c.r.rebind(q))
}

func (c *rebindConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	s, err := c.Conn.PrepareContext(ctx, c.r.rebind(q))
	if err != nil {
		return nil, err
	}
	return &rebindStmt{Stmt: s.(*stdlib.Stmt)}, nil
}

func (c *rebindConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, c.r.rebind(q), flags(args))
}

func (c *rebindConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, c.r.rebind(q), flags(args))
}

type rebindStmt struct{ *stdlib.Stmt }

func (s *rebindStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.Stmt.ExecContext(ctx, flags(args))
}

func (s *rebindStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.Stmt.QueryContext(ctx, flags(args))
}

// flags turns bool arguments into the 0 and 1 the schema stores, and
// text into what PostgreSQL's TEXT can hold: NUL characters are dropped
// and invalid UTF-8 becomes U+FFFD, where SQLite would keep them as they
// are. Neither belongs in Herald's data (the pull side and the admin
// checks keep them out, and the feed renderer drops both), so a store
// handed them regardless keeps the text rather than failing the write.
func flags(args []driver.NamedValue) []driver.NamedValue {
	for i, a := range args {
		switch v := a.Value.(type) {
		case bool:
			if v {
				args[i].Value = int64(1)
			} else {
				args[i].Value = int64(0)
			}
		case string:
			args[i].Value = postgresText(v)
		}
	}
	return args
}

// postgresText is s as PostgreSQL's TEXT holds it (see flags).
func postgresText(s string) string {
	if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
		return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	}
	return s
}

// rebind rewrites the ? placeholders of q as $1, $2... outside quoted
// strings, quoted names and comments.
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(q) && q[j] != c {
				j++
			}
			b.WriteString(q[i:min(j+1, len(q))])
			i = j
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			b.WriteString(q[i : i+j])
			i += j - 1
		case c == '?':
			n++
			fmt.Fprintf(&b, "$%d", n)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
