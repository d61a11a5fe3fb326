package main

import (
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"herald/alerts/address/addresstest"
	"herald/store"
)

// checkAddressCase checks one entry point's answer for a case of the
// shared address table: the rule's problem in msg, or a subscriber under
// the canonical form.
func checkAddressCase(t *testing.T, db *store.DB, tc addresstest.Case, failed bool, msg string) {
	t.Helper()
	if !tc.Accepted() {
		if !failed || !strings.Contains(msg, tc.Problem) {
			t.Errorf("failed %v, said %q; want the problem %q", failed, msg, tc.Problem)
		}
		return
	}
	if failed {
		t.Fatalf("refused: %s", msg)
	}
	if _, err := db.SubscriberByAddress(context.Background(), tc.Want); err != nil {
		t.Errorf("no subscriber %q: %v", tc.Want, err)
	}
}

// checkAddressSubscribers checks that the accepted cases made one
// subscriber per canonical form, spellings of one mailbox included.
func checkAddressSubscribers(t *testing.T, db *store.DB) {
	t.Helper()
	var got []string
	err := db.EachSubscription(context.Background(), func(address string, _ store.Subscription) error {
		got = append(got, address)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if got, want := slices.Compact(got), addresstest.Canonical(); !slices.Equal(got, want) {
		t.Errorf("subscribers %q, want %q", got, want)
	}
}

// TestSubscribersAddAddresses runs the shared address table through
// `herald subscribers add`. The public form, the console, the API and CSV
// import run the same table.
func TestSubscribersAddAddresses(t *testing.T) {
	db := adminTestDB(t)
	for _, tc := range addresstest.Cases() {
		t.Run(tc.Name, func(t *testing.T) {
			_, _, err := runAdmin(t, db, false, "subscribers", "add", "--email", tc.Input, "--department", "home-office")
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			checkAddressCase(t, db, tc, err != nil, msg)
		})
	}
	checkAddressSubscribers(t, db)
}

// TestSubscribersImportAddresses imports each address of the shared
// table from a CSV file of its own.
func TestSubscribersImportAddresses(t *testing.T) {
	db := adminTestDB(t)
	for _, tc := range addresstest.Cases() {
		t.Run(tc.Name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "subscribers.csv")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			w := csv.NewWriter(f)
			w.WriteAll([][]string{{"email", "department"}, {tc.Input, "home-office"}})
			if err := errors.Join(w.Error(), f.Close()); err != nil {
				t.Fatal(err)
			}
			_, errOut, err := runAdmin(t, db, false, "subscribers", "import", path)
			if err != nil && !errors.Is(err, errFailed) {
				t.Fatal(err)
			}
			checkAddressCase(t, db, tc, err != nil, errOut)
		})
	}
	checkAddressSubscribers(t, db)
}
