// Package store owns Herald's domain types and every SQL statement: the
// archive of departments, sources, topics and releases, and the state the
// feeds and alerts sides keep about them. It talks to SQLite through the
// pure-Go modernc.org/sqlite driver, so Herald builds as a static binary,
// or to PostgreSQL 13 or newer through pgx (see engine.go).
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a write would break a uniqueness rule.
var ErrConflict = errors.New("already exists")

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

// DB is Herald's store. It is safe for concurrent use.
type DB struct {
	db     *sql.DB
	engine Engine
	// pool is the PostgreSQL connection pool under db; nil on SQLite.
	pool *pgxpool.Pool
	// now is the store's clock: every time the store records comes from
	// it. WithClock sets it.
	now func() time.Time
	// instance tells this handle's feed cache notifications from other
	// instances' (see feednotify.go).
	instance string
	// dedicated holds the connections outside the pool, closed with db.
	dedicated connSet
	// searches keeps the index of followed searches between pulls
	// (searchmatch.go).
	searches searchCache
	// stmts are the prepared statements of frequent reads.
	stmts stmtCache
}

// Now returns the store's clock reading.
func (db *DB) Now() time.Time { return db.now() }

// Option changes how Open sets up a store.
type Option func(*DB)

// WithClock makes now the store's clock, in place of time.Now: tests use
// it to travel in time.
func WithClock(now func() time.Time) Option {
	return func(db *DB) { db.now = now }
}

// Open opens the database and applies any migrations it has not seen
// yet, each in its own transaction. database is a SQLite file path
// (created if needed) or a postgres:// URL.
func Open(ctx context.Context, database string, opts ...Option) (*DB, error) {
	if database == "" {
		return nil, errors.New("store: database path is empty")
	}
	db := &DB{now: time.Now, engine: SQLite, instance: rand.Text()}
	for _, o := range opts {
		o(db)
	}
	var err error
	if IsPostgresURL(database) {
		db.engine = Postgres
		db.db, db.pool, err = openPostgres(ctx, database)
	} else {
		db.db, err = openSQLite(ctx, database)
	}
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.fillCategoryKeys(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func openSQLite(ctx context.Context, path string) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range []string{"foreign_keys(1)", "busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "cache_size(-32768)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	sdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	sdb.SetMaxOpenConns(8)
	sdb.SetMaxIdleConns(8)
	sdb.SetConnMaxIdleTime(0)
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return sdb, nil
}

// Close closes the database.
func (db *DB) Close() error {
	db.dedicated.closeAll()
	db.stmts.closeAll()
	err := db.db.Close()
	if db.pool != nil {
		db.pool.Close()
	}
	return err
}

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
}

func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrations table: %w", err)
	}
	dir := "migrations/" + string(db.engine) + "/"
	names, err := fs.Glob(migrations, dir+"*.sql")
	if err != nil {
		return fmt.Errorf("store: list migrations: %w", err)
	}
	sort.Strings(names)
	if err := checkNotNewer(ctx, db.db, dir, names); err != nil {
		return err
	}
	for _, name := range names {
		base := strings.TrimPrefix(name, dir)
		err := db.tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE name = ?`, base).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`, base, fmtTime(db.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", base, err)
		}
	}
	return nil
}

// checkNotNewer refuses a database that a newer Herald has migrated:
// migrations only go forward, and an older binary would misread it.
func checkNotNewer(ctx context.Context, db *sql.DB, dir string, embedded []string) error {
	known := map[string]bool{}
	for _, n := range embedded {
		known[strings.TrimPrefix(n, dir)] = true
	}
	rows, err := db.QueryContext(ctx, `SELECT name FROM schema_migrations ORDER BY name`)
	if err != nil {
		return fmt.Errorf("store: read migrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return fmt.Errorf("store: read migrations: %w", err)
		}
		if !known[name] {
			return fmt.Errorf("store: the database was upgraded by a newer Herald (it has migration %s, which this version does not know); run that version or newer", name)
		}
	}
	return rows.Err()
}

// tx runs fn in one write transaction, committing when fn returns nil.
//
// On SQLite it is BEGIN IMMEDIATE (from the DSN): one writer at a time,
// so what fn reads stays true until it commits. PostgreSQL gives the same
// guarantee with SERIALIZABLE isolation, at the price that a transaction
// which raced another may be refused at any statement or at commit; fn
// is then run again from the start, a few times, so fn must be safe to
// repeat (it is: it only talks to tx).
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	var opts *sql.TxOptions
	if db.engine == Postgres {
		opts = &sql.TxOptions{Isolation: sql.LevelSerializable}
	}
	for attempt := 1; ; attempt++ {
		err := db.tryTx(ctx, opts, fn)
		if err == nil || attempt == maxTxAttempts || !isSerialization(err) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(attempt*attempt) * time.Millisecond)
	}
}

// claimTx runs fn in one transaction that claims rows with FOR UPDATE SKIP
// LOCKED: on PostgreSQL at READ COMMITTED, where SKIP LOCKED lets several
// instances claim side by side without refusing each other; on SQLite as
// tx.
func (db *DB) claimTx(ctx context.Context, fn func(*sql.Tx) error) error {
	if db.engine != Postgres {
		return db.tx(ctx, fn)
	}
	return db.tryTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted}, fn)
}

// maxTxAttempts bounds how often a serialization failure is retried.
const maxTxAttempts = 20

func (db *DB) tryTx(ctx context.Context, opts *sql.TxOptions, fn func(*sql.Tx) error) error {
	tx, err := db.db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Setting returns a value kept in the settings table, or ErrNotFound.
func (db *DB) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := db.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("store: setting %q: %w", key, err)
	}
	return v, nil
}

// SettingOrCreate returns the value under key, storing create() first when
// there is none. Two processes racing agree on the first value written.
func (db *DB) SettingOrCreate(ctx context.Context, key string, create func() (string, error)) (value string, created bool, err error) {
	v, err := db.Setting(ctx, key)
	if err == nil {
		return v, false, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return "", false, err
	}
	nv, err := create()
	if err != nil {
		return "", false, err
	}
	res, err := db.db.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`, key, nv)
	if err != nil {
		return "", false, fmt.Errorf("store: setting %q: %w", key, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nv, true, nil
	}
	v, err = db.Setting(ctx, key)
	return v, false, err
}

// timeLayout is fixed width so stored times sort as strings.
const timeLayout = "2006-01-02T15:04:05.000000Z"

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		t, _ = time.Parse(time.RFC3339Nano, s)
	}
	return t.UTC()
}

// FormatTime renders t in the store's sortable text form, for packages that
// keep their own tables in this database.
func FormatTime(t time.Time) string { return fmtTime(t) }

// isConflict reports whether err is a uniqueness or primary key violation.
func isConflict(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return true
		}
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" // unique_violation
}

// isSerialization reports whether PostgreSQL refused a transaction that
// raced another (serialization_failure, deadlock_detected): running it
// again is the remedy.
func isSerialization(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// IsConflict reports whether err came from a uniqueness violation.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) || isConflict(err) }

// placeholders returns "?, ?, ?" for n parameters.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}
