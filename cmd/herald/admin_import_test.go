package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"herald/store"
	"herald/web/admin"
)

// importRows is a CSV file of n rows to the department home-office, one
// address each (reader1@example.org is line 2), with a header; bad names
// the rows given a refused address instead.
func importRows(n int, bad map[int]bool) string {
	var b strings.Builder
	b.WriteString("email,topic,department,frequency\n")
	for i := 1; i <= n; i++ {
		if bad[i] {
			fmt.Fprintf(&b, "reader%d-at-example.org,,home-office,daily\n", i)
			continue
		}
		fmt.Fprintf(&b, "reader%d@example.org,,home-office,daily\n", i)
	}
	return b.String()
}

func TestSubscribersImportInBatches(t *testing.T) {
	db := adminTestDB(t)
	ctx := context.Background()
	// A subscriber who is already subscribed: the file changes the
	// frequency of the subscription they have and adds none.
	if _, err := admin.New(db).AddSubscription(ctx, admin.SubscriptionInput{Address: "reader7@example.org", Department: "home-office", Frequency: "weekly"}); err != nil {
		t.Fatal(err)
	}
	const rows = 2*importBatch + 500
	bad := map[int]bool{3: true, importBatch: true, importBatch + 1: true, rows: true}
	body := importRows(rows, bad)
	// The same address and target twice in one batch, and across two
	// batches: the later row's frequency stays.
	body += "reader9@example.org,,home-office,weekly\n" // line rows+2
	body += "Reader1500@Example.org,,home-office,immediately\n"
	body += "reader2100@example.org,,home-office,weekly\n"
	path := filepath.Join(t.TempDir(), "rows.csv")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runAdmin(t, db, false, "subscribers", "import", path)
	if !errors.Is(err, errFailed) {
		t.Fatalf("err = %v, want errFailed (rows were skipped)", err)
	}
	// Every good row lands: rows-4 from the numbered ones, three of them
	// again; reader7 was a subscriber already.
	imported := rows - len(bad) + 3
	if want := fmt.Sprintf("imported %d subscriptions (%d new subscribers); %d rows skipped", imported, rows-len(bad)-1, len(bad)); !strings.Contains(out, want) {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	for i := range bad {
		// reader<i> is on line i+1.
		want := fmt.Sprintf("line %d: email address %q must contain an @", i+1, fmt.Sprintf("reader%d-at-example.org", i))
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if n := strings.Count(errOut, "\n"); n != len(bad) {
		t.Errorf("stderr has %d lines, want %d:\n%s", n, len(bad), errOut)
	}
	if n, err := db.CountSubscriptions(ctx); err != nil || n != rows-len(bad) {
		t.Errorf("%d subscriptions (%v), want %d", n, err, rows-len(bad))
	}
	for addr, freq := range map[string]string{"reader7@example.org": "daily", "reader9@example.org": "weekly",
		"reader1500@example.org": "immediately", "reader2100@example.org": "weekly", "reader2@example.org": "daily"} {
		info, err := admin.New(db).LookupSubscriber(ctx, addr)
		if err != nil || info.Status != "confirmed" || len(info.Subscriptions) != 1 || info.Subscriptions[0].Frequency != freq {
			t.Errorf("%s: %+v, %v; want one confirmed subscription, %s", addr, info, err, freq)
		}
	}
	if _, err := db.SubscriberByAddress(ctx, "reader3-at-example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused row was stored: %v", err)
	}
}

// stopAfter reads r and cancels once more than n bytes were read, as an
// operator's Ctrl-C or a lost database would stop an import half-way.
type stopAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (s *stopAfter) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if s.n -= n; s.n < 0 {
		s.cancel()
	}
	return n, err
}

func TestSubscribersImportStoppedKeepsWhatLanded(t *testing.T) {
	db := adminTestDB(t)
	const rows = 3 * importBatch
	body := importRows(rows, nil)
	ops := admin.New(db)
	// Cancel halfway through the second batch's lines: the first batch
	// is stored, the second cannot be.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	half := strings.Index(body, fmt.Sprintf("\nreader%d@", importBatch+importBatch/2))
	var errw strings.Builder
	res, err := importSubscriptions(ctx, ops, &stopAfter{r: strings.NewReader(body), n: half, cancel: cancel}, int64(len(body)),
		newProgress(io.Discard, false, "importing"), &errw)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	want := fmt.Sprintf("lines %d to %d and the rest of the file were not imported", importBatch+2, 2*importBatch+1)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if res.imported != importBatch || res.newSubscribers != importBatch || res.through != importBatch+1 {
		t.Errorf("result %+v, want %d imported through line %d", res, importBatch, importBatch+1)
	}
	if n, err := db.CountSubscriptions(context.Background()); err != nil || n != importBatch {
		t.Errorf("%d subscriptions stored (%v), want the first batch's %d", n, err, importBatch)
	}

	// Importing the file again adds what is missing and nothing twice.
	path := filepath.Join(t.TempDir(), "rows.csv")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runAdmin(t, db, false, "subscribers", "import", path)
	want = fmt.Sprintf("imported %d subscriptions (%d new subscribers); 0 rows skipped", rows, rows-importBatch)
	if err != nil || !strings.Contains(out, want) {
		t.Errorf("import again: %q, %v; want %q", out, err, want)
	}
	if n, err := db.CountSubscriptions(context.Background()); err != nil || n != rows {
		t.Errorf("%d subscriptions stored (%v), want %d", n, err, rows)
	}
}

func TestSubscribersImportProgress(t *testing.T) {
	db := adminTestDB(t)
	path := filepath.Join(t.TempDir(), "rows.csv")
	if err := os.WriteFile(path, []byte(importRows(1500, map[int]bool{5: true})), 0o600); err != nil {
		t.Fatal(err)
	}
	// On a terminal: the bar, cleared for the bad row's line, ends at
	// 100% with the rows counted.
	out, errOut, err := runAdmin(t, db, true, "subscribers", "import", path)
	if !errors.Is(err, errFailed) || !strings.Contains(out, "imported 1499 subscriptions") {
		t.Fatalf("import: %q, %v", out, err)
	}
	if !strings.Contains(errOut, "importing [##############################] 100%  1499 rows, ") {
		t.Errorf("terminal progress = %q", errOut)
	}
	if !strings.Contains(errOut, "line 6: email address") {
		t.Errorf("the bad row was not reported: %q", errOut)
	}
	// Elsewhere: no bar, the summary line only.
	out, errOut, err = runAdmin(t, db, false, "subscribers", "import", path)
	if !errors.Is(err, errFailed) || out != "imported 1499 subscriptions (0 new subscribers); 1 rows skipped\n" {
		t.Errorf("import again: %q, %v", out, err)
	}
	if strings.Contains(errOut, "importing [") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("stderr off a terminal = %q, want the bad row's line only", errOut)
	}
}
