package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// searchDoc is what the search index holds for one release: its title and
// the plain text of its summary and body, which the pull side makes.
type searchDoc struct {
	id                   int64
	title, summary, body string
}

// searchIndex writes releases into the search index in a transaction: on
// SQLite the FTS5 table of migration 0006, on PostgreSQL a tsvector per
// release (the title weighted above the rest). It writes many releases
// with each statement.
type searchIndex struct {
	ins, del *multiRow
	// fold strips diacritics before PostgreSQL indexes the text, as
	// SQLite's tokenizer does (remove_diacritics 2).
	fold bool
}

func (db *DB) newSearchIndex(tx *sql.Tx) *searchIndex {
	insRow := db.pick(`(?, ?, ?, ?)`,
		`(?, setweight(to_tsvector('simple', ?), 'A') || to_tsvector('simple', ?) || to_tsvector('simple', ?))`)
	ins := db.pick(`INSERT INTO releases_fts (rowid, title, summary, body) VALUES `,
		`INSERT INTO releases_search (release_id, doc) VALUES `)
	del := db.pick(`DELETE FROM releases_fts WHERE rowid IN (`, `DELETE FROM releases_search WHERE release_id IN (`)
	x := &searchIndex{
		ins:  db.newMultiRow(tx, 4, func(k int) string { return ins + valuesList(insRow, k) }),
		del:  db.newMultiRow(tx, 1, func(k int) string { return del + placeholders(k) + `)` }),
		fold: db.engine == Postgres,
	}
	if db.engine == SQLite {
		// One release a statement, prepared once: FTS5 writes what it
		// holds in memory out to a new segment at the start of every
		// statement that may change several rows, so batches would leave
		// many small segments to merge.
		x.ins.rows = 1
	}
	return x
}

// add indexes releases the index does not hold yet.
func (x *searchIndex) add(ctx context.Context, docs []searchDoc) error {
	args := make([]any, 0, 4*len(docs))
	for _, d := range docs {
		if x.fold {
			d.title, d.summary, d.body = FoldDiacritics(d.title), FoldDiacritics(d.summary), FoldDiacritics(d.body)
		}
		args = append(args, d.id, d.title, d.summary, d.body)
	}
	return x.ins.exec(ctx, args)
}

// remove drops releases from the index, whether it holds them or not.
func (x *searchIndex) remove(ctx context.Context, ids []int64) error {
	return x.del.exec(ctx, int64Args(ids))
}

func (x *searchIndex) close() {
	x.ins.close()
	x.del.close()
}

// PlainText is the plain text of one release's summary and body, read from
// their HTML by the pull side.
type PlainText struct {
	ReleaseID     int64
	Summary, Body string
}

