package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"
	"unicode"

	"modernc.org/sqlite"
)

func init() {
	// The search index (migration 0006) is fed through herald_strip_tags so
	// that tag names and link targets of the sanitised HTML are not words a
	// visitor can find. The driver keeps registered functions for every
	// connection it opens, so this runs once, before any Open.
	sqlite.MustRegisterDeterministicScalarFunction("herald_strip_tags", 1, searchStripTags)
}

func searchStripTags(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	switch v := args[0].(type) {
	case nil:
		return "", nil
	case string:
		return StripTags(v), nil
	case []byte:
		return StripTags(string(v)), nil
	default:
		return fmt.Sprint(v), nil
	}
}

// SearchQuery selects releases by full-text search over their titles,
// summaries and bodies, optionally within one department and one topic.
type SearchQuery struct {
	// Text is what the visitor typed. Words must all occur; "quoted words"
	// must occur together; a word ending in * matches as a prefix.
	Text       string
	Department string // slug
	Topic      string // slug
	Limit      int    // default 20
	Offset     int
}

// SearchResult is one page of search results, newest first, and how many
// releases match in all.
type SearchResult struct {
	Releases []Release
	Total    int
}

// searchMaxTerms bounds the work one query can ask of the index.
const searchMaxTerms = 16

// MatchExpression turns typed text into an FTS5 query that cannot be a
// syntax error: every term is reduced to its letters and digits and quoted,
// so operators, brackets and stray quotes in the input are plain text. It
// returns "" when the text has nothing to search for.
func MatchExpression(text string) string {
	if len(text) > 500 {
		text = text[:500]
	}
	var terms []string
	add := func(words []string, prefix bool) {
		if len(words) == 0 || len(terms) >= searchMaxTerms {
			return
		}
		t := `"` + strings.Join(words, " ") + `"`
		if prefix {
			t += "*"
		}
		terms = append(terms, t)
	}
	for i, part := range strings.Split(text, `"`) {
		if i%2 == 1 {
			add(searchWords(part), false)
			continue
		}
		for _, f := range strings.Fields(part) {
			w := searchWords(f)
			add(w, strings.HasSuffix(f, "*") && len(w) == 1)
		}
	}
	return strings.Join(terms, " ")
}

// searchWords splits s into runs of letters, marks and digits, the
// characters the index's tokenizer keeps.
func searchWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
	})
}

// SearchReleases returns the releases matching q, newest published first.
// With no search terms it lists the releases of q's department and topic.
func (db *DB) SearchReleases(ctx context.Context, q SearchQuery) (SearchResult, error) {
	if q.Limit <= 0 {
		q.Limit = 20
	}
	var where []string
	var args []any
	if expr := MatchExpression(q.Text); expr != "" {
		where = append(where, `r.id IN (SELECT rowid FROM releases_fts WHERE releases_fts MATCH ?)`)
		args = append(args, expr)
	}
	if q.Department != "" {
		where = append(where, `d.slug = ?`)
		args = append(args, q.Department)
	}
	if q.Topic != "" {
		where = append(where, `r.id IN (SELECT rt.release_id FROM release_topics rt JOIN topics t ON t.id = rt.topic_id WHERE t.slug = ?)`)
		args = append(args, q.Topic)
	}
	cond := ""
	if len(where) > 0 {
		cond = ` WHERE ` + strings.Join(where, ` AND `)
	}
	var res SearchResult
	err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM releases r JOIN departments d ON d.id = r.department_id`+cond, args...).Scan(&res.Total)
	if err != nil {
		return SearchResult{}, fmt.Errorf("store: search %q: %w", q.Text, err)
	}
	if res.Total == 0 || q.Offset >= res.Total {
		res.Releases = []Release{}
		return res, nil
	}
	res.Releases, err = db.queryReleases(ctx, `SELECT `+releaseCols+releaseFrom+cond+`
		ORDER BY r.published_at DESC, r.id DESC LIMIT ? OFFSET ?`, append(args, q.Limit, q.Offset)...)
	if err != nil {
		return SearchResult{}, fmt.Errorf("store: search %q: %w", q.Text, err)
	}
	return res, nil
}
