package store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Several Herald instances may share one PostgreSQL; one of them, the
// leader, runs the scheduled work. Leadership is a session-level advisory
// lock held on a connection of its own, outside the pool: the server
// releases it the moment that connection ends, so a leader that dies, or
// loses its connection, stops being the leader without saying so, and
// another instance's next attempt takes the lock. A SQLite database has one
// process, which always leads.

// leaderLockKey is the advisory lock Herald's leader holds ("HERALD" and
// 1). Advisory locks belong to one database, so Herald installations
// sharing a server do not contend.
const leaderLockKey int64 = 0x4845_5241_4C44_0001

// Leadership is one instance's claim to run the scheduled work. Its methods
// are safe for concurrent use.
type Leadership struct {
	db   *DB
	mu   sync.Mutex
	conn *pgx.Conn // PostgreSQL only
	held bool
}

// Leadership returns a claim on leadership, not yet held.
func (db *DB) Leadership() *Leadership { return &Leadership{db: db} }

// Acquire takes leadership if no other instance holds it, and reports
// whether this one now does. It connects first when it has no connection
// (or lost it); an error means the database could not be asked, and
// leadership is then not held.
func (l *Leadership) Acquire(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.db.engine != Postgres {
		l.held = true
		return true, nil
	}
	if l.held {
		return l.check(ctx)
	}
	if l.conn == nil || l.conn.IsClosed() {
		if !l.db.dedicated.add(l, l.stop) {
			return false, errors.New("store: leadership: the store is closed")
		}
		conn, err := l.db.dedicatedConn(ctx)
		if err != nil {
			return false, fmt.Errorf("store: leadership: %w", err)
		}
		l.conn = conn
	}
	var ok bool
	if err := l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, leaderLockKey).Scan(&ok); err != nil {
		l.drop()
		return false, fmt.Errorf("store: leadership: %w", err)
	}
	l.held = ok
	return ok, nil
}

// Held reports whether this instance still leads: on PostgreSQL, whether
// its connection is alive and holds the lock. A failed check drops the
// connection and leadership with it (the server releases the lock when it
// notices the connection is gone); the caller must stop the scheduled work
// at once.
func (l *Leadership) Held(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.db.engine != Postgres || !l.held {
		return l.held, nil
	}
	return l.check(ctx)
}

func (l *Leadership) check(ctx context.Context) (bool, error) {
	var ok bool
	err := l.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND pid = pg_backend_pid() AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND objsubid = 1 AND (classid::bigint << 32 | objid::bigint) = $1)`, leaderLockKey).Scan(&ok)
	if err != nil {
		l.drop()
		return false, fmt.Errorf("store: leadership: %w", err)
	}
	if !ok {
		l.held = false
	}
	return ok, nil
}

// drop closes the connection after an error; whatever it held is gone.
func (l *Leadership) drop() {
	l.held = false
	if l.conn != nil {
		closeConn(l.conn)
		l.conn = nil
	}
}

// stop ends the connection when the store closes.
func (l *Leadership) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drop()
}

// Release gives leadership up, if held, and closes the connection.
func (l *Leadership) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.db.engine != Postgres {
		l.held = false
		return nil
	}
	l.db.dedicated.remove(l)
	if l.conn == nil {
		return nil
	}
	var err error
	if l.held {
		_, err = l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, leaderLockKey)
	}
	l.held = false
	err = errors.Join(err, l.conn.Close(ctx))
	l.conn = nil
	if err != nil {
		return fmt.Errorf("store: release leadership: %w", err)
	}
	return nil
}
