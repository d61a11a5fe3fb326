package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Source formats Herald can read.
const (
	FormatAuto        = "auto"
	FormatAtom        = "atom"
	FormatRSS         = "rss"
	FormatJSONFeed    = "jsonfeed"
	FormatGovUKSearch = "govuk-search"
)

// Formats returns the accepted values of Source.Format, in a fresh slice
// the caller may keep or change.
func Formats() []string {
	return []string{FormatAuto, FormatAtom, FormatRSS, FormatJSONFeed, FormatGovUKSearch}
}

// Source is one publisher feed Herald pulls, with its fetch state.
type Source struct {
	ID             int64     `json:"id"`
	Name           string    `json:"name"`
	URL            string    `json:"url"`
	DepartmentID   int64     `json:"-"`
	DepartmentSlug string    `json:"department"`
	Format         string    `json:"format"`
	Enabled        bool      `json:"enabled"`
	ETag           string    `json:"-"`
	LastModified   string    `json:"-"`
	LastPullAt     time.Time `json:"last_pull_at"`
	LastSuccessAt  time.Time `json:"last_success_at"`
	LastStatus     string    `json:"last_status"`
	LastError      string    `json:"last_error"`
	FailureCount   int       `json:"failure_count"`
	NextPullAt     time.Time `json:"next_pull_at"`
	PulledOnce     bool      `json:"pulled_once"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Problems lists what is wrong with the source's definition.
func (s Source) Problems() []string {
	var out []string
	if !ValidSlug(s.Name) {
		out = append(out, fmt.Sprintf("name %q must be lower-case letters, digits and single hyphens", s.Name))
	}
	if p := CheckFeedURL(s.URL); p != "" {
		out = append(out, p)
	}
	if s.DepartmentSlug == "" {
		out = append(out, "department is empty")
	}
	if formats := Formats(); !slices.Contains(formats, s.Format) {
		out = append(out, fmt.Sprintf("format %q is not one of %s", s.Format, strings.Join(formats, ", ")))
	}
	return out
}

// CheckFeedURL returns "" for an absolute http(s) URL, else why not.
func CheckFeedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return fmt.Sprintf("url %q is not a valid URL", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Sprintf("url %q must start with http:// or https://", raw)
	}
	if u.Host == "" {
		return fmt.Sprintf("url %q has no host", raw)
	}
	return ""
}

const sourceCols = `s.id, s.name, s.url, s.department_id, d.slug, s.format, s.enabled, s.etag, s.last_modified,
	s.last_pull_at, s.last_success_at, s.last_status, s.last_error, s.failure_count, s.next_pull_at, s.pulled_once,
	s.created_at, s.updated_at`

const sourceFrom = ` FROM sources s JOIN departments d ON d.id = s.department_id`

func scanSource(row interface{ Scan(...any) error }) (Source, error) {
	var s Source
	var lastPull, lastOK, next, created, updated string
	err := row.Scan(&s.ID, &s.Name, &s.URL, &s.DepartmentID, &s.DepartmentSlug, &s.Format, &s.Enabled, &s.ETag, &s.LastModified,
		&lastPull, &lastOK, &s.LastStatus, &s.LastError, &s.FailureCount, &next, &s.PulledOnce, &created, &updated)
	s.LastPullAt, s.LastSuccessAt, s.NextPullAt = parseTime(lastPull), parseTime(lastOK), parseTime(next)
	s.CreatedAt, s.UpdatedAt = parseTime(created), parseTime(updated)
	return s, err
}

func (db *DB) departmentID(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, slug string) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, `SELECT id FROM departments WHERE slug = ?`, slug).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("unknown department %q: %w", slug, ErrNotFound)
	}
	return id, err
}

// UpsertSource creates the source or updates its URL, department, format
// and enabled flag. Fetch state is kept; a changed URL forgets the
// validators of the old one.
func (db *DB) UpsertSource(ctx context.Context, s Source) (Source, error) {
	if s.Format == "" {
		s.Format = FormatAuto
	}
	if p := s.Problems(); len(p) > 0 {
		return Source{}, fmt.Errorf("store: source %q: %s", s.Name, strings.Join(p, "; "))
	}
	var out Source
	err := db.tx(ctx, func(tx *sql.Tx) error {
		dept, err := db.departmentID(ctx, tx, s.DepartmentSlug)
		if err != nil {
			return err
		}
		now := fmtTime(db.Now())
		_, err = tx.ExecContext(ctx, `
			INSERT INTO sources (name, url, department_id, format, enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET
				etag = CASE WHEN sources.url <> excluded.url THEN '' ELSE sources.etag END,
				last_modified = CASE WHEN sources.url <> excluded.url THEN '' ELSE sources.last_modified END,
				updated_at = CASE WHEN sources.url <> excluded.url OR sources.department_id <> excluded.department_id
					OR sources.format <> excluded.format OR sources.enabled <> excluded.enabled THEN excluded.updated_at ELSE sources.updated_at END,
				url = excluded.url, department_id = excluded.department_id, format = excluded.format, enabled = excluded.enabled`,
			s.Name, s.URL, dept, s.Format, s.Enabled, now, now)
		if err != nil {
			return err
		}
		out, err = scanSource(tx.QueryRowContext(ctx, `SELECT `+sourceCols+sourceFrom+` WHERE s.name = ?`, s.Name))
		return err
	})
	if err != nil {
		return Source{}, fmt.Errorf("store: upsert source %q: %w", s.Name, err)
	}
	return out, nil
}

// CreateSource adds a source, failing with ErrConflict if the name is taken.
func (db *DB) CreateSource(ctx context.Context, s Source) (Source, error) {
	if _, err := db.SourceByName(ctx, s.Name); err == nil {
		return Source{}, fmt.Errorf("store: source %q: %w", s.Name, ErrConflict)
	}
	return db.UpsertSource(ctx, s)
}

// SetSourceEnabled turns pulling of a source on or off.
func (db *DB) SetSourceEnabled(ctx context.Context, name string, enabled bool) error {
	res, err := db.db.ExecContext(ctx, `UPDATE sources SET enabled = ?, updated_at = ? WHERE name = ?`, enabled, fmtTime(db.Now()), name)
	if err != nil {
		return fmt.Errorf("store: enable source %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: source %q: %w", name, ErrNotFound)
	}
	return nil
}

// Sources lists every source by name.
func (db *DB) Sources(ctx context.Context) ([]Source, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+sourceCols+sourceFrom+` ORDER BY s.name`)
	if err != nil {
		return nil, fmt.Errorf("store: sources: %w", err)
	}
	defer rows.Close()
	var out []Source
	for rows.Next() {
		s, err := scanSource(rows)
		if err != nil {
			return nil, fmt.Errorf("store: sources: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// SourceByName returns one source or ErrNotFound.
func (db *DB) SourceByName(ctx context.Context, name string) (Source, error) {
	s, err := scanSource(db.db.QueryRowContext(ctx, `SELECT `+sourceCols+sourceFrom+` WHERE s.name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Source{}, fmt.Errorf("store: source %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Source{}, fmt.Errorf("store: source %q: %w", name, err)
	}
	return s, nil
}

// PullFailure records that pulling a source failed and when to try next.
type PullFailure struct {
	Status    string // "failed"
	Error     string
	StartedAt time.Time
	Duration  time.Duration
	NextPull  time.Time
}

// RecordPullFailure stores a failed pull: the error, a grown failure count
// and the time before which the source is not tried again.
func (db *DB) RecordPullFailure(ctx context.Context, sourceID int64, f PullFailure) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		now := fmtTime(db.Now())
		if _, err := tx.ExecContext(ctx, `UPDATE sources SET last_pull_at = ?, last_status = ?, last_error = ?,
			failure_count = failure_count + 1, next_pull_at = ? WHERE id = ?`,
			now, f.Status, f.Error, fmtTime(f.NextPull), sourceID); err != nil {
			return fmt.Errorf("store: record pull failure: %w", err)
		}
		return insertPull(ctx, tx, sourceID, f.StartedAt, f.Duration, f.Status, PullResult{}, f.Error)
	})
}

