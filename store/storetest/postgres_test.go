package storetest_test

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"herald/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.RunWithPostgres(m)) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryRow[T any](t *testing.T, conn *pgx.Conn, sql string) T {
	t.Helper()
	var v T
	if err := conn.QueryRow(context.Background(), sql).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

const userRelations = `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`

// Each test gets its own empty database on a supported server, and it is
// gone when the test ends.
func TestPostgresURL(t *testing.T) {
	var names []string
	t.Run("two databases", func(t *testing.T) {
		a := connect(t, storetest.PostgresURL(t))
		b := connect(t, storetest.PostgresURL(t))

		if v := queryRow[int](t, a, "SELECT current_setting('server_version_num')::int"); v < 130000 {
			t.Errorf("server_version_num = %d, want PostgreSQL 13 or newer", v)
		}
		names = []string{
			queryRow[string](t, a, "SELECT current_database()"),
			queryRow[string](t, b, "SELECT current_database()"),
		}
		if names[0] == names[1] {
			t.Fatalf("both URLs name database %q", names[0])
		}
		for i, conn := range []*pgx.Conn{a, b} {
			if n := queryRow[int](t, conn, userRelations); n != 0 {
				t.Errorf("database %s has %d relations, want none", names[i], n)
			}
		}
		if _, err := a.Exec(context.Background(), "CREATE TABLE t (id int)"); err != nil {
			t.Fatal(err)
		}
		if n := queryRow[int](t, b, userRelations); n != 0 {
			t.Errorf("a table made in %s shows in %s", names[0], names[1])
		}
	})
	if t.Failed() {
		return
	}
	if len(names) == 0 {
		t.Skip("the subtest skipped: no PostgreSQL")
	}

	admin := connect(t, os.Getenv(storetest.EnvPostgres))
	var left int
	err := admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = ANY($1)", names).Scan(&left)
	if err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d of the databases %v outlived their test", left, names)
	}
}
