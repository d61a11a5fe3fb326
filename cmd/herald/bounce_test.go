package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"herald/alerts/smtptest"
	"herald/store"
	"herald/store/storetest"
)

// TestBounceCommand sends a message through the configured relay, then
// feeds `herald bounce` the relay's Postfix DSN for it, addressed to the
// envelope sender the message left with.
func TestBounceCommand(t *testing.T) {
	ctx := context.Background()
	srv := smtptest.Start(t, smtptest.Options{})
	dir := t.TempDir()
	path := filepath.Join(dir, "herald.yaml")
	cfg := fmt.Sprintf(`database: %q
secrets: {token_keys: ["a token key for the bounce test"]}
mail:
  from: "Herald <alerts@news.example.org>"
  transport: smtp
  smtp: {host: %q, port: %d, tls: none}
bounces: {domain: bounces.news.example.org}
`, storetest.Database(t), srv.Host(), srv.Port())
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	a, err := openConfigured(ctx, path, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i, to := range []string{"gone@example.net", "fine@example.net"} {
		msg := store.OutboxMessage{Key: fmt.Sprintf("digest:daily:2026-03-01:%d", i+1), Kind: store.KindDigest,
			SubscriberID: int64(i + 1), To: to, Subject: "Your daily digest", Text: "text"}
		if _, err := a.db.EnqueueEmails(ctx, []store.OutboxMessage{msg}); err != nil {
			t.Fatal(err)
		}
	}
	d, err := a.newDeliverer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sent, err := d.Drain(ctx); err != nil || sent != 2 {
		t.Fatalf("Drain = %d, %v", sent, err)
	}
	rows, err := a.db.OutboxMessages(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	a.Close()
	envelope := map[string]string{}
	for _, m := range srv.Messages() {
		envelope[m.To[0]] = m.From
	}
	returnPath := envelope["gone@example.net"]
	if !strings.HasPrefix(returnPath, "bounces+") || !strings.HasSuffix(returnPath, "@bounces.news.example.org") ||
		returnPath == envelope["fine@example.net"] {
		t.Fatalf("envelope senders %v", envelope)
	}
	token := strings.TrimSuffix(strings.TrimPrefix(returnPath, "bounces+"), "@bounces.news.example.org")

	dsn, err := os.ReadFile(filepath.Join("..", "..", "alerts", "bounce", "testdata", "postfix-user-unknown.eml"))
	if err != nil {
		t.Fatal(err)
	}
	dsn = []byte(strings.NewReplacer("{{TOKEN}}", token, "{{RCPT}}", "gone@example.net", "{{MSGID}}", store.MessageIDFor(rows[0].Key),
		"news.example.org", "bounces.news.example.org").Replace(string(dsn)))
	bounceCmd := func(stdin []byte, args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		err := runBounce(ctx, append([]string{"--config", path}, args...), bytes.NewReader(stdin), &stdout, &stderr)
		code := 0
		if c, ok := exitStatus("bounce", err, &stderr); ok {
			code = c
		} else if err != nil {
			code = 1
		}
		return code, stdout.String(), stderr.String()
	}

	// The recipient comes from the Delivered-To header Postfix adds.
	code, out, errOut := bounceCmd(dsn)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("report on message %d applied (suppressed: true)", ids[0])) {
		t.Fatalf("herald bounce = %d\n%s%s", code, out, errOut)
	}
	// Again: a replay, still exit 0.
	if code, out, _ := bounceCmd(dsn, "--recipient", returnPath); code != 0 || !strings.Contains(out, "report ignored: already_processed") {
		t.Fatalf("replay = %d, %s", code, out)
	}
	// A forged token: ignored, exit 0 so the MTA does not bounce it.
	forged := bytes.ReplaceAll(dsn, []byte(token), []byte(strings.Repeat("a", len(token))))
	if code, out, _ := bounceCmd(forged); code != 0 || !strings.Contains(out, "report ignored: forged_token") {
		t.Fatalf("forged = %d, %s", code, out)
	}

	db := storetest.OpenFile(t, a.cfg.Database, storetest.NewClock(time.Now()))
	list, err := db.ListSuppressions(ctx, store.SuppressionFilter{})
	if err != nil || len(list) != 1 || list[0].Address != "gone@example.net" || list[0].Source != "pipe" || list[0].OutboxID != ids[0] {
		t.Fatalf("suppressions = %+v, %v", list, err)
	}

	// The database unreachable: EX_TEMPFAIL, for the MTA to try again.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("database: \"postgres://herald@127.0.0.1:1/herald?sslmode=disable&connect_timeout=2\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"bounce", "--config", bad}, &stdout, &stderr); code != exTempFail {
		t.Fatalf("with the database down: exit %d, want %d\n%s", code, exTempFail, stderr.String())
	}
}