// RecordNotModified stores a pull answered 304 Not Modified.
func (db *DB) RecordNotModified(ctx context.Context, sourceID int64, startedAt time.Time, d time.Duration) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		now := fmtTime(db.Now())
		if _, err := tx.ExecContext(ctx, `UPDATE sources SET last_pull_at = ?, last_success_at = ?, last_status = 'not-modified',
			last_error = '', failure_count = 0, next_pull_at = '' WHERE id = ?`, now, now, sourceID); err != nil {
			return fmt.Errorf("store: record not modified: %w", err)
		}
		return insertPull(ctx, tx, sourceID, startedAt, d, "not-modified", PullResult{}, "")
	})
}

func insertPull(ctx context.Context, tx *sql.Tx, sourceID int64, started time.Time, d time.Duration, status string, r PullResult, errText string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO pulls (source_id, started_at, duration_ms, status, new_count, updated_count, unchanged_count, error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, sourceID, fmtTime(started), d.Milliseconds(), status, r.New, r.Updated, r.Unchanged, errText)
	if err != nil {
		return fmt.Errorf("store: record pull: %w", err)
	}
	return nil
}

// Pull is one entry of the pull history.
type Pull struct {
	ID        int64         `json:"id"`
	Source    string        `json:"source"`
	StartedAt time.Time     `json:"started_at"`
	Duration  time.Duration `json:"duration_ns"`
	Status    string        `json:"status"`
	New       int           `json:"new"`
	Updated   int           `json:"updated"`
	Unchanged int           `json:"unchanged"`
	Error     string        `json:"error,omitempty"`
}

// RecentPulls returns the newest pulls first.
func (db *DB) RecentPulls(ctx context.Context, limit int) ([]Pull, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT p.id, s.name, p.started_at, p.duration_ms, p.status, p.new_count, p.updated_count,
		p.unchanged_count, p.error FROM pulls p JOIN sources s ON s.id = p.source_id ORDER BY p.started_at DESC, p.id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: recent pulls: %w", err)
	}
	defer rows.Close()
	var out []Pull
	for rows.Next() {
		var p Pull
		var started string
		var ms int64
		if err := rows.Scan(&p.ID, &p.Source, &started, &ms, &p.Status, &p.New, &p.Updated, &p.Unchanged, &p.Error); err != nil {
			return nil, fmt.Errorf("store: recent pulls: %w", err)
		}
		p.StartedAt, p.Duration = parseTime(started), time.Duration(ms)*time.Millisecond
		out = append(out, p)
	}
	return out, rows.Err()
}