// ReleasesWithoutPlainText returns up to limit releases, lowest id first,
// whose plain text the store has not been given: those stored before it
// kept any (migration 0008). Until they get it, topic rules match their
// titles only and search finds them as an older Herald indexed them.
func (db *DB) ReleasesWithoutPlainText(ctx context.Context, limit int) ([]Release, error) {
	rs, err := db.queryReleases(ctx, `SELECT `+releaseCols+releaseFrom+` WHERE r.plain_summary IS NULL ORDER BY r.id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: releases without plain text: %w", err)
	}
	return rs, nil
}

// SetPlainText records the plain text of releases that had none and indexes
// them for search, in one transaction. A release that was edited since it
// was listed has come with its own text, and is left alone.
func (db *DB) SetPlainText(ctx context.Context, texts []PlainText) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		set, err := db.txPrepared(ctx, tx, `UPDATE releases SET plain_summary = ? WHERE id = ? AND plain_summary IS NULL
			RETURNING title`)
		if err != nil {
			return err
		}
		defer set.Close()
		var docs []searchDoc
		var ids []int64
		for _, t := range texts {
			var title string
			err := set.QueryRowContext(ctx, t.Summary, t.ReleaseID).Scan(&title)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			docs = append(docs, searchDoc{t.ReleaseID, title, t.Summary, t.Body})
			ids = append(ids, t.ReleaseID)
		}
		// Indexed again with the text: what the index held for them goes.
		index := db.newSearchIndex(tx)
		defer index.close()
		if err := index.remove(ctx, ids); err != nil {
			return err
		}
		return index.add(ctx, docs)
	})
	if err != nil {
		return fmt.Errorf("store: set plain text: %w", err)
	}
	return nil
}

// SearchQuery selects releases by full-text search over their titles,
// summaries and bodies, optionally within one department, one topic and
// one document type.
type SearchQuery struct {
	// Text is what the visitor typed. Words must all occur; "quoted words"
	// must occur together; a word ending in * matches as a prefix.
	Text       string
	Department string // slug
	Topic      string // slug
	// Type is a document type (press_release, "Press release"): releases
	// carrying it among their categories, compared as CategoryKey does.
	Type   string
	Limit  int // default 20
	Offset int
}

// SearchResult is one page of search results, newest first, and how many
// releases match in all.
type SearchResult struct {
	Releases []Release
	Total    int
}

// SearchMaxTerms bounds the work one query can ask of the index: terms
// past it are left out.
const SearchMaxTerms = 16

// SearchMaxBytes bounds the text a query is read from: what comes after is
// left out.
const SearchMaxBytes = 500

// SearchTerm is one thing a search asks for: a word, a prefix (one word
// typed with a trailing *) or a phrase ("quoted words").
type SearchTerm struct {
	Words  []string
	Prefix bool
}

// SearchTerms returns the terms a search reads in text, as searching it
// does.
func SearchTerms(text string) []SearchTerm { return searchTerms(text) }

// MatchExpression turns typed text into an FTS5 query that cannot be a
// syntax error: every term is reduced to its letters and digits and quoted,
// so operators, brackets and stray quotes in the input are plain text. It
// returns "" when the text has nothing to search for.
func MatchExpression(text string) string {
	var terms []string
	for _, t := range searchTerms(text) {
		q := `"` + strings.Join(t.Words, " ") + `"`
		if t.Prefix {
			q += "*"
		}
		terms = append(terms, q)
	}
	return strings.Join(terms, " ")
}

// tsQuery is MatchExpression for PostgreSQL: the same terms as a
// to_tsquery expression (phrases with <->, prefixes with :*, all terms
// required). websearch_to_tsquery would read the typed text safely too,
// but has no prefix search; the terms here hold letters and digits only,
// so the expression cannot be a syntax error either.
func tsQuery(text string) string {
	var terms []string
	for _, t := range searchTerms(FoldDiacritics(text)) {
		q := strings.Join(t.Words, " <-> ")
		if t.Prefix {
			q += ":*"
		}
		terms = append(terms, q)
	}
	return strings.Join(terms, " & ")
}

// FoldDiacritics drops the marks that decompose from letters (é → e), as
// SQLite's FTS5 tokenizer does with remove_diacritics 2, so that both
// engines find "cafe" in "café" and the other way round. PostgreSQL's
// unaccent would need an extension an operator may not be allowed to
// create.
func FoldDiacritics(s string) string {
	// Text in normal form with no mark to remove is its own fold: most
	// text beyond ASCII has a letter or a sign like £ or é, not a
	// decomposed mark, and is checked without copying.
	if isASCII(s) || (utf8.ValidString(s) && norm.NFD.IsNormalString(s) && norm.NFC.IsNormalString(s) && !strings.ContainsFunc(s, isMn)) {
		return s
	}
	out, _, err := transform.String(transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC), s)
	if err != nil {
		return s
	}
	return out
}

func isMn(r rune) bool { return unicode.Is(unicode.Mn, r) }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// searchTerms reads what a visitor typed: "quoted words" are a phrase,
// other words stand alone, a lone word ending in * is a prefix. It reads
// up to SearchMaxBytes of text and keeps up to SearchMaxTerms terms.
func searchTerms(text string) []SearchTerm {
	if len(text) > SearchMaxBytes {
		text = text[:SearchMaxBytes]
	}
	return scanSearchTerms(text, SearchMaxTerms)
}

// scanSearchTerms reads up to max terms from text (all with max < 0).
func scanSearchTerms(text string, max int) []SearchTerm {
	var terms []SearchTerm
	add := func(words []string, prefix bool) {
		if len(words) == 0 || (max >= 0 && len(terms) >= max) {
			return
		}
		terms = append(terms, SearchTerm{words, prefix})
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
	return terms
}

// SearchTermCount returns how many terms text holds, all of them: a query
// with more than SearchMaxTerms, or longer than SearchMaxBytes, is not
// searched whole.
func SearchTermCount(text string) int { return len(scanSearchTerms(text, -1)) }

// NormalizeSearchText returns the form a query is stored in: its terms as
// searchTerms reads them, written out again one way (phrases in quotes,
// prefixes with *, one space between terms), in lower case where that
// cannot change what the index finds (letters on which the engines and Go
// agree: searchSafe). Searching it finds exactly what the text finds, and
// normalising it again changes nothing. "" means nothing to search for.
func NormalizeSearchText(text string) string {
	var b strings.Builder
	for _, t := range searchTerms(text) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		quote := len(t.Words) > 1
		if quote {
			b.WriteByte('"')
		}
		for i, w := range t.Words {
			if i > 0 {
				b.WriteByte(' ')
			}
			for _, r := range w {
				if searchSafe(r) {
					r = unicode.ToLower(r)
				}
				b.WriteRune(r)
			}
		}
		if quote {
			b.WriteByte('"')
		}
		if t.Prefix {
			b.WriteByte('*')
		}
	}
	return b.String()
}

// CategoryKey is the form in which categories and document types are
// compared: lower case, words joined by "_", where "_", "-" and spaces
// all separate words, so that a slug (press_release, hm-treasury) and the
// label sources give (Press release, HM Treasury) are one key.
func CategoryKey(c string) string {
	return strings.ToLower(strings.Join(strings.FieldsFunc(c, func(r rune) bool {
		return r == '_' || r == '-' || unicode.IsSpace(r)
	}), "_"))
}

// categoryKeys is what releases.category_keys holds for categories: each
// key between line feeds, which no category contains (text.Clean drops
// control characters), so that one key is found with a substring search.
func categoryKeys(categories []string) string {
	if len(categories) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('\n')
	for _, c := range categories {
		if k := CategoryKey(c); k != "" {
			b.WriteString(k)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// searchWords splits s into runs of letters, marks and digits, the
// characters the index's tokenizer keeps.
func searchWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
	})
}

// searchWhere returns the conditions, on releases r joined with their
// departments d, that select what q finds, and their arguments. It is the
// one definition of what a search finds: the search page lists with it
// (release 0: every match), and a release arriving is matched against a
// stored search with it (release set: that one release, looked up in the
// index by its id instead of listing every match).
func (db *DB) searchWhere(q SearchQuery, release int64) ([]string, []any) {
	var where []string
	var args []any
	if release != 0 {
		where = append(where, `r.id = ?`)
		args = append(args, release)
	}
	if expr := MatchExpression(q.Text); expr != "" {
		switch {
		case db.engine == Postgres && release != 0:
			where = append(where, `EXISTS (SELECT 1 FROM releases_search WHERE release_id = ? AND doc @@ to_tsquery('simple', ?))`)
			args = append(args, release, tsQuery(q.Text))
		case db.engine == Postgres:
			where = append(where, `r.id IN (SELECT release_id FROM releases_search WHERE doc @@ to_tsquery('simple', ?))`)
			args = append(args, tsQuery(q.Text))
		case release != 0:
			where = append(where, `EXISTS (SELECT 1 FROM releases_fts WHERE releases_fts MATCH ? AND rowid = ?)`)
			args = append(args, expr, release)
		default:
			where = append(where, `r.id IN (SELECT rowid FROM releases_fts WHERE releases_fts MATCH ?)`)
			args = append(args, expr)
		}
	}
	if q.Department != "" {
		where = append(where, `d.slug = ?`)
		args = append(args, q.Department)
	}
	if q.Topic != "" {
		if release != 0 {
			where = append(where, `EXISTS (SELECT 1 FROM release_topics rt JOIN topics t ON t.id = rt.topic_id WHERE rt.release_id = r.id AND t.slug = ?)`)
		} else {
			where = append(where, `r.id IN (SELECT rt.release_id FROM release_topics rt JOIN topics t ON t.id = rt.topic_id WHERE t.slug = ?)`)
		}
		args = append(args, q.Topic)
	}
	if q.Type != "" {
		where = append(where, db.pick(`instr(r.category_keys, ?) > 0`, `strpos(r.category_keys, ?) > 0`))
		args = append(args, "\n"+CategoryKey(q.Type)+"\n")
	}
	return where, args
}

// SearchReleases returns the releases matching q, newest published first.
// With no search terms it lists the releases of q's department, topic and
// document type.
func (db *DB) SearchReleases(ctx context.Context, q SearchQuery) (SearchResult, error) {
	if q.Limit <= 0 {
		q.Limit = 20
	}
	where, args := db.searchWhere(q, 0)
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

// DocumentTypes lists the document types sources have declared
// (press_release, news_story...), as they declared them, in name order.
func (db *DB) DocumentTypes(ctx context.Context) ([]string, error) {
	out, err := queryStrings(ctx, db.db, `SELECT name FROM document_types ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: document types: %w", err)
	}
	return out, nil
}

// fillCategoryKeys gives the releases stored before the store kept
// category keys (migration 0011) theirs, a thousand per transaction. After
// the first run on a database there is nothing to do, which one look-up
// in a partial index finds.
func (db *DB) fillCategoryKeys(ctx context.Context) error {
	for {
		n := 0
		err := db.tx(ctx, func(tx *sql.Tx) error {
			n = 0
			rows, err := tx.QueryContext(ctx, `SELECT id, categories FROM releases WHERE category_keys IS NULL ORDER BY id LIMIT 1000`)
			if err != nil {
				return err
			}
			type row struct {
				id   int64
				keys string
			}
			var todo []row
			for rows.Next() {
				var r row
				var cats string
				if err := rows.Scan(&r.id, &cats); err != nil {
					rows.Close()
					return err
				}
				r.keys = categoryKeys(decodeCategories(cats))
				todo = append(todo, r)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, r := range todo {
				if _, err := tx.ExecContext(ctx, `UPDATE releases SET category_keys = ? WHERE id = ?`, r.keys, r.id); err != nil {
					return err
				}
			}
			n = len(todo)
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: category keys of releases stored before them: %w", err)
		}
		if n == 0 {
			return nil
		}
	}
}
