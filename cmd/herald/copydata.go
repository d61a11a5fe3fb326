package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"herald/feeds/pull"
	"herald/store"
	"herald/templates/text"
)

// runCopyData copies every row of one database into a new, empty one: an
// installation moving from SQLite to PostgreSQL (or back).
func runCopyData(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgFlag := newFlags("copy-data", stderr)
	from := fs.String("from", "", "the database to copy: a SQLite `file` or postgres:// URL (default: the config's database)")
	to := fs.String("to", "", "the new, empty database to copy into: a postgres:// `URL` or SQLite file")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *to == "" {
		return usageError("--to is required: the postgres:// URL (or SQLite file) to copy into")
	}
	if *from == "" {
		cfg, err := loadValidConfig(*cfgFlag)
		if err != nil {
			return err
		}
		*from = cfg.Database
	}
	for _, f := range []struct{ name, value string }{{"--from", *from}, {"--to", *to}} {
		if err := store.CheckDatabase(f.value); err != nil {
			return usageError("%s: %v", f.name, err)
		}
	}
	if *from == *to {
		return usageError("--from and --to name the same database")
	}
	if !store.IsPostgresURL(*from) {
		// Open would create an empty file; copying nothing helps nobody.
		if _, err := os.Stat(*from); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
	}
	fromName, toName := store.Redact(*from), store.Redact(*to)

	// Both are opened, so migrated to this version's schema, as any
	// command opens its database.
	src, err := store.Open(ctx, *from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := store.Open(ctx, *to)
	if err != nil {
		return err
	}
	defer dst.Close()

	fmt.Fprintf(stdout, "copying %s (%s) into %s (%s)\n", fromName, src.Engine(), toName, dst.Engine())
	start := time.Now()
	terminal := isTerminal(stderr)
	var bar *progress
	rep, err := store.Copy(ctx, src, dst, store.CopyOptions{
		PlainText: text.Plain,
		Progress: func(table string, done, total int64) {
			if bar == nil {
				bar = newProgress(stderr, terminal, fmt.Sprintf("%-24s", table))
			}
			bar.update(done, total)
			if done == total {
				bar.clear()
				bar = nil
				unit := "rows"
				if table == store.CopySearchIndex {
					unit = "releases indexed"
				}
				fmt.Fprintf(stdout, "  %-24s %10d %s\n", table, total, unit)
			}
		},
	})
	if bar != nil {
		bar.clear()
	}
	if err != nil {
		if errors.Is(err, store.ErrNotEmpty) {
			return fmt.Errorf("%s already holds data; copy-data writes only into a new, empty database (%w)", toName, err)
		}
		return fmt.Errorf("%w; nothing was written to %s", err, toName)
	}
	// Releases the source had not given plain text yet get it now, as
	// any start of Herald would give it them.
	n, err := pull.BackfillPlainText(ctx, dst)
	if err != nil {
		return fmt.Errorf("the copy is complete, but giving older releases their plain text failed (herald will retry at start): %w", err)
	}
	if n > 0 {
		fmt.Fprintf(stdout, "  gave %d releases stored by an earlier version their plain text\n", n)
	}
	fmt.Fprintf(stdout, "copied %d rows of %d tables in %s; row counts match on both sides\n",
		rep.Rows(), len(rep.Tables), time.Since(start).Round(time.Millisecond))
	return nil
}
