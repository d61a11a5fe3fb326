package storetest

import (
	"errors"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"herald/store"
)

// A package's tests run on SQLite; RerunOnPostgres runs them all again on
// PostgreSQL in a child process with HERALD_TEST_ENGINE=postgres, where
// Database hands out PostgreSQL databases instead of files. So every test
// that gets its database from Database runs on both engines, without a
// loop in each test.

// engineVar selects the engine of the databases Database returns.
const engineVar = "HERALD_TEST_ENGINE"

// Engine returns the engine this test process runs its stores on.
func Engine() store.Engine {
	if os.Getenv(engineVar) == string(store.Postgres) {
		return store.Postgres
	}
	return store.SQLite
}

// Database returns a fresh, empty database for t on the process's engine:
// a file in t.TempDir(), or a new database on the test PostgreSQL server
// (dropped when t ends). Open it, and open it again, with store.Open.
func Database(t testing.TB) string {
	t.Helper()
	if Engine() == store.Postgres {
		return PostgresURL(t)
	}
	return filepath.Join(t.TempDir(), "herald.db")
}

// Clone returns a new database holding what database (from Database)
// holds, for a test that starts over from one seeded state more than once:
// a copy of the SQLite file, or a PostgreSQL database made from it as a
// template. Nothing may have database open while it is cloned.
func Clone(t testing.TB, database string) string {
	t.Helper()
	if store.IsPostgresURL(database) {
		u, err := url.Parse(database)
		if err != nil {
			t.Fatal(err)
		}
		return createDatabase(t, os.Getenv(EnvPostgres), strings.TrimPrefix(u.Path, "/"))
	}
	clone := filepath.Join(t.TempDir(), "herald.db")
	// A store closed cleanly leaves no -wal file; one that was not may.
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(database + suffix)
		if errors.Is(err, fs.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(clone+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return clone
}

// SQLiteOnly skips t on PostgreSQL, saying why: for the few tests of
// what only the SQLite engine has (its files, its upgrade path).
func SQLiteOnly(t testing.TB, why string) {
	t.Helper()
	if Engine() != store.SQLite {
		t.Skip("SQLite only: " + why)
	}
}

// RerunOnPostgres runs the calling package's tests again, on PostgreSQL,
// in a child test process, and fails t if any fails there. Call it from
// one test per package (TestOnPostgres) whose TestMain uses
// RunWithPostgres; it skips, saying why, when no PostgreSQL server is
// available (and fails instead when HERALD_REQUIRE_POSTGRES=1), and does
// nothing in the child itself.
func RerunOnPostgres(t *testing.T) {
	t.Helper()
	if Engine() == store.Postgres {
		t.Skip("already running on PostgreSQL")
	}
	if os.Getenv(EnvPostgres) == "" {
		PostgresURL(t) // skips or fails, with the reason
		return
	}
	args := []string{"-test.count=1", "-test.skip=^TestOnPostgres$"}
	for _, a := range os.Args[1:] {
		// Keep the parent's -run, -v, -short, -timeout and the like.
		if !strings.HasPrefix(a, "-test.count") && !strings.HasPrefix(a, "-test.skip") &&
			!strings.HasPrefix(a, "-test.paniconexit0") && !strings.HasPrefix(a, "-test.testlogfile") {
			args = append(args, a)
		}
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), engineVar+"="+string(store.Postgres))
	out, err := cmd.CombinedOutput()
	if testing.Verbose() || err != nil {
		t.Logf("the package's tests on PostgreSQL:\n%s", out)
	}
	if err != nil {
		t.Fatalf("the package's tests fail on PostgreSQL: %v", err)
	}
}
