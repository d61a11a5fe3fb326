package publish

import (
	"context"
	"fmt"
	"strings"

	"herald/store"
)

// RFC 5005 archives. A feed's releases, taken in the order Herald first
// stored them (their ids), are cut into pages of ArchiveSize; page 1 holds
// the oldest. A page is written when it fills, and its set of entries
// never changes after: new releases only ever land after the last full
// page. The newest page links no next-archive until the next page fills,
// when it is written once more to gain that link, so every link resolves.
// Releases not yet on a full page (fewer than ArchiveSize) are always in
// the current feed, which links the newest page as prev-archive: walking
// from the current feed to page 1 meets every release, each on exactly one
// page. The current feed also shows the newest releases, which are on
// pages too; an archive page carries the same full content as the current
// feed, so the copies agree.
//
// Pages exist in Atom (RFC 5005 is defined for Atom) and in JSON Feed,
// whose next_url leads from the current feed to the newest page and on to
// older ones. RSS has none: RFC 5005 only sketches RSS use, the clients
// that walk archives read Atom, and each format's pages cost storage.
//
// Two things can change older membership: a topic whose rule changes is
// re-tagged across the whole archive, and an edited release can enter or
// leave a topic. A fingerprint of each topic's full pages (count and sum of
// ids) notices both and the topic's pages are rebuilt. Departments and
// "all" only ever grow at the end.

// archiveFormats are the formats archive pages are rendered in.
var archiveFormats = []string{"atom", "json"}

// archiveUpdate brings a feed's archive up to date. It returns the archive
// pages to store, the new paging state, the releases after the last full
// page (which the current feed must show), and the paths of pages that no
// longer exist. after lists a feed's releases as store.FeedReleasesAfter
// does; any list of a full page's worth must hold them in full.
func (p *Publisher) archiveUpdate(ctx context.Context, key string, f *renderFeed, full bool,
	after func(ctx context.Context, key string, afterID int64, limit int) ([]store.Release, error)) (pages []store.FeedDoc, st store.FeedArchive, tail []store.Release, removed []string, err error) {
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
	// A page is rendered once the next is known to exist or not, so
	// pending holds the newest full page found so far.
	var pending []store.Release
	render := func(n int, rs []store.Release, hasNext bool) error {
		docs, err := p.archivePage(key, f, n, rs, hasNext)
		pages = append(pages, docs...)
		return err
	}
	for {
		rs, err := after(ctx, key, st.LastID, size)
		if err != nil {
			return nil, st, nil, nil, fmt.Errorf("feeds: archive of %s: %w", key, err)
		}
		if len(rs) < size {
			tail = rs
			break
		}
		if pending == nil && st.Pages > 0 {
			// The page before this new one was stored by an earlier
			// render: read it back to add its next-archive link.
			if pending, err = p.db.FeedReleasesThrough(ctx, key, st.LastID, size); err != nil {
				return nil, st, nil, nil, fmt.Errorf("feeds: archive of %s: %w", key, err)
			}
		}
		if pending != nil {
			if err := render(st.Pages, pending, true); err != nil {
				return nil, st, nil, nil, err
			}
		}
		st.Pages++
		for _, r := range rs {
			st.IDSum += r.ID
		}
		st.LastID = rs[len(rs)-1].ID
		pending = rs
	}
	if pending != nil && (rebuild || st.Pages > oldPages) {
		if err := render(st.Pages, pending, false); err != nil {
			return nil, st, nil, nil, err
		}
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
			for _, format := range archiveFormats {
				removed = append(removed, renderArchivePath(key, n, format))
			}
		}
	}
	return pages, st, tail, removed, nil
}

// archivePage renders page n of a feed's archive from its releases, oldest
// first as stored, in every archive format; the page lists them newest
// first like any feed. hasNext says whether page n+1 exists.
func (p *Publisher) archivePage(key string, head *renderFeed, n int, rs []store.Release, hasNext bool) ([]store.FeedDoc, error) {
	f := *head
	f.entries = p.renderEntries(rs)
	for i, j := 0, len(f.entries)-1; i < j; i, j = i+1, j-1 {
		f.entries[i], f.entries[j] = f.entries[j], f.entries[i]
	}
	f.updated = renderNewest(f.entries, f.fallback)
	f.page = n
	f.prevArchive, f.nextArchive = 0, 0
	if n > 1 {
		f.prevArchive = n - 1
	}
	if hasNext {
		f.nextArchive = n + 1
	}
	docs := make([]store.FeedDoc, 0, len(archiveFormats))
	for _, format := range archiveFormats {
		body, _, err := p.renderFormat(format, &f)
		if err != nil {
			return nil, fmt.Errorf("feeds: render %s archive page %d as %s: %w", key, n, format, err)
		}
		d, err := renderDoc(renderArchivePath(key, n, format), key, store.FeedKindArchive, format, n, body)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d)
	}
	return docs, nil
}
