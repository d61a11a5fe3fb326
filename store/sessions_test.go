package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"herald/store"
	"herald/store/storetest"
)

// openTwice opens one fresh database through two handles, as two Herald
// instances would.
func openTwice(t *testing.T) (*store.DB, *store.DB) {
	t.Helper()
	path := storetest.Database(t)
	var dbs [2]*store.DB
	for i := range dbs {
		db, err := store.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	return dbs[0], dbs[1]
}

func TestAdminSessionsAreShared(t *testing.T) {
	ctx := context.Background()
	a, b := openTwice(t)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	s := store.AdminSession{IDHash: "hash-1", CSRF: "csrf-1", Created: now, Expires: now.Add(12 * time.Hour)}
	if err := a.CreateAdminSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := b.AdminSession(ctx, "hash-1")
	if err != nil {
		t.Fatal(err)
	}
	if got != s {
		t.Fatalf("the other handle read %+v, want %+v", got, s)
	}
	if _, err := b.AdminSession(ctx, "hash-2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown session: %v, want ErrNotFound", err)
	}

	// A message set on one instance is shown once, by whichever asks first.
	if err := a.SetAdminSessionFlash(ctx, "hash-1", "Topic saved."); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.AdminSession(ctx, "hash-1"); got.Flash != "Topic saved." {
		t.Fatalf("flash = %q", got.Flash)
	}
	for i, want := range []bool{true, false} {
		ok, err := []*store.DB{b, a}[i].TakeAdminSessionFlash(ctx, "hash-1", "Topic saved.")
		if err != nil || ok != want {
			t.Fatalf("take %d = %v, %v; want %v", i, ok, err, want)
		}
	}
	if ok, _ := a.TakeAdminSessionFlash(ctx, "hash-1", ""); ok {
		t.Error("took an empty message")
	}
	if got, _ := a.AdminSession(ctx, "hash-1"); got.Flash != "" {
		t.Errorf("flash after taking = %q", got.Flash)
	}

	// Signing out on one instance ends the session on the other.
	if err := b.DeleteAdminSession(ctx, "hash-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AdminSession(ctx, "hash-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after sign-out: %v, want ErrNotFound", err)
	}
	if err := a.DeleteAdminSession(ctx, "hash-1"); err != nil {
		t.Errorf("ending an ended session: %v", err)
	}
}

func TestDeleteExpiredAdminSessions(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for _, s := range []store.AdminSession{
		{IDHash: "gone", CSRF: "c", Created: now.Add(-13 * time.Hour), Expires: now.Add(-time.Hour)},
		{IDHash: "last-moment", CSRF: "c", Created: now.Add(-12 * time.Hour), Expires: now},
		{IDHash: "live", CSRF: "c", Created: now, Expires: now.Add(12 * time.Hour)},
	} {
		if err := db.CreateAdminSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	n, err := db.DeleteExpiredAdminSessions(ctx, now)
	if err != nil || n != 1 {
		t.Fatalf("deleted %d, %v; want 1", n, err)
	}
	for hash, want := range map[string]error{"gone": store.ErrNotFound, "last-moment": nil, "live": nil} {
		if _, err := db.AdminSession(ctx, hash); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", hash, err, want)
		}
	}
}
