package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"herald/store"
)

// demoTopics are the sample topics; their rules show each kind of match.
var demoTopics = []TopicConfig{
	{Slug: "human-trafficking", Title: "Human trafficking and modern slavery", Description: "Enforcement, guidance and support for victims.",
		Match: store.Rule{Departments: []string{"home-office"}, Keywords: []string{"trafficking", "modern slavery", "labour exploitation"}}},
	{Slug: "immigration", Title: "Immigration and borders", Match: store.Rule{Keywords: []string{"immigration", "visa", "visas", "border", "borders", "asylum", "passport"}}},
	{Slug: "policing", Title: "Policing and crime", Match: store.Rule{Categories: []string{"Policing", "Crime"}, Keywords: []string{"police", "policing"}}},
	{Slug: "schools", Title: "Schools", Match: store.Rule{Departments: []string{"department-for-education"}, Keywords: []string{"school", "schools", "pupils", "teachers", "teacher"}}},
	{Slug: "flooding", Title: "Flooding and coastal change", Match: store.Rule{Keywords: []string{"flood", "flooding", "floods", "flood defences", "sea levels"}}},
	{Slug: "climate", Title: "Climate change", Match: store.Rule{Categories: []string{"Climate"}, Keywords: []string{"climate", "emissions", "net zero"}}},
	{Slug: "public-finances", Title: "Public finances and tax", Match: store.Rule{Departments: []string{"hm-treasury"}, Categories: []string{"Public finances", "Tax"}, Keywords: []string{"budget", "borrowing"}}},
	{Slug: "cost-of-living", Title: "Cost of living", Match: store.Rule{Keywords: []string{"cost of living", "energy bills", "childcare", "fuel duty", "free school meals"}, Exclude: []string{"statistics"}}},
}

// previousDemoPublisher returns the loopback address the sample publishers
// had in an earlier run of the demo on the same database, or "".
func previousDemoPublisher(ctx context.Context, database string) string {
	if _, err := os.Stat(database); err != nil && !store.IsPostgresURL(database) {
		return ""
	}
	db, err := store.Open(ctx, database)
	if err != nil {
		return ""
	}
	defer db.Close()
	src, err := db.SourceByName(ctx, demoDepartments[0].Slug)
	if err != nil {
		return ""
	}
	u, err := url.Parse(src.URL)
	if err != nil || u.Hostname() != "127.0.0.1" {
		return ""
	}
	return u.Host
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgFlag := newFlags("demo", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "`ADDR` to serve on")
	dir := fs.String("dir", "./herald-demo", "`DIR` for the database and sent messages")
	database := fs.String("database", "", "a postgres:// `URL` (or SQLite file) to run on (default $HERALD_DATABASE, else DIR/herald.db)")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *cfgFlag != "" {
		return usageError("demo runs on built-in settings; use \"herald serve --config FILE\" for your own")
	}
	if _, _, err := net.SplitHostPort(*listen); err != nil {
		return usageError("--listen %q must be host:port", *listen)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fmt.Errorf("demo directory: %w", err)
	}
	if *database == "" {
		*database = os.Getenv("HERALD_DATABASE")
	}
	if *database == "" {
		*database = filepath.Join(*dir, "herald.db")
	}
	if err := store.CheckDatabase(*database); err != nil {
		return usageError("--database: %v", err)
	}
	start := time.Now()
	pub, srv, err := startDemoPublisher(start, time.Now, previousDemoPublisher(ctx, *database))
	if err != nil {
		return err
	}
	defer srv.Close()

	cfg := defaultConfig()
	cfg.Database = *database
	cfg.Listen = *listen
	cfg.BaseURL = "http://" + *listen
	cfg.Schedule.Pull = "* * * * *"
	// Digest periods are short in the demo so that digests can be seen
	// without waiting a day: "daily" every ten minutes, "weekly" hourly.
	cfg.Schedule.DailyDigest = "*/10 * * * *"
	cfg.Schedule.WeeklyDigest = "0 * * * *"
	mail := defaultMail()
	mail.From = "Herald demo <alerts@herald.invalid>"
	mail.Dir = filepath.Join(*dir, "outbox")
	cfg.Mail = &mail
	// The sample publishers and any WebSub subscriber a visitor tries are
	// on this machine, at loopback addresses a real deployment refuses:
	// let pulls reach the sample publishers' address alone, and callbacks
	// anywhere.
	cfg.Pull.AllowNetworks = []string{pub.addr()}
	cfg.WebSub.AllowPrivateCallbacks = true
	for _, d := range demoDepartments {
		cfg.Departments = append(cfg.Departments, DepartmentConfig{Slug: d.Slug, Name: d.Name})
		cfg.Sources = append(cfg.Sources, SourceConfig{Name: d.Slug, URL: pub.base + d.Path, Department: d.Slug, Format: d.Format})
	}
	cfg.Topics = demoTopics
	// The console needs an admin token: take HERALD_ADMIN_TOKEN, else make
	// one for this run and print it.
	adminToken := os.Getenv("HERALD_ADMIN_TOKEN")
	if adminToken == "" {
		var b [18]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		adminToken = base64.RawURLEncoding.EncodeToString(b[:])
	}
	cfg.Admin.Tokens = []Secret{Secret(adminToken)}
	if err := cfg.Validate(); err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	// Provisioning (in openApp) has pointed the sources at the sample
	// publisher's port of this run.
	defer a.Close()
	fmt.Fprintf(stdout, `Herald demo
  site:     %[1]s/
  feeds:    %[1]s/feeds/all.atom  (OPML: %[1]s/feeds.opml)
  emails:   %[2]s (one .eml file per message)
  database: %[3]s
  console:  %[1]s/admin/  (admin token: %[5]s)
  API:      curl -H "Authorization: Bearer %[5]s" %[1]s/api/v1/topics
Sample publishers on %[4]s are pulled every minute; two new releases
arrive in the next few minutes. In the demo a "daily" digest goes out every
ten minutes and a "weekly" one every hour. Press Ctrl-C to stop.
`, cfg.BaseURL, mail.Dir, store.Redact(cfg.Database), pub.base, adminToken)
	return a.serve(ctx)
}
