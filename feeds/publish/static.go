package publish

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// WriteStatic writes every document of the feed cache below dir, laid out
// like the URLs below /feeds/ (all.atom, departments/home-office.rss,
// topics/policing/archive/1.atom, and feeds.opml), each with its gzip copy
// beside it as NAME.gz, so a web server with gzip_static (or object
// storage behind a CDN) serves the same bytes. Each file is written to a
// temporary name and renamed, so a reader never sees half a file, and
// dated with the document's Last-Modified. Call it after Warm or a render.
func (p *Publisher) WriteStatic(ctx context.Context, dir string) error {
	docs := p.cache.all()
	slices.SortFunc(docs, func(a, b *cacheDoc) int { return strings.Compare(a.path, b.path) })
	for _, d := range docs {
		if err := ctx.Err(); err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(d.path, "/feeds/"), "/")
		if d.path == opmlPath {
			rel = "feeds.opml"
		}
		name := filepath.Join(dir, filepath.FromSlash(rel))
		body, err := d.cacheBody()
		if err != nil {
			return fmt.Errorf("feeds: write %s: %w", name, err)
		}
		if err := staticWrite(name, body, d); err != nil {
			return err
		}
		if err := staticWrite(name+".gz", d.gzipped().body, d); err != nil {
			return err
		}
	}
	return nil
}

func staticWrite(name string, body []byte, d *cacheDoc) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("feeds: write %s: %w", name, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), ".herald-*")
	if err != nil {
		return fmt.Errorf("feeds: write %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(body); err != nil {
		tmp.Close()
		return fmt.Errorf("feeds: write %s: %w", name, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("feeds: write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("feeds: write %s: %w", name, err)
	}
	if err := os.Chtimes(tmp.Name(), d.lastModified, d.lastModified); err != nil {
		return fmt.Errorf("feeds: write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("feeds: write %s: %w", name, err)
	}
	return nil
}
