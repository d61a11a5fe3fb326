package alerts_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"herald/alerts"
	"herald/store"
	"herald/store/storetest"
)

// TestGeneratedKeyIsAgreedAcrossInstances: instances starting at once on
// one fresh database, none with a configured key, all end up with the one
// key that was stored first, so a link signed by any of them verifies on
// every other.
func TestGeneratedKeyIsAgreedAcrossInstances(t *testing.T) {
	ctx := context.Background()
	path := storetest.Database(t)
	const n = 8
	dbs := make([]*store.DB, n)
	for i := range dbs {
		db, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	keys := make([]alerts.Keys, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() {
			<-start
			k, generated, err := alerts.LoadKeys(ctx, db, nil, "")
			if err != nil || !generated {
				t.Errorf("instance %d: generated %v, %v", i, generated, err)
			}
			keys[i] = k
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	now := time.Now()
	for i, k := range keys {
		link := k.Sign(alerts.Token{Purpose: alerts.PurposeUnsubscribe, Subject: int64(i + 1)})
		for j, other := range keys {
			if _, err := other.Verify(link, now, alerts.PurposeUnsubscribe); err != nil {
				t.Errorf("a link signed by instance %d does not verify on instance %d: %v", i, j, err)
			}
		}
	}
}
