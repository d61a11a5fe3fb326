package storetest_test

import (
	"context"
	"path/filepath"
	"testing"

	"herald/store"
	"herald/store/storetest"
)

// A clone holds what its database held, and goes its own way after.
func TestClone(t *testing.T) {
	for engine, database := range map[store.Engine]func(t *testing.T) string{
		store.SQLite:   func(t *testing.T) string { return filepath.Join(t.TempDir(), "herald.db") },
		store.Postgres: func(t *testing.T) string { return storetest.PostgresURL(t) },
	} {
		t.Run(string(engine), func(t *testing.T) {
			ctx := context.Background()
			open := func(database string) *store.DB {
				db, err := store.Open(ctx, database)
				if err != nil {
					t.Fatal(err)
				}
				return db
			}
			slugs := func(database string) []string {
				db := open(database)
				defer db.Close()
				ds, err := db.Departments(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, d := range ds {
					out = append(out, d.Slug)
				}
				return out
			}
			seed := database(t)
			db := open(seed)
			storetest.Department(t, db, "seeded", "Seeded")
			db.Close()

			clone := storetest.Clone(t, seed)
			db = open(clone)
			storetest.Department(t, db, "cloned", "Cloned")
			db.Close()
			if got := slugs(clone); len(got) != 2 {
				t.Errorf("clone holds %q, want the seeded department and its own", got)
			}
			if got := slugs(seed); len(got) != 1 || got[0] != "seeded" {
				t.Errorf("seed holds %q after its clone changed, want only \"seeded\"", got)
			}
		})
	}
}
