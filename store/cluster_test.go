package store_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"herald/store"
	"herald/store/storetest"
)

// openTwo opens one database twice, as two instances would.
func openTwo(t *testing.T) (a, b *store.DB, database string) {
	t.Helper()
	database = storetest.Database(t)
	open := func() *store.DB {
		db, err := store.Open(context.Background(), database)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	return open(), open(), database
}

// adminExec runs one statement on the server's postgres database, as the
// operator would.
func adminExec(t *testing.T, database, sql string) {
	t.Helper()
	u, err := url.Parse(database)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/postgres"
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func dbName(t *testing.T, database string) string {
	u, err := url.Parse(database)
	if err != nil {
		t.Fatal(err)
	}
	return pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()
}

func TestLeadershipIsExclusive(t *testing.T) {
	ctx := context.Background()
	a, b, _ := openTwo(t)
	la, lb := a.Leadership(), b.Leadership()
	if ok, err := la.Acquire(ctx); err != nil || !ok {
		t.Fatalf("first instance: leader %v, %v", ok, err)
	}
	if a.Engine() == store.SQLite {
		// One process per SQLite database: it always leads.
		if ok, err := lb.Acquire(ctx); err != nil || !ok {
			t.Fatalf("SQLite: leader %v, %v", ok, err)
		}
		return
	}
	for range 3 {
		if ok, err := lb.Acquire(ctx); err != nil || ok {
			t.Fatalf("second instance: leader %v, %v while the first leads", ok, err)
		}
		if ok, err := la.Held(ctx); err != nil || !ok {
			t.Fatalf("first instance: held %v, %v", ok, err)
		}
	}
	if ok, err := lb.Held(ctx); err != nil || ok {
		t.Fatalf("second instance: held %v, %v", ok, err)
	}
	// Giving leadership up hands it on.
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := la.Held(ctx); err != nil || ok {
		t.Fatalf("released: held %v, %v", ok, err)
	}
	if ok, err := lb.Acquire(ctx); err != nil || !ok {
		t.Fatalf("after release, second instance: leader %v, %v", ok, err)
	}
	if ok, err := la.Acquire(ctx); err != nil || ok {
		t.Fatalf("first instance again: leader %v, %v", ok, err)
	}
}

// TestLeadershipMovesWhenLeaderGoes: a leader whose store closes (as its
// process would exit) loses the lock with its connection, and the other
// instance's next attempt takes it; a leader whose connection the server
// ends notices at its next check.
func TestLeadershipMovesWhenLeaderGoes(t *testing.T) {
	if storetest.Engine() != store.Postgres {
		t.Skip("one process leads a SQLite database")
	}
	ctx := context.Background()
	a, b, database := openTwo(t)
	la, lb := a.Leadership(), b.Leadership()
	if ok, err := la.Acquire(ctx); err != nil || !ok {
		t.Fatalf("first instance: leader %v, %v", ok, err)
	}
	if ok, _ := lb.Acquire(ctx); ok {
		t.Fatal("two leaders")
	}
	a.Close()
	took := storetest.Eventually(t, 2*time.Second, "the second instance to lead", func() bool {
		ok, err := lb.Acquire(ctx)
		return err == nil && ok
	})
	t.Logf("took over %v after the leader's store closed", took.Round(time.Millisecond))
	if ok, err := la.Held(ctx); ok {
		t.Fatalf("closed store still leads (%v)", err)
	}

	// The server ends the leader's session (an operator, a network cut):
	// the next check says so, and reconnecting takes the free lock again.
	terminateLeader(t, database)
	if ok, err := lb.Held(ctx); ok || err == nil {
		t.Fatalf("after its session ended: held %v, %v", ok, err)
	}
	if ok, err := lb.Acquire(ctx); err != nil || !ok {
		t.Fatalf("after reconnecting: leader %v, %v", ok, err)
	}
}

// terminateLeader ends the server session holding Herald's leader lock in
// database.
func terminateLeader(t *testing.T, database string) {
	t.Helper()
	name := strings.Trim(dbName(t, database), `"`)
	adminExec(t, database, `SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
		WHERE l.locktype = 'advisory' AND l.granted AND d.datname = '`+name+`'`)
}

// watch runs db.WatchFeedCache from the current generation until the test
// ends, and returns the changes it reports.
func watch(t *testing.T, db *store.DB, since int64) <-chan store.FeedChange {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan store.FeedChange, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		db.WatchFeedCache(ctx, since, 100*time.Millisecond, func(_ context.Context, c store.FeedChange) error {
			out <- c
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return out
}

func feedDoc(path, body string) store.FeedDoc {
	return store.FeedDoc{Path: path, Key: "all", Kind: store.FeedKindCurrent, Format: "atom", Body: []byte(body),
		Gzip: []byte("gz"), ETag: `"` + body + `"`, LastModified: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
}

// waitChange returns the next change reported, failing after within.
func waitChange(t *testing.T, ch <-chan store.FeedChange, within time.Duration) store.FeedChange {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(within):
		t.Fatalf("no feed change reported within %v", within)
		return store.FeedChange{}
	}
}

func TestFeedCacheChangesReachOtherInstances(t *testing.T) {
	ctx := context.Background()
	a, b, database := openTwo(t)
	if a.Engine() != store.Postgres {
		// One process, one cache: nothing to watch.
		if err := a.WatchFeedCache(ctx, 0, time.Millisecond, func(context.Context, store.FeedChange) error {
			t.Error("a change reported on SQLite")
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return
	}
	gen, err := b.FeedGeneration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fromB := watch(t, b, gen)
	fromA := watch(t, a, gen)
	time.Sleep(200 * time.Millisecond) // both listening

	if err := a.UpdateFeedCache(ctx, store.FeedCacheUpdate{Save: []store.FeedDoc{feedDoc("/feeds/all.atom", "one")}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c := waitChange(t, fromB, time.Second)
	if c.All || len(c.Paths) != 1 || c.Paths[0] != "/feeds/all.atom" {
		t.Fatalf("change %+v, want /feeds/all.atom", c)
	}
	t.Logf("the other instance heard after %v", time.Since(start).Round(time.Millisecond))
	docs, err := b.FeedDocsAt(ctx, c.Paths)
	if err != nil || len(docs) != 1 || string(docs[0].Body) != "one" {
		t.Fatalf("docs at %v: %+v, %v", c.Paths, docs, err)
	}
	if err := a.UpdateFeedCache(ctx, store.FeedCacheUpdate{Remove: []string{"/feeds/all.atom"}}); err != nil {
		t.Fatal(err)
	}
	if c := waitChange(t, fromB, time.Second); c.All || len(c.Paths) != 1 {
		t.Fatalf("removal reported as %+v", c)
	}
	if docs, err := b.FeedDocsAt(ctx, []string{"/feeds/all.atom"}); err != nil || len(docs) != 0 {
		t.Fatalf("removed doc still there: %+v, %v", docs, err)
	}
	// An instance's own changes are in its memory already.
	select {
	case c := <-fromA:
		t.Fatalf("own change reported: %+v", c)
	case <-time.After(300 * time.Millisecond):
	}

	// A watcher whose copy is older than the store's (changes made while
	// it was loading, or not listening) reloads everything.
	if c := waitChange(t, watch(t, b, gen), time.Second); !c.All {
		t.Fatalf("a stale watcher got %+v, want All", c)
	}

	// A listener whose connection the server ends reconnects; what was
	// written meanwhile is reported, by path or as All.
	terminate(t, database, "LISTEN%")
	if err := a.UpdateFeedCache(ctx, store.FeedCacheUpdate{Save: []store.FeedDoc{feedDoc("/feeds/all.rss", "two")}}); err != nil {
		t.Fatal(err)
	}
	if c := waitChange(t, fromB, 3*time.Second); !c.All && (len(c.Paths) != 1 || c.Paths[0] != "/feeds/all.rss") {
		t.Fatalf("after reconnecting: %+v", c)
	}
}

// terminate ends the server sessions of database whose last statement is
// like query.
func terminate(t *testing.T, database, query string) {
	t.Helper()
	name := strings.Trim(dbName(t, database), `"`)
	adminExec(t, database, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = '`+name+`' AND query LIKE '`+query+`'`)
}

// TestInstanceRecoversWhenDatabaseReturns: while the database refuses
// connections, pings fail (so /readyz does) and leadership is lost; when
// it accepts them again, pings, leadership and listening come back
// without help.
func TestInstanceRecoversWhenDatabaseReturns(t *testing.T) {
	if storetest.Engine() != store.Postgres {
		t.Skip("a SQLite file does not go away")
	}
	ctx := context.Background()
	a, b, database := openTwo(t)
	la := a.Leadership()
	if ok, err := la.Acquire(ctx); err != nil || !ok {
		t.Fatalf("leader %v, %v", ok, err)
	}
	gen, err := a.FeedGeneration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fromA := watch(t, a, gen)
	time.Sleep(200 * time.Millisecond)

	name := dbName(t, database)
	adminExec(t, database, `ALTER DATABASE `+name+` ALLOW_CONNECTIONS false`)
	restored := false
	restore := func() {
		if !restored {
			restored = true
			adminExec(t, database, `ALTER DATABASE `+name+` ALLOW_CONNECTIONS true`)
		}
	}
	t.Cleanup(restore)
	terminate(t, database, "%")

	storetest.Eventually(t, 5*time.Second, "pings to fail", func() bool {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return a.Ping(pctx) != nil
	})
	if ok, err := la.Held(ctx); ok || err == nil {
		t.Fatalf("leadership without a database: %v, %v", ok, err)
	}
	if ok, err := la.Acquire(ctx); ok || err == nil {
		t.Fatalf("acquired without a database: %v, %v", ok, err)
	}

	restore()
	storetest.Eventually(t, 5*time.Second, "pings to succeed", func() bool { return a.Ping(ctx) == nil })
	storetest.Eventually(t, 5*time.Second, "leadership to come back", func() bool {
		ok, err := la.Acquire(ctx)
		return err == nil && ok
	})
	// The listener is back too: a change by the other instance is heard.
	time.Sleep(time.Second) // its backoff
	for {
		select {
		case <-fromA:
			continue
		default:
		}
		break
	}
	if err := b.UpdateFeedCache(ctx, store.FeedCacheUpdate{Save: []store.FeedDoc{feedDoc("/feeds/all.json", "three")}}); err != nil {
		t.Fatal(err)
	}
	waitChange(t, fromA, 3*time.Second)
}

// TestWebSubWorkIsClaimedOnce: two instances' hub workers never take the
// same verification or delivery; one left by a dead worker is due again
// when its lease ends.
func TestWebSubWorkIsClaimedOnce(t *testing.T) {
	ctx := context.Background()
	database := storetest.Database(t)
	clock := storetest.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	a := storetest.OpenFile(t, database, clock)
	b := storetest.OpenFile(t, database, clock)
	const topic = "https://news.example/feeds/all.atom"
	lease := 5 * time.Minute
	req, err := a.AddWebSubRequest(ctx, store.WebSubRequest{Mode: store.WebSubSubscribe, Topic: topic,
		Callback: "https://reader.example/cb", LeaseSeconds: 86400})
	if err != nil {
		t.Fatal(err)
	}
	if reqs, err := a.ClaimWebSubRequests(ctx, 10, lease); err != nil || len(reqs) != 1 || reqs[0].ID != req.ID {
		t.Fatalf("first claim of requests: %+v, %v", reqs, err)
	}
	if reqs, err := b.ClaimWebSubRequests(ctx, 10, lease); err != nil || len(reqs) != 0 {
		t.Fatalf("second claim of requests: %+v, %v", reqs, err)
	}
	if ok, err := a.CompleteWebSubRequest(ctx, req.ID); err != nil || !ok {
		t.Fatalf("complete: %v, %v", ok, err)
	}
	if n, err := a.QueueWebSubDeliveries(ctx, []string{topic}); err != nil || n != 1 {
		t.Fatalf("queued %d, %v", n, err)
	}
	dels, err := a.ClaimWebSubDeliveries(ctx, 10, lease)
	if err != nil || len(dels) != 1 || dels[0].Subscription.Callback != "https://reader.example/cb" {
		t.Fatalf("first claim of deliveries: %+v, %v", dels, err)
	}
	if again, err := b.ClaimWebSubDeliveries(ctx, 10, lease); err != nil || len(again) != 0 {
		t.Fatalf("second claim of deliveries: %+v, %v", again, err)
	}
	// The first worker dies; after the lease the other delivers.
	clock.Add(lease + time.Second)
	if again, err := b.ClaimWebSubDeliveries(ctx, 10, lease); err != nil || len(again) != 1 || again[0].Seq != dels[0].Seq {
		t.Fatalf("claim after the lease: %+v, %v", again, err)
	}
	if err := b.FinishWebSubDelivery(ctx, dels[0], "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	clock.Add(lease + time.Second)
	if again, err := a.ClaimWebSubDeliveries(ctx, 10, lease); err != nil || len(again) != 0 {
		t.Fatalf("claim after delivery: %+v, %v", again, err)
	}
}
