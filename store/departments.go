package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Department is a publisher: a ministry, an agency, a university.
type Department struct {
	ID        int64     `json:"id"`
	Slug      string    `json:"slug"`
	Name      string    `json:"name"`
	URL       string    `json:"url,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

var slugRE = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// ValidSlug reports whether s is a lower-case, hyphenated slug of at most
// 100 characters, safe in URLs and file names.
func ValidSlug(s string) bool { return len(s) <= 100 && slugRE.MatchString(s) }

// Problems lists what is wrong with the department, one sentence each.
func (d Department) Problems() []string {
	var out []string
	if !ValidSlug(d.Slug) {
		out = append(out, fmt.Sprintf("slug %q must be lower-case letters, digits and single hyphens", d.Slug))
	}
	if strings.TrimSpace(d.Name) == "" {
		out = append(out, "name is empty")
	}
	return out
}

const departmentCols = `id, slug, name, url, created_at, updated_at`

func scanDepartment(row interface{ Scan(...any) error }) (Department, error) {
	var d Department
	var created, updated string
	err := row.Scan(&d.ID, &d.Slug, &d.Name, &d.URL, &created, &updated)
	d.CreatedAt, d.UpdatedAt = parseTime(created), parseTime(updated)
	return d, err
}

// UpsertDepartment creates the department or updates its name and URL.
func (db *DB) UpsertDepartment(ctx context.Context, d Department) (Department, error) {
	if p := d.Problems(); len(p) > 0 {
		return Department{}, fmt.Errorf("store: department %q: %s", d.Slug, strings.Join(p, "; "))
	}
	now := fmtTime(db.Now())
	row := db.db.QueryRowContext(ctx, `
		INSERT INTO departments (slug, name, url, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (slug) DO UPDATE SET name = excluded.name, url = excluded.url,
			updated_at = CASE WHEN departments.name <> excluded.name OR departments.url <> excluded.url THEN excluded.updated_at ELSE departments.updated_at END
		RETURNING `+departmentCols, d.Slug, strings.TrimSpace(d.Name), d.URL, now, now)
	out, err := scanDepartment(row)
	if err != nil {
		return Department{}, fmt.Errorf("store: upsert department %q: %w", d.Slug, err)
	}
	return out, nil
}

// CreateDepartment adds a department, failing with ErrConflict when the
// slug is taken.
func (db *DB) CreateDepartment(ctx context.Context, d Department) (Department, error) {
	if p := d.Problems(); len(p) > 0 {
		return Department{}, fmt.Errorf("store: department %q: %s", d.Slug, strings.Join(p, "; "))
	}
	now := fmtTime(db.Now())
	row := db.db.QueryRowContext(ctx, `
		INSERT INTO departments (slug, name, url, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
		RETURNING `+departmentCols, d.Slug, strings.TrimSpace(d.Name), d.URL, now, now)
	out, err := scanDepartment(row)
	if isConflict(err) {
		return Department{}, fmt.Errorf("store: department %q: %w", d.Slug, ErrConflict)
	}
	if err != nil {
		return Department{}, fmt.Errorf("store: create department %q: %w", d.Slug, err)
	}
	return out, nil
}

// UpdateDepartment changes the name and URL of the department with slug.
// Changing the name re-renders its feeds.
func (db *DB) UpdateDepartment(ctx context.Context, slug string, d Department) (Department, error) {
	d.Slug = slug
	if p := d.Problems(); len(p) > 0 {
		return Department{}, fmt.Errorf("store: department %q: %s", slug, strings.Join(p, "; "))
	}
	var out Department
	err := db.tx(ctx, func(tx *sql.Tx) error {
		now := fmtTime(db.Now())
		var err error
		out, err = scanDepartment(tx.QueryRowContext(ctx, `
			UPDATE departments SET name = ?, url = ?, updated_at = ? WHERE slug = ?
			RETURNING `+departmentCols, strings.TrimSpace(d.Name), d.URL, now, slug))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		return db.markDirty(ctx, tx, now, "all", "department:"+slug)
	})
	if err != nil {
		return Department{}, fmt.Errorf("store: update department %q: %w", slug, err)
	}
	return out, nil
}

// Departments lists every department by name.
func (db *DB) Departments(ctx context.Context) ([]Department, error) {
	rows, err := db.queryPrepared(ctx, `SELECT `+departmentCols+` FROM departments ORDER BY name, slug`)
	if err != nil {
		return nil, fmt.Errorf("store: departments: %w", err)
	}
	defer rows.Close()
	var out []Department
	for rows.Next() {
		d, err := scanDepartment(rows)
		if err != nil {
			return nil, fmt.Errorf("store: departments: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DepartmentBySlug returns one department or ErrNotFound.
func (db *DB) DepartmentBySlug(ctx context.Context, slug string) (Department, error) {
	d, err := scanDepartment(db.db.QueryRowContext(ctx, `SELECT `+departmentCols+` FROM departments WHERE slug = ?`, slug))
	if errors.Is(err, sql.ErrNoRows) {
		return Department{}, fmt.Errorf("store: department %q: %w", slug, ErrNotFound)
	}
	if err != nil {
		return Department{}, fmt.Errorf("store: department %q: %w", slug, err)
	}
	return d, nil
}
