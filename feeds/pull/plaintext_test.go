package pull_test

import (
	"context"
	"fmt"
	"testing"

	"herald/feeds/pull"
	"herald/store"
)

// plainTextStore holds releases of which some still lack plain text, and
// hands them out the way the store does: lowest id first, up to a limit.
type plainTextStore struct {
	releases []store.Release
	texts    map[int64]store.PlainText
	batches  int
}

func (s *plainTextStore) ReleasesWithoutPlainText(_ context.Context, limit int) ([]store.Release, error) {
	var out []store.Release
	for _, r := range s.releases {
		if _, done := s.texts[r.ID]; !done && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *plainTextStore) SetPlainText(_ context.Context, texts []store.PlainText) error {
	s.batches++
	for _, t := range texts {
		s.texts[t.ReleaseID] = t
	}
	return nil
}

func TestBackfillPlainText(t *testing.T) {
	db := &plainTextStore{texts: map[int64]store.PlainText{}}
	for i := 1; i <= 1201; i++ {
		db.releases = append(db.releases, store.Release{ID: int64(i),
			Summary: fmt.Sprintf("<p>Joint action on <strong>modern slavery</strong>, notice %d.</p>", i),
			Body:    `<p>Ministers met.</p><script>track()</script><p>Read the <a href="https://example.org/plan">plan</a>.</p>`})
	}
	n, err := pull.BackfillPlainText(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1201 || len(db.texts) != 1201 || db.batches != 3 {
		t.Fatalf("did %d releases (%d stored) in %d batches, want 1201 in 3", n, len(db.texts), db.batches)
	}
	got := db.texts[7]
	if got.Summary != "Joint action on modern slavery, notice 7." || got.Body != "Ministers met. Read the plan." {
		t.Fatalf("release 7: %+v", got)
	}
	if n, err := pull.BackfillPlainText(context.Background(), db); n != 0 || err != nil {
		t.Fatalf("second run did %d (%v), want nothing to do", n, err)
	}
}
