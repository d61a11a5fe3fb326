package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// CheckDatabase reports, without connecting, what is wrong with database
// as Open would read it: nil for a SQLite file path or a postgres:// URL
// that parses. The error names the database as Redact shows it.
func CheckDatabase(database string) error {
	switch {
	case strings.TrimSpace(database) == "":
		return errors.New("is empty")
	case IsPostgresURL(database):
		// pgx's reason names the URL, its password masked.
		if _, err := pgxpool.ParseConfig(database); err != nil {
			return errors.New(pgErrorLine(err))
		}
	case strings.Contains(database, "://"):
		shown := "the database URL"
		if u, err := url.Parse(database); err == nil {
			shown = u.Redacted()
		}
		return fmt.Errorf("%s is neither a SQLite file path nor a postgres:// URL", shown)
	}
	return nil
}

// Reach connects to a PostgreSQL database and checks its version, as Open
// does, without migrating or writing anything: for checking a config. A
// SQLite path is not touched (Open creates the file).
func Reach(ctx context.Context, database string) error {
	if !IsPostgresURL(database) {
		return nil
	}
	sdb, pool, err := openPostgres(ctx, database)
	if err != nil {
		return err
	}
	sdb.Close()
	pool.Close()
	return nil
}
