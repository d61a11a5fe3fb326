package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// AdminSession is a signed-in admin's console session. It lives in the
// database so that every Herald instance on it knows the session, and
// signing out on one ends it on all.
type AdminSession struct {
	// IDHash is the hash of the random id the session's cookie holds;
	// the id itself is never stored.
	IDHash string
	// CSRF is the token the session's forms must carry.
	CSRF string
	// Flash is the message for the session's next page, "" for none.
	Flash   string
	Created time.Time
	Expires time.Time
}

// CreateAdminSession stores a new session.
func (db *DB) CreateAdminSession(ctx context.Context, s AdminSession) error {
	_, err := db.db.ExecContext(ctx, `INSERT INTO admin_sessions (id_hash, csrf, flash, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?)`, s.IDHash, s.CSRF, s.Flash, fmtTime(s.Created), fmtTime(s.Expires))
	if err != nil {
		return fmt.Errorf("store: create admin session: %w", err)
	}
	return nil
}

// AdminSession returns the session whose id hashes to idHash, expired or
// not, or ErrNotFound.
func (db *DB) AdminSession(ctx context.Context, idHash string) (AdminSession, error) {
	s := AdminSession{IDHash: idHash}
	var created, expires string
	err := db.db.QueryRowContext(ctx, `SELECT csrf, flash, created_at, expires_at FROM admin_sessions WHERE id_hash = ?`,
		idHash).Scan(&s.CSRF, &s.Flash, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return AdminSession{}, ErrNotFound
	}
	if err != nil {
		return AdminSession{}, fmt.Errorf("store: admin session: %w", err)
	}
	s.Created, s.Expires = parseTime(created), parseTime(expires)
	return s, nil
}

// DeleteAdminSession ends the session whose id hashes to idHash; ending
// one that is already gone is not an error.
func (db *DB) DeleteAdminSession(ctx context.Context, idHash string) error {
	if _, err := db.db.ExecContext(ctx, `DELETE FROM admin_sessions WHERE id_hash = ?`, idHash); err != nil {
		return fmt.Errorf("store: delete admin session: %w", err)
	}
	return nil
}

// DeleteExpiredAdminSessions deletes the sessions that expired before now
// and returns how many there were.
func (db *DB) DeleteExpiredAdminSessions(ctx context.Context, now time.Time) (int, error) {
	res, err := db.db.ExecContext(ctx, `DELETE FROM admin_sessions WHERE expires_at < ?`, fmtTime(now))
	if err != nil {
		return 0, fmt.Errorf("store: delete expired admin sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// SetAdminSessionFlash keeps msg for the session's next page.
func (db *DB) SetAdminSessionFlash(ctx context.Context, idHash, msg string) error {
	if _, err := db.db.ExecContext(ctx, `UPDATE admin_sessions SET flash = ? WHERE id_hash = ?`, msg, idHash); err != nil {
		return fmt.Errorf("store: set admin session flash: %w", err)
	}
	return nil
}

// TakeAdminSessionFlash clears the session's message if it is still msg
// and reports whether it was: of two pages asking at once, one gets it.
func (db *DB) TakeAdminSessionFlash(ctx context.Context, idHash, msg string) (bool, error) {
	res, err := db.db.ExecContext(ctx, `UPDATE admin_sessions SET flash = '' WHERE id_hash = ? AND flash = ? AND flash <> ''`, idHash, msg)
	if err != nil {
		return false, fmt.Errorf("store: take admin session flash: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
