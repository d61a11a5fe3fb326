package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"herald/store/storetest"
)

// TestPullCommand runs `herald pull` and `herald releases` against the
// demo's sample publishers (Atom, RSS 2.0, JSON Feed and GOV.UK search
// JSON) plus a source that cannot be reached.
func TestPullCommand(t *testing.T) {
	start := time.Now()
	pub, srv, err := startDemoPublisher(start, time.Now, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	dir := t.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "database: %q\ndepartments:\n", storetest.Database(t))
	for _, d := range demoDepartments {
		fmt.Fprintf(&cfg, "  - {slug: %s, name: %q}\n", d.Slug, d.Name)
	}
	// The sample publishers are on loopback, and so is the unreachable
	// source: allow exactly those addresses, as the demo does.
	fmt.Fprintf(&cfg, "pull: {allow_networks: [%q, \"127.0.0.1:1\"]}\n", pub.addr())
	cfg.WriteString("sources:\n")
	for _, d := range demoDepartments {
		fmt.Fprintf(&cfg, "  - {name: %s, url: %q, department: %s}\n", d.Slug, pub.base+d.Path, d.Slug)
	}
	cfg.WriteString("  - {name: unreachable, url: \"http://127.0.0.1:1/feed.atom\", department: hm-treasury}\n")
	cfg.WriteString("topics:\n  - {slug: flooding, title: Flooding, match: {keywords: [flood, flooding]}}\n")
	path := filepath.Join(dir, "herald.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	herald := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	visible := 0
	for _, it := range demoItems(start) {
		if !it.Published.After(time.Now()) {
			visible++
		}
	}

	code, out, _ := herald("pull", "--config", path)
	if code != 1 {
		t.Errorf("first pull exited %d, want 1 for the unreachable source", code)
	}
	rows := pullRows(out)
	total := 0
	for _, d := range demoDepartments {
		r := rows[d.Slug]
		if len(r) < 3 || r[1] != "new" {
			t.Fatalf("first pull of %s: %v\n%s", d.Slug, r, out)
		}
		var n int
		fmt.Sscan(r[2], &n)
		total += n
	}
	if total != visible {
		t.Errorf("first pull stored %d releases, want %d", total, visible)
	}
	if r := rows["unreachable"]; len(r) < 2 || r[1] != "failed" || !strings.Contains(out, "connection refused") {
		t.Errorf("unreachable source row %v, want failed with the reason\n%s", r, out)
	}

	code, out, _ = herald("pull", "--config", path, "--source", "home-office", "--source", "hm-treasury")
	if code != 0 {
		t.Errorf("second pull exited %d\n%s", code, out)
	}
	for name, r := range pullRows(out) {
		if r[1] != "not-modified" {
			t.Errorf("second pull of %s: %v, want not-modified", name, r)
		}
	}

	code, out, errOut := herald("releases", "--config", path, "--json", "--limit", "500")
	if code != 0 {
		t.Fatalf("releases exited %d: %s", code, errOut)
	}
	var rel []releaseJSON
	if err := json.Unmarshal([]byte(out), &rel); err != nil {
		t.Fatal(err)
	}
	if len(rel) != visible {
		t.Errorf("%d releases stored, want each of %d once", len(rel), visible)
	}
	seen := map[string]bool{}
	for _, r := range rel {
		if seen[r.Link] {
			t.Errorf("release %q stored twice", r.Link)
		}
		seen[r.Link] = true
		if _, err := time.Parse(time.RFC3339, r.Published); err != nil || r.Department == "" || r.Title == "" || r.Topics == nil || r.Categories == nil {
			t.Errorf("release %+v is missing fields", r)
		}
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"releases", "--config", path, "--topic", "nowhere"}, `no topic with slug "nowhere"`},
		{[]string{"pull", "--config", path, "--source", "nowhere"}, `no source named "nowhere"`},
		{[]string{"pull", "--config", filepath.Join(dir, "missing.yaml")}, "no such file"},
		{[]string{"releases", "--config", path, "--limit", "0"}, "--limit must be at least 1"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
	} {
		code, _, errOut := herald(tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("herald %v: exit %d, stderr %q, want one line with %q", tc.args, code, errOut, tc.want)
		}
	}
}

// pullRows reads the table `herald pull` prints: source name -> fields.
func pullRows(out string) map[string][]string {
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	return rows
}
