package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"herald/feeds/rules"
	"herald/store"
	"herald/store/storetest"
)

// copyDataSource writes a SQLite database (copy-data moves those) with a
// release, a subscriber and the token key, and returns its path.
func copyDataSource(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "herald.db")
	db := storetest.OpenFile(t, path, storetest.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)))
	d, err := db.CreateDepartment(ctx, store.Department{Slug: "home-office", Name: "Home Office"})
	if err != nil {
		t.Fatal(err)
	}
	src, err := db.CreateSource(ctx, store.Source{Name: "ho-news", URL: "https://news.example.org/ho.atom", DepartmentSlug: "home-office", Format: "auto", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ApplyPull(ctx, src.ID, []store.Entry{{GUID: "1", Link: "https://news.example.org/1", Title: "Partners pledge to tackle human trafficking",
		Body: "<p>Talks on <em>estuary</em> patrols.</p>", PlainBody: "Talks on estuary patrols."}},
		store.PullOptions{Topics: &rules.Topics{}, Alert: rules.AlertNew(0), Realert: rules.Realert})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Subscribe(t, db, "alice@example.org", store.Target{DepartmentID: d.ID}, store.FrequencyDaily)
	if _, _, err := db.SettingOrCreate(ctx, "alerts.token_key", func() (string, error) { return "generated-key-0123456789", nil }); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCopyData(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target func(t *testing.T) string
	}{
		{"to SQLite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "copy.db") }},
		{"to PostgreSQL", func(t *testing.T) string { return storetest.PostgresURL(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := copyDataSource(t)
			to := tc.target(t)
			code, stdout, stderr := runCommand("copy-data", "--from", from, "--to", to)
			if code != 0 {
				t.Fatalf("copy-data: exit %d: %s", code, stderr)
			}
			for _, want := range []string{
				"copying " + from + " (sqlite) into " + store.Redact(to),
				"\n  departments                       1 rows\n",
				"\n  subscribers                       1 rows\n",
				"\n  subscriptions                     1 rows\n",
				"\n  releases                          1 rows\n",
				"\n  search index                      1 releases indexed\n",
				"row counts match on both sides\n",
			} {
				if !strings.Contains(stdout, want) {
					t.Errorf("output lacks %q:\n%s", want, stdout)
				}
			}
			if i, j := strings.Index(stdout, "  departments "), strings.Index(stdout, "  releases "); i > j {
				t.Errorf("releases copied before the departments they refer to:\n%s", stdout)
			}

			// The copy is a working Herald database: the same token key,
			// the release found by the words of its body.
			db, err := store.Open(context.Background(), to)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if key, err := db.Setting(context.Background(), "alerts.token_key"); err != nil || key != "generated-key-0123456789" {
				t.Errorf("token key in the copy: %q, %v", key, err)
			}
			if res, err := db.SearchReleases(context.Background(), store.SearchQuery{Text: "estuary"}); err != nil || res.Total != 1 {
				t.Errorf("search in the copy: %+v, %v", res, err)
			}

			// Again: the target is no longer empty.
			code, stdout, stderr = runCommand("copy-data", "--from", from, "--to", to)
			if code != 1 || !strings.Contains(stderr, store.Redact(to)+" already holds data; copy-data writes only into a new, empty database") ||
				!strings.Contains(stderr, "subscribers") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("second copy-data: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
		})
	}
}

func TestCopyDataRefusesBadInput(t *testing.T) {
	from := copyDataSource(t)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no target", []string{"--from", from}, 2, "--to is required"},
		{"a URL that does not parse", []string{"--from", from, "--to", "postgres://herald:s3cret@db:fivefour/herald"}, 2,
			"herald copy-data: usage: --to: cannot parse `postgres://herald:xxxxx@db:fivefour/herald`: invalid port\n"},
		{"another engine", []string{"--from", from, "--to", "mysql://herald:s3cret@db/herald"}, 2,
			"--to: mysql://herald:xxxxx@db/herald is neither a SQLite file path nor a postgres:// URL"},
		{"an unreachable server", []string{"--from", from, "--to", "postgres://herald:s3cret@127.0.0.1:1/herald?connect_timeout=5"}, 1,
			"herald copy-data: cannot connect to postgres://herald:xxxxx@127.0.0.1:1/herald?connect_timeout=5: "},
		{"a source that does not exist", []string{"--from", filepath.Join(t.TempDir(), "missing.db"), "--to", filepath.Join(t.TempDir(), "x.db")}, 1,
			"no such file"},
		{"the same database", []string{"--from", from, "--to", from}, 2, "--from and --to name the same database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCommand(append([]string{"copy-data"}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit %d and %q on one line", code, stderr, tt.code, tt.want)
			}
			if strings.Contains(stdout+stderr, "s3cret") {
				t.Errorf("the password is shown: %q %q", stdout, stderr)
			}
		})
	}
}
