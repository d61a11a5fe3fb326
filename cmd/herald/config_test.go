package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := loadConfig("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sources) != 1 || cfg.Topics[0].Match.Keywords[1] != "modern slavery" {
		t.Fatalf("example not read as written: %+v", cfg.Topics)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key names key and line", "database: x.db\nbase_url: http://a\nlisten_on: x\n", []string{`line 3: unknown key "listen_on"`}},
		{"unknown nested key", "schedule:\n  pul: '* * * * *'\n", []string{`line 2: unknown key "pul"`}},
		{"every problem at once", `
base_url: ftp://x
timezone: Mars/Olympus
schedule: {pull: "every five minutes"}
departments: [{slug: Home Office, name: ""}]
sources: [{name: a, url: "file:///etc/passwd", department: nowhere}]
topics: [{slug: t, title: T, match: {departments: [nowhere], keywords: [trafficking]}}]
`, []string{"base_url", "timezone", "schedule.pull", "departments[0]", "must be an absolute http:// or https:// URL", `department names no department: "nowhere"`, "match.departments"}},
		{"empty rule", "topics: [{slug: t, title: T}]\n", []string{"match must give at least one department, category or keyword"}},
		{"metrics on the site's address", "listen: 127.0.0.1:8080\nmetrics: {listen: 127.0.0.1:8080}\n", []string{"metrics.listen"}},
		{"metrics address without a port", "metrics: {listen: localhost}\n", []string{"metrics.listen"}},
		{"negative HSTS", "hsts_max_age: -1h\n", []string{"hsts_max_age"}},
		{"a pull network that is not one", "pull: {allow_networks: [intranet.example]}\n", []string{"pull.allow_networks"}},
		{"every webhook problem at once", `
bounces:
  webhooks:
    ses: {topic_arns: [herald-bounces]}
    postmark: {username: postmark, password: short}
    sendgrid: {public_key: "not a key"}
    mailgun: {signing_key: ""}
`, []string{"bounces.webhooks.ses", "bounces.webhooks.postmark", "bounces.webhooks.sendgrid", "bounces.webhooks.mailgun"}},
		{"a webhook window too wide", "bounces: {webhooks: {window: 48h}}\n", []string{"bounces.webhooks.window"}},
		{"archive pages longer than the current feed", "feeds: {entries: 20, archive_size: 50}\n", []string{"feeds.archive_size"}},
		{"an icon that is not an address", "feeds: {icon: \"icon.png\"}\n", []string{"feeds.icon"}},
		{"an entry link that is neither", "feeds: {entry_link: publisher}\n", []string{"feeds.entry_link"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig([]byte(tt.yaml))
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestArchiveSizeFollowsEntries: unset, archive pages are as long as the
// current feed, so a config that only shortens the feed stays valid.
func TestArchiveSizeFollowsEntries(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want int
	}{
		{"", 50},
		{"feeds: {entries: 20}\n", 20},
		{"feeds: {entries: 5}\n", 5},
		{"feeds: {entries: 20, archive_size: 21}\n", 21},
	} {
		cfg, err := parseConfig([]byte(tt.yaml))
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil || cfg.Feeds.ArchiveSize != tt.want {
			t.Errorf("%q: archive_size %d, %v; want %d", tt.yaml, cfg.Feeds.ArchiveSize, err, tt.want)
		}
	}
}

func TestSecretFromEnvironment(t *testing.T) {
	t.Setenv("HERALD_TEST_ADMIN", "0123456789abcdef0123")
	cfg, err := parseConfig([]byte("admin: {tokens: [\"${HERALD_TEST_ADMIN}\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.Tokens[0].Value() != os.Getenv("HERALD_TEST_ADMIN") {
		t.Fatalf("token = %q", cfg.Admin.Tokens[0].Value())
	}
	if s := cfg.Admin.Tokens[0].String(); strings.Contains(s, "0123") {
		t.Fatalf("secret printed as %q", s)
	}
}

func TestConfigDatabase(t *testing.T) {
	tests := []struct {
		name, database string
		want           string // "" for valid
	}{
		{"SQLite file", "./herald.db", ""},
		{"postgres URL", "postgres://herald:s3cret@db.internal:5432/herald?sslmode=verify-full", ""},
		{"postgresql URL", "postgresql://herald@db/herald", ""},
		{"postgres URL over a Unix socket", "postgres:///herald?host=/var/run/postgresql", ""},
		{"empty", "  ", "database: is empty"},
		{"bad port", "postgres://herald:s3cret@db:fivefour/herald", "database: cannot parse `postgres://herald:xxxxx@db:fivefour/herald`: invalid port"},
		{"bad sslmode", "postgres://herald:s3cret@db/herald?sslmode=sometimes", "postgres://herald:xxxxx@db/herald?sslmode=sometimes"},
		{"another engine", "mysql://herald:s3cret@db/herald", "database: mysql://herald:xxxxx@db/herald is neither a SQLite file path nor a postgres:// URL"},
		{"scheme in capitals", "Postgres://herald:s3cret@db/herald", "is neither a SQLite file path nor a postgres:// URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig([]byte("database: \"" + tt.database + "\"\n"))
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("%q: %v", tt.database, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%q: error %v, want one containing %q", tt.database, err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

// runCommand runs one herald command line as main does.
func runCommand(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckConfigConnects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.yaml")
	// Nothing listens on port 1 of loopback.
	if err := os.WriteFile(path, []byte("database: postgres://herald:s3cret@127.0.0.1:1/herald?connect_timeout=5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCommand("check-config", path)
	if code != 1 || !strings.HasPrefix(stderr, "herald check-config: cannot connect to postgres://herald:xxxxx@127.0.0.1:1/herald") ||
		strings.Count(stderr, "\n") != 1 || strings.Contains(stderr, "s3cret") {
		t.Errorf("check-config on an unreachable database: exit %d, stderr %q", code, stderr)
	}
	if code, stdout, stderr := runCommand("check-config", "--offline", path); code != 0 || stdout != path+": ok\n" {
		t.Errorf("check-config --offline: exit %d, %q %q", code, stdout, stderr)
	}
}

func TestDemoRefusesBadDatabase(t *testing.T) {
	code, _, stderr := runCommand("demo", "--dir", t.TempDir(), "--database", "mysql://herald:s3cret@db/herald")
	if code != 2 || !strings.Contains(stderr, "--database: mysql://herald:xxxxx@db/herald is neither") {
		t.Errorf("demo with another engine's URL: exit %d, %q", code, stderr)
	}
}

// TestWebhooksConfig: each provider configured is built, with its secrets
// from the environment, and the others stay off.
func TestWebhooksConfig(t *testing.T) {
	t.Setenv("HERALD_TEST_POSTMARK", "a long postmark webhook password")
	t.Setenv("HERALD_TEST_MAILGUN", "mailgun-signing-key")
	cfg, err := parseConfig([]byte(`
bounces:
  webhooks:
    window: 10m
    ses: {topic_arns: ["arn:aws:sns:eu-west-2:111122223333:herald-bounces"]}
    postmark: {username: postmark, password: "${HERALD_TEST_POSTMARK}"}
    mailgun: {signing_key: "${HERALD_TEST_MAILGUN}"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	hooks, problems := cfg.Bounces.Webhooks.providers()
	var names []string
	for _, h := range hooks {
		names = append(names, h.Name())
	}
	if len(problems) != 0 || strings.Join(names, " ") != "ses postmark mailgun" {
		t.Fatalf("providers %v, problems %v", names, problems)
	}
	if s := fmt.Sprintf("%v %v", *cfg.Bounces.Webhooks.Postmark, *cfg.Bounces.Webhooks.Mailgun); strings.Contains(s, "postmark webhook password") || strings.Contains(s, "mailgun-signing-key") {
		t.Errorf("config prints its secrets: %s", s)
	}

	def, err := parseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if hooks, _ := def.Bounces.Webhooks.providers(); len(hooks) != 0 {
		t.Errorf("default config has webhooks: %v", hooks)
	}
}
