package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"herald/feeds/rules"
	"herald/store"
	"herald/store/storetest"
	"herald/web/admin"
)

// adminTestDB is a real store in a temporary file, with one department,
// one source and releases from a pull.
func adminTestDB(t *testing.T) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, clock := storetest.Open(t, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	now := clock.Now()
	if _, err := db.CreateDepartment(ctx, store.Department{Slug: "home-office", Name: "Home Office"}); err != nil {
		t.Fatal(err)
	}
	src, err := db.CreateSource(ctx, store.Source{Name: "ho-news", URL: "https://news.example.org/ho.atom", DepartmentSlug: "home-office", Format: "auto", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ApplyPull(ctx, src.ID, []store.Entry{
		{GUID: "1", Link: "https://news.example.org/1", Title: "Partners pledge to tackle human trafficking", Published: now.Add(-time.Hour)},
		{GUID: "2", Link: "https://news.example.org/2", Title: "New passport fees announced", Published: now.Add(-2 * time.Hour)},
	}, store.PullOptions{Topics: &rules.Topics{}, Alert: rules.AlertNew(0), Realert: rules.Realert})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// runAdmin runs one admin command line against db.
func runAdmin(t *testing.T, db *store.DB, terminal bool, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	open := func(context.Context, string, io.Writer) (*store.DB, func(), error) { return db, func() {}, nil }
	var verbs map[string]adminCommand
	var aliases map[string]string
	switch args[0] {
	case "departments":
		verbs = departmentVerbs()
	case "sources":
		verbs, aliases = sourceVerbs(), map[string]string{"remove": "disable"}
	case "topics":
		verbs, aliases = topicVerbs(), map[string]string{"remove": "retire"}
	case "subscribers":
		verbs, aliases = subscriberVerbs(terminal), map[string]string{"remove": "erase", "list": "export"}
	}
	err := runNoun(context.Background(), args[0], verbs, aliases, args[1:], &stdout, &stderr, open)
	return stdout.String(), stderr.String(), err
}

func TestTopicsCommand(t *testing.T) {
	db := adminTestDB(t)
	ctx := context.Background()

	out, _, err := runAdmin(t, db, false, "topics", "preview", "--keyword", "trafficking")
	if err != nil || !strings.Contains(out, "1 releases in the last 30 days match") || !strings.Contains(out, "Partners pledge") {
		t.Fatalf("preview = %q, %v", out, err)
	}
	out, _, err = runAdmin(t, db, false, "topics", "add", "--slug", "trafficking", "--title", "Human trafficking",
		"--department", "home-office", "--keyword", "trafficking", "--keyword", "modern slavery")
	if err != nil || !strings.Contains(out, "1 releases in the archive match") {
		t.Fatalf("add = %q, %v", out, err)
	}
	topic, err := db.TopicBySlug(ctx, "trafficking")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"trafficking", "modern slavery"}; !slices.Equal(topic.Rule.Keywords, want) {
		t.Errorf("keywords = %q, want %q", topic.Rule.Keywords, want)
	}

	// An update changes only what it names; rule flags replace the rule.
	if _, _, err := runAdmin(t, db, false, "topics", "update", "trafficking", "--title", "Trafficking and slavery"); err != nil {
		t.Fatal(err)
	}
	topic, _ = db.TopicBySlug(ctx, "trafficking")
	if topic.Title != "Trafficking and slavery" || len(topic.Rule.Keywords) != 2 {
		t.Errorf("after title update: %+v", topic)
	}
	if _, _, err := runAdmin(t, db, false, "topics", "update", "trafficking", "--keyword", "passport"); err != nil {
		t.Fatal(err)
	}
	topic, _ = db.TopicBySlug(ctx, "trafficking")
	if !slices.Equal(topic.Rule.Keywords, []string{"passport"}) || len(topic.Rule.Departments) != 0 {
		t.Errorf("after rule update: %+v", topic.Rule)
	}

	out, _, err = runAdmin(t, db, false, "topics", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var listed []store.Topic
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 1 || listed[0].Slug != "trafficking" {
		t.Fatalf("list --json = %s (%v)", out, err)
	}

	if _, _, err := runAdmin(t, db, false, "topics", "remove", "trafficking"); err != nil {
		t.Fatal(err)
	}
	if topic, _ = db.TopicBySlug(ctx, "trafficking"); !topic.Retired() {
		t.Error("remove did not retire the topic")
	}
	out, _, _ = runAdmin(t, db, false, "topics", "list")
	if strings.Contains(out, "trafficking") {
		t.Errorf("list shows a retired topic without --all:\n%s", out)
	}
	out, _, _ = runAdmin(t, db, false, "topics", "list", "--all")
	if !strings.Contains(out, "retired") {
		t.Errorf("list --all does not show the retired topic:\n%s", out)
	}
}

func TestAdminCommandsRefuseBadInput(t *testing.T) {
	db := adminTestDB(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"topics"}, "which topics command"},
		{[]string{"topics", "frobnicate"}, "unknown topics command"},
		{[]string{"topics", "add", "--slug", "Bad Slug", "--title", "x", "--keyword", "k"}, "lower-case"},
		{[]string{"topics", "add", "--slug", "x", "--title", "x"}, "must give at least one department, category or keyword"},
		{[]string{"topics", "add", "--slug", "x", "--title", "x", "--department", "nowhere"}, `--department names no department: "nowhere"`},
		{[]string{"topics", "update", "missing", "--title", "x"}, `no topic with slug "missing"`},
		{[]string{"topics", "retire"}, "give exactly one topic slug"},
		{[]string{"topics", "preview"}, "the rule (--department, --category, --keyword) must give at least one"},
		{[]string{"departments", "add", "--slug", "home-office", "--name", "Again"}, "already taken"},
		{[]string{"departments", "add", "--slug", "x", "--name", "X", "--url", "ftp://x"}, "must be an absolute http:// or https:// URL"},
		{[]string{"sources", "add", "--name", "n", "--url", "https://e.org/f", "--department", "nowhere"}, "no department"},
		{[]string{"sources", "add", "--name", "ho-news", "--url", "https://e.org/f", "--department", "home-office"}, "already taken"},
		{[]string{"sources", "disable", "missing"}, `no source named "missing"`},
		{[]string{"subscribers", "erase", "not an address"}, `email address "not an address" must not contain spaces`},
		{[]string{"subscribers", "erase", "a@example.org\r\nBcc: b@example.org"}, "must not contain line breaks"},
		{[]string{"subscribers", "add", "--email", "a@example.org", "--topic", "nowhere"}, `names no active topic: "nowhere"`},
		{[]string{"subscribers", "add", "--email", "a@example.org\r\nBcc: b@example.org", "--department", "home-office"}, "must not contain line breaks"},
		{[]string{"subscribers", "add", "--email", "a@example.org", "--department", "home-office", "--frequency", "hourly"}, `--frequency "hourly" must be one of`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, _, err := runAdmin(t, db, false, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestDepartmentsAndSourcesCommands(t *testing.T) {
	db := adminTestDB(t)
	ctx := context.Background()
	steps := [][]string{
		{"departments", "add", "--slug", "treasury", "--name", "Treasury", "--url", "https://treasury.example.org"},
		{"departments", "update", "treasury", "--name", "HM Treasury"},
		{"sources", "add", "--name", "treasury-news", "--url", "https://treasury.example.org/news.rss", "--department", "treasury", "--format", "rss"},
		{"sources", "update", "treasury-news", "--url", "https://treasury.example.org/news2.rss"},
		{"sources", "remove", "treasury-news"},
	}
	for _, args := range steps {
		if _, _, err := runAdmin(t, db, false, args...); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	d, _ := db.DepartmentBySlug(ctx, "treasury")
	if d.Name != "HM Treasury" || d.URL != "https://treasury.example.org" {
		t.Errorf("department = %+v", d)
	}
	s, _ := db.SourceByName(ctx, "treasury-news")
	if s.URL != "https://treasury.example.org/news2.rss" || s.Format != "rss" || s.Enabled {
		t.Errorf("source = %+v", s)
	}
	out, _, err := runAdmin(t, db, false, "sources", "list")
	if err != nil || !strings.Contains(out, "treasury-news") || !strings.Contains(out, "false") {
		t.Errorf("sources list = %q, %v", out, err)
	}
	if _, _, err := runAdmin(t, db, false, "sources", "enable", "treasury-news"); err != nil {
		t.Fatal(err)
	}
	if s, _ = db.SourceByName(ctx, "treasury-news"); !s.Enabled {
		t.Error("enable did not enable")
	}
}

func TestSubscribersImportExport(t *testing.T) {
	db := adminTestDB(t)
	ctx := context.Background()
	if _, err := db.CreateTopic(ctx, store.Topic{Slug: "passports", Title: "Passports", Rule: store.Rule{Keywords: []string{"passport"}}}, &rules.Topics{}); err != nil {
		t.Fatal(err)
	}
	csvPath := filepath.Join("testdata", "subscribers.csv")
	out, errOut, err := runAdmin(t, db, false, "subscribers", "import", csvPath)
	if !errors.Is(err, errFailed) {
		t.Fatalf("import of a file with bad rows: err = %v, want errFailed", err)
	}
	if want := "imported 4 subscriptions (3 new subscribers); 5 rows skipped"; !strings.Contains(out, want) {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	for _, want := range []string{
		`line 6: email address "not-an-address" must contain an @`,
		`line 7: department "home-office" must be empty when a topic is given`,
		`line 8: topic names no active topic: "unknown-topic"`,
		`line 9: frequency "hourly" must be one of immediately, daily, weekly`,
		`line 10: email address "eve@example.org\nBcc: x@example.org" must not contain line breaks`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "\r[") {
		t.Error("a progress bar was drawn although stderr is not a terminal")
	}

	out, _, err = runAdmin(t, db, false, "subscribers", "list")
	if err != nil {
		t.Fatal(err)
	}
	want := "email,topic,department,frequency,search\n" +
		"alice@example.org,passports,,daily,\n" +
		"alice@example.org,,home-office,weekly,\n" +
		"bob@example.org,passports,,immediately,\n" +
		"carol@example.org,,home-office,immediately,\n"
	if out != want {
		t.Errorf("export =\n%s\nwant\n%s", out, want)
	}

	// On a terminal the bar is drawn and ends at 100%.
	exportPath := filepath.Join(t.TempDir(), "out.csv")
	out, errOut, err = runAdmin(t, db, true, "subscribers", "export", "--out", exportPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "exporting [##############################] 100%") {
		t.Errorf("terminal progress = %q", errOut)
	}
	written, _ := os.ReadFile(exportPath)
	if string(written) != want || !strings.Contains(out, "exported 4 subscriptions") {
		t.Errorf("--out wrote %q, said %q", written, out)
	}

	out, _, err = runAdmin(t, db, false, "subscribers", "add", "--email", "dan@example.org", "--department", "home-office", "--frequency", "weekly")
	if err != nil || !strings.Contains(out, "added a new subscriber") {
		t.Errorf("add = %q, %v", out, err)
	}
	if info, err := admin.New(db).LookupSubscriber(ctx, "dan@example.org"); err != nil || info.Subscriptions[0].Frequency != "weekly" || info.Status != "confirmed" {
		t.Errorf("after add: %+v, %v", info, err)
	}

	out, _, err = runAdmin(t, db, false, "subscribers", "lookup", "bob@example.org")
	if err != nil || !strings.Contains(out, `"topic": "passports"`) {
		t.Errorf("lookup = %s, %v", out, err)
	}
	if err := db.Suppress(ctx, "bob@example.org", "550 no such user"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runAdmin(t, db, false, "subscribers", "unsuppress", "bob@example.org"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runAdmin(t, db, false, "subscribers", "unsuppress", "bob@example.org"); err == nil {
		t.Error("lifting a suppression twice succeeded")
	}
	out, _, err = runAdmin(t, db, false, "subscribers", "export", "bob@example.org")
	if err != nil || !strings.Contains(out, `"address": "bob@example.org"`) || !strings.Contains(out, `"subscriptions"`) {
		t.Errorf("export of one address = %s, %v", out, err)
	}
	if _, _, err := runAdmin(t, db, false, "subscribers", "remove", "bob@example.org"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runAdmin(t, db, false, "subscribers", "lookup", "bob@example.org"); err == nil || !strings.Contains(err.Error(), "no subscriber") {
		t.Errorf("lookup after erase: %v", err)
	}
}
