package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Every Herald instance serves feeds from memory, loaded from feed_docs.
// On PostgreSQL several instances share feed_docs, so the transaction that
// writes documents also counts a generation (feed_meta "generation") and
// sends a notification naming it and the documents' paths; each instance
// listens on a connection of its own and reloads what another changed. A
// notification lost while a listener was disconnected shows as a
// generation this instance has not seen: a periodic check compares the
// stored generation and reloads everything when it ran ahead. SQLite has
// one process, and none of this.

// feedChannel is the notification channel of feed cache changes.
const feedChannel = "herald_feeds"

// feedGenerationMeta names the feed_meta row counting feed cache updates.
const feedGenerationMeta = "generation"

// maxNotifyPayload keeps a notification under PostgreSQL's 8000 bytes;
// an update touching more paths than fit says "reload everything".
const maxNotifyPayload = 7000

// FeedChange is a change another instance made to the feed cache.
type FeedChange struct {
	// All means any document may have changed: reload the whole cache.
	All bool
	// Paths are the documents saved or removed, when not All.
	Paths []string
}

// notifyFeeds counts an update of the feed cache and tells the other
// instances, inside the transaction that writes it: the notification is
// delivered when, and only if, the transaction commits.
func (db *DB) notifyFeeds(ctx context.Context, tx *sql.Tx, u FeedCacheUpdate) error {
	if db.engine != Postgres {
		return nil
	}
	var gen int64
	err := tx.QueryRowContext(ctx, `INSERT INTO feed_meta (name, value) VALUES (?, '1')
		ON CONFLICT (name) DO UPDATE SET value = CAST(CAST(feed_meta.value AS BIGINT) + 1 AS TEXT)
		RETURNING CAST(value AS BIGINT)`, feedGenerationMeta).Scan(&gen)
	if err != nil {
		return fmt.Errorf("count feed generation: %w", err)
	}
	var b strings.Builder
	b.WriteString(db.instance + " " + strconv.FormatInt(gen, 10))
	paths := make([]string, 0, len(u.Save)+len(u.Remove))
	for _, d := range u.Save {
		paths = append(paths, d.Path)
	}
	paths = append(paths, u.Remove...)
	for _, p := range paths {
		if b.Len()+1+len(p) > maxNotifyPayload {
			b.Reset()
			b.WriteString(db.instance + " " + strconv.FormatInt(gen, 10) + "\n*")
			break
		}
		b.WriteString("\n" + p)
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify(?, ?)`, feedChannel, b.String()); err != nil {
		return fmt.Errorf("notify feed change: %w", err)
	}
	return nil
}

// FeedGeneration returns the number of feed cache updates made on
// PostgreSQL so far; always 0 on SQLite. Read it before loading the cache
// and give it to WatchFeedCache, so no change made in between is missed.
func (db *DB) FeedGeneration(ctx context.Context) (int64, error) {
	v, err := db.FeedMeta(ctx, feedGenerationMeta)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("store: feed generation %q: %w", v, err)
	}
	return n, nil
}

// FeedDocsAt returns the documents of the feed cache at the given paths,
// archive pages without Body (as FeedDocs with archiveBodies false). A
// path without a document is left out.
func (db *DB) FeedDocsAt(ctx context.Context, paths []string) ([]FeedDoc, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	args := make([]any, len(paths))
	for i, p := range paths {
		args[i] = p
	}
	return db.feedDocs(ctx, false, `path IN (`+placeholders(len(paths))+`)`, args...)
}

// feedNote is one notification of a feed cache change.
type feedNote struct {
	instance string
	gen      int64
	change   FeedChange
}

func parseFeedNote(payload string) (feedNote, bool) {
	lines := strings.Split(payload, "\n")
	inst, genText, ok := strings.Cut(lines[0], " ")
	if !ok {
		return feedNote{}, false
	}
	gen, err := strconv.ParseInt(genText, 10, 64)
	if err != nil {
		return feedNote{}, false
	}
	n := feedNote{instance: inst, gen: gen}
	if len(lines) == 2 && lines[1] == "*" {
		n.change.All = true
	} else {
		n.change.Paths = lines[1:]
	}
	return n, true
}

// Backoff of the listener's reconnection attempts.
const (
	listenRetryMin = 250 * time.Millisecond
	listenRetryMax = 10 * time.Second
)

// WatchFeedCache calls changed with each change other instances make to
// the feed cache, until ctx ends; since is the generation the caller's
// copy of the cache reflects (FeedGeneration, read before loading it).
// Changes arrive by notification, within milliseconds; every interval
// (5 s when zero) the stored generation is compared too, and a change
// still unseen after two checks is reported as All. A listener that loses
// its connection reconnects with backoff and then reports All if anything
// changed meanwhile. When changed fails, the next check reports All. On
// SQLite WatchFeedCache returns at once: one process has one cache.
func (db *DB) WatchFeedCache(ctx context.Context, since int64, every time.Duration, changed func(context.Context, FeedChange) error) error {
	if db.engine != Postgres {
		return nil
	}
	if every <= 0 {
		every = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	key := new(int)
	if !db.dedicated.add(key, cancel) {
		cancel()
		return errors.New("store: watch feed cache: the store is closed")
	}
	defer db.dedicated.remove(key)
	notes := make(chan feedNote, 64)
	connected := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		db.listenFeeds(ctx, notes, connected)
	}()
	defer func() { cancel(); <-done }()

	last := since     // the newest generation the caller's cache reflects
	var suspect int64 // a stored generation ahead of last at the previous check
	stale := false    // a reload failed: reload everything at the next check
	reloadAll := func() {
		gen, err := db.FeedGeneration(ctx)
		if err == nil {
			err = changed(ctx, FeedChange{All: true})
		}
		if err != nil {
			stale = true
			return
		}
		stale, suspect, last = false, 0, max(last, gen)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case n := <-notes:
			if n.gen <= last {
				continue
			}
			c := n.change
			if n.gen != last+1 {
				c = FeedChange{All: true} // one or more went unseen
			} else if n.instance == db.instance {
				last = n.gen // this instance's own render, in memory already
				continue
			}
			if err := changed(ctx, c); err != nil {
				stale = true
				continue
			}
			last = n.gen
		case <-connected:
			// Notifications sent while not listening are lost: compare.
			if gen, err := db.FeedGeneration(ctx); err != nil || gen > last {
				reloadAll()
			}
		case <-tick.C:
			gen, err := db.FeedGeneration(ctx)
			switch {
			case err != nil:
			case stale || (suspect > last && gen > last):
				reloadAll()
			case gen > last:
				suspect = gen // perhaps a notification on its way: look again next time
			default:
				suspect = 0
			}
		}
	}
}

// listenFeeds listens for feed cache notifications on a dedicated
// connection and passes them on, reconnecting with backoff when the
// connection fails, and signalling connected after each (re)connection.
func (db *DB) listenFeeds(ctx context.Context, notes chan<- feedNote, connected chan<- struct{}) {
	wait := listenRetryMin
	for ctx.Err() == nil {
		conn, err := db.dedicatedConn(ctx)
		if err == nil {
			if _, err = conn.Exec(ctx, `LISTEN `+feedChannel); err != nil {
				closeConn(conn)
			}
		}
		if err != nil {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			wait = min(wait*2, listenRetryMax)
			continue
		}
		wait = listenRetryMin
		select {
		case connected <- struct{}{}:
		default:
		}
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				break
			}
			note, ok := parseFeedNote(n.Payload)
			if !ok {
				continue
			}
			select {
			case notes <- note:
			case <-ctx.Done():
			}
		}
		closeConn(conn)
	}
}
