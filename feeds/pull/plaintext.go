package pull

import (
	"context"

	"herald/store"
	"herald/templates/text"
)

// PlainTextStore is what BackfillPlainText needs from the store.
type PlainTextStore interface {
	ReleasesWithoutPlainText(ctx context.Context, limit int) ([]store.Release, error)
	SetPlainText(ctx context.Context, texts []store.PlainText) error
}

// plainTextBatch bounds the releases read and written in one transaction.
const plainTextBatch = 500

// BackfillPlainText gives the store the plain text of the releases it holds
// without any (those stored before it kept plain text), read from their
// HTML as Normalize reads new entries, so that topic rules and search treat
// old and new releases alike. It returns how many releases it did; after the
// first run on a database there is nothing to do.
func BackfillPlainText(ctx context.Context, db PlainTextStore) (int, error) {
	done := 0
	for {
		rs, err := db.ReleasesWithoutPlainText(ctx, plainTextBatch)
		if err != nil || len(rs) == 0 {
			return done, err
		}
		texts := make([]store.PlainText, len(rs))
		for i, r := range rs {
			texts[i] = store.PlainText{ReleaseID: r.ID, Summary: text.Plain(r.Summary), Body: text.Plain(r.Body)}
		}
		if err := db.SetPlainText(ctx, texts); err != nil {
			return done, err
		}
		done += len(rs)
	}
}
