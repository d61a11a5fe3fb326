package main

import (
	"os"
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
