package publish

import (
	"context"
	"errors"
	"fmt"
	"time"

	"herald/store"
)

// Several instances share one PostgreSQL store, and any of them may
// render feeds. Each serves from its own memory, so each follows the
// others' renders: the store reports which documents changed (see
// store.WatchFeedCache) and the publisher reloads them, so every instance
// serves the same bytes with the same ETag.

// Follow keeps the feed cache in step with documents other instances
// render into the store, until ctx ends. every is how often the store's
// generation is compared as a fallback for a missed notification (5 s
// when zero). On SQLite it returns at once.
func (p *Publisher) Follow(ctx context.Context, every time.Duration) error {
	p.renderMu.Lock()
	since := p.generation
	p.renderMu.Unlock()
	return p.db.WatchFeedCache(ctx, since, every, p.reload)
}

// reload reads the changed documents from the store into the cache,
// with the archive states and department names a later render of this
// instance starts from.
func (p *Publisher) reload(ctx context.Context, c store.FeedChange) error {
	p.renderMu.Lock()
	defer p.renderMu.Unlock()
	archives, err := p.db.FeedArchives(ctx)
	if err != nil {
		return fmt.Errorf("feeds: reload: %w", err)
	}
	names, err := p.db.FeedMeta(ctx, renderDeptNamesMeta)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("feeds: reload: %w", err)
	}
	if c.All {
		docs, err := p.db.FeedDocs(ctx, false)
		if err != nil {
			return fmt.Errorf("feeds: reload: %w", err)
		}
		m := make(map[string]*cacheDoc, len(docs))
		for _, d := range docs {
			m[d.Path] = p.newCacheDoc(d)
		}
		p.cache.replace(m)
	} else {
		docs, err := p.db.FeedDocsAt(ctx, c.Paths)
		if err != nil {
			return fmt.Errorf("feeds: reload: %w", err)
		}
		found := make(map[string]bool, len(docs))
		changed := make([]*cacheDoc, 0, len(docs))
		for _, d := range docs {
			found[d.Path] = true
			changed = append(changed, p.newCacheDoc(d))
		}
		var removed []string
		for _, path := range c.Paths {
			if !found[path] {
				removed = append(removed, path)
			}
		}
		p.cache.apply(changed, removed)
	}
	p.archives = make(map[string]store.FeedArchive, len(archives))
	for _, a := range archives {
		p.archives[a.Key] = a
	}
	p.deptNames = names
	return nil
}
