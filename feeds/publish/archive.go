package publish

import (
	"context"
	"fmt"
	"strings"

	"herald/store"
)

// RFC 5005 archives. A feed's releases, taken in the order Herald first
// stored them (their ids), are cut into pages of ArchiveSize; page 1 holds
// the oldest. A page is written once, when it fills, and never changes
// after: new releases only ever land after the last full page. Releases
// not yet on a full page stay in the current feed, which links its newest
// page as prev-archive, so current feed plus archive always hold every
// release. Archive pages are Atom only (RFC 5005 is defined for Atom), and
// carry summaries and links rather than full text, which keeps a large
// archive small.
//
// Two things can change older membership: a topic whose rule changes is
// re-tagged across the whole archive, and an edited release can enter or
// leave a topic. A fingerprint of each topic's full pages (count and sum of
// ids) notices both and the topic's pages are rebuilt. Departments and
// "all" only ever grow at the end.

// archiveUpdate brings a feed's archive up to date. It returns the archive
// pages to store, the new paging state, the releases after the last full
// page (which the current feed must show), and the paths of pages that no
// longer exist.
func (p *Publisher) archiveUpdate(ctx context.Context, key string, f *renderFeed, full bool) (pages []store.FeedDoc, st store.FeedArchive, tail []store.Release, removed []string, err error) {
	size := p.cfg.ArchiveSize
	st, ok := p.archives[key]
	oldPages := st.Pages
	rebuild := full || !ok || st.PageSize != size
	if !rebuild && st.Pages > 0 && strings.HasPrefix(key, "topic:") {
		n, sum, err := p.db.FeedMembers(ctx, key, st.LastID)
		if err != nil {
			return nil, st, nil, nil, fmt.Errorf("feeds: archive of %s: %w", key, err)
		}
		rebuild = n != st.Pages*size || sum != st.IDSum
	}
	if rebuild {
		st = store.FeedArchive{Key: key, PageSize: size}
	}
	for {
		rs, err := p.db.FeedReleasesAfter(ctx, key, st.LastID, size)
		if err != nil {
			return nil, st, nil, nil, fmt.Errorf("feeds: archive of %s: %w", key, err)
		}
		if len(rs) < size {
			tail = rs
			break
		}
		st.Pages++
		for _, r := range rs {
			st.IDSum += r.ID
		}
		st.LastID = rs[len(rs)-1].ID
		doc, err := p.archivePage(key, f, st.Pages, rs)
		if err != nil {
			return nil, st, nil, nil, err
		}
		pages = append(pages, doc)
	}
	if rebuild {
		// Pages beyond the rebuilt count, known from the state or the cache.
		last := oldPages
		for _, d := range p.cache.byKey(key) {
			if d.kind == store.FeedKindArchive && d.page > last {
				last = d.page
			}
		}
		for n := st.Pages + 1; n <= last; n++ {
			removed = append(removed, renderArchivePath(key, n))
		}
	}
	return pages, st, tail, removed, nil
}

// archivePage renders page n of a feed's archive from its releases, oldest
// first as stored; the page lists them newest first like any feed.
func (p *Publisher) archivePage(key string, head *renderFeed, n int, rs []store.Release) (store.FeedDoc, error) {
	f := *head
	f.entries = p.renderEntries(rs, false)
	for i, j := 0, len(f.entries)-1; i < j; i, j = i+1, j-1 {
		f.entries[i], f.entries[j] = f.entries[j], f.entries[i]
	}
	f.updated = renderNewest(f.entries, f.fallback)
	f.page = n
	f.current = p.base + f.path + ".atom"
	f.prevArchive = ""
	if n > 1 {
		f.prevArchive = p.base + renderArchivePath(key, n-1)
	}
	// The next page's address is known before it exists; linking it always
	// keeps this page unchanged when the next one fills.
	f.nextArchive = p.base + renderArchivePath(key, n+1)
	body, err := p.renderAtom(&f)
	if err != nil {
		return store.FeedDoc{}, fmt.Errorf("feeds: render %s archive page %d: %w", key, n, err)
	}
	return renderDoc(renderArchivePath(key, n), key, store.FeedKindArchive, "atom", n, body)
}
