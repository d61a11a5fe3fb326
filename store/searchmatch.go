package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Matching releases against followed searches as they are stored.
//
// A stored search must find on arrival exactly what the search page finds
// for it: the engine's own answer (searchWhere with the release's id:
// FTS5 or tsvector, plus the filters), for one release at a time. To keep
// that from costing one query per stored search for every release, the
// followed searches are indexed in memory by one token that every release
// they match must contain (a word of a term, or a prefix), as topic
// keywords are indexed by feeds/rules. A release's own tokens pick the
// candidates, which must then hold every other token their search needs
// and meet its department and type filters. The engine finds a one-token
// term in a release exactly when the release's tokens, which are the
// engine's own, hold it: a candidate whose terms are all one token is
// settled there. Phrases (the positions of their tokens) and topic
// filters (the release's tags) are asked of the engine. A release that
// matches no search costs its tokens' look-ups, however many searches are
// stored.
//
// Tokens must be the engine's, or a candidate could be missed: SQLite's
// tokenizer and Go's unicode tables disagree on some characters
// (superscript digits, some Greek and Cyrillic letters, combining marks
// outside the common set). Text made only of characters on which they
// agree (searchSafe) is tokenized in Go; other text is given to a scratch
// FTS5 table with the same tokenizer, whose vocabulary lists its tokens.
// On PostgreSQL the tokens are the lexemes of the release's stored
// tsvector, and those to_tsvector gives a search's words.

// searchSafe reports whether Go reads r exactly as SQLite's FTS5 tokenizer
// (unicode61, remove_diacritics 2) does: as a separator, or as a token
// character folded to the same lower-case letter without diacritics. The
// ranges are ASCII, Latin-1, Latin Extended-A, -B and Additional, general
// punctuation and currency signs, less the characters on which they
// disagree; TestSearchSafeAgreesWithFTS5 checks each against SQLite.
func searchSafe(r rune) bool {
	switch {
	case r < 0x00b2:
		return true
	case r < 0x0250:
		switch r {
		case 0x00b2, 0x00b3, 0x00b5, 0x00b9, 0x00bc, 0x00bd, 0x00be, // superscripts, micro, fractions
			0x017f,                         // long s
			0x01e0, 0x01e1, 0x01e2, 0x01e3, // a and æ with two marks
			0x01ee, 0x01ef, 0x01fc, 0x01fd, 0x01fe, 0x01ff:
			return false
		}
		return true
	case r >= 0x1e00 && r <= 0x1eff:
		return r != 0x1e9b
	case r >= 0x2000 && r <= 0x2064, r >= 0x20a0 && r <= 0x20b9:
		return true
	}
	return false
}

// searchSafeText reports whether every character of s is searchSafe.
func searchSafeText(s string) bool {
	for _, r := range s {
		if !searchSafe(r) {
			return false
		}
	}
	return true
}

// goTokens returns the distinct tokens of s as the index keeps them, for
// text that is searchSafe. Such text has no combining marks, so its words
// are the same before and after diacritics are folded, and only the
// words with letters outside ASCII need folding.
func goTokens(s string) []string {
	words := searchWords(s)
	for i, w := range words {
		if !isASCII(w) {
			w = FoldDiacritics(w)
		}
		words[i] = strings.ToLower(w)
	}
	slices.Sort(words)
	return slices.Compact(words)
}

// scratchTokens returns the distinct tokens SQLite's tokenizer makes of
// text, read from a temporary FTS5 table of the connection tx holds.
func scratchTokens(ctx context.Context, tx *sql.Tx, text string) ([]string, error) {
	for _, q := range []string{
		`CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_tokens USING fts5(t, tokenize = 'unicode61 remove_diacritics 2')`,
		`CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_tokens_vocab USING fts5vocab(temp, search_tokens, 'instance')`,
		`DELETE FROM temp.search_tokens`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return nil, err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO temp.search_tokens (rowid, t) VALUES (1, ?)`, text); err != nil {
		return nil, err
	}
	out, err := queryStrings(ctx, tx, `SELECT DISTINCT term FROM temp.search_tokens_vocab`)
	if err != nil {
		return nil, err
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM temp.search_tokens`)
	return out, err
}

// engineTokens returns, for each of texts, its distinct tokens as the
// engine indexes them, sorted.
func (db *DB) engineTokens(ctx context.Context, tx *sql.Tx, texts []string) ([][]string, error) {
	out := make([][]string, len(texts))
	if db.engine != Postgres {
		for i, t := range texts {
			if searchSafeText(t) {
				out[i] = goTokens(t)
				continue
			}
			toks, err := scratchTokens(ctx, tx, t)
			if err != nil {
				return nil, err
			}
			slices.Sort(toks)
			out[i] = toks
		}
		return out, nil
	}
	args := make([]any, 0, 2*len(texts))
	for i, t := range texts {
		args = append(args, i, FoldDiacritics(t))
	}
	lex := db.newMultiRow(tx, 2, func(k int) string {
		return `SELECT w.i, u.lexeme FROM (VALUES ` + valuesList(`(CAST(? AS BIGINT), CAST(? AS TEXT))`, k) + `) AS w (i, t)
			CROSS JOIN LATERAL unnest(to_tsvector('simple', w.t)) u`
	})
	defer lex.close()
	err := lex.query(ctx, args, func(rows *sql.Rows) error {
		var i int
		var lexeme string
		if err := rows.Scan(&i, &lexeme); err != nil {
			return err
		}
		out[i] = append(out[i], lexeme)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		slices.Sort(out[i])
		out[i] = slices.Compact(out[i])
	}
	return out, nil
}

// releaseTokens returns the distinct tokens the index holds for each of
// docs, which it must already hold, sorted.
func (db *DB) releaseTokens(ctx context.Context, tx *sql.Tx, docs []searchDoc) ([][]string, error) {
	if db.engine != Postgres {
		texts := make([]string, len(docs))
		for i, d := range docs {
			texts[i] = d.title + "\n" + d.summary + "\n" + d.body
		}
		return db.engineTokens(ctx, tx, texts)
	}
	out := make([][]string, len(docs))
	at := make(map[int64]int, len(docs))
	args := make([]any, len(docs))
	for i, d := range docs {
		at[d.id] = i
		args[i] = d.id
	}
	lex := db.newMultiRow(tx, 1, func(k int) string {
		return `SELECT rs.release_id, u.lexeme FROM releases_search rs CROSS JOIN LATERAL unnest(rs.doc) u
			WHERE rs.release_id IN (` + placeholders(k) + `)`
	})
	defer lex.close()
	err := lex.query(ctx, args, func(rows *sql.Rows) error {
		var id int64
		var lexeme string
		if err := rows.Scan(&id, &lexeme); err != nil {
			return err
		}
		out[at[id]] = append(out[at[id]], lexeme)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		slices.Sort(out[i])
	}
	return out, nil
}

// followedSearch is a search with an active subscription and the tokens
// a release must hold for it to match: every token of its word and phrase
// terms (words), and a token starting with each token of its prefix terms
// (prefixes). Both engines read a prefix term as prefixes throughout.
type followedSearch struct {
	id       int64
	q        SearchQuery
	words    []string
	prefixes []string
	// settled: holding the tokens is matching. Each term is one token,
	// which the engine finds in a release exactly when the release's
	// tokens (the engine's own: see releaseTokens) hold it, and the
	// filters are the department and the type, which the release's own
	// fields answer. A phrase needs the tokens' positions and a topic the
	// release's tags: those are asked of the engine.
	settled bool
	// typeKey is q.Type as category_keys holds it.
	typeKey string
}

// arrival is a release to match against the followed searches.
type arrival struct {
	searchDoc
	categories []string
}

// mayMatch reports whether a release of department dept, in categories,
// whose distinct tokens, sorted, are tokens, holds everything f requires:
// one that does not cannot match it; one that does matches it when f is
// settled, and is asked of the engine otherwise.
func (f *followedSearch) mayMatch(dept string, categories string, tokens []string) bool {
	if f.q.Department != "" && f.q.Department != dept {
		return false
	}
	if f.typeKey != "" && !strings.Contains(categories, f.typeKey) {
		return false
	}
	for _, w := range f.words {
		if _, ok := slices.BinarySearch(tokens, w); !ok {
			return false
		}
	}
	for _, p := range f.prefixes {
		i, _ := slices.BinarySearch(tokens, p)
		if i == len(tokens) || !strings.HasPrefix(tokens[i], p) {
			return false
		}
	}
	return true
}

// searchSet indexes followed searches by the one token each requires.
type searchSet struct {
	searches []followedSearch
	// exact holds searches by a token a release must contain; prefix by
	// the start of one, for searches of prefixes only.
	exact  map[string][]int32
	prefix map[string][]int32
	// prefixLens are the lengths in bytes of the keys in prefix.
	prefixLens []int
}

// searchCache keeps the set compiled for one revision of the followed
// searches (settings.searches_rev), which every change to them moves in
// its own transaction.
type searchCache struct {
	mu  sync.Mutex
	rev string
	set *searchSet
}

// bumpSearchesRev records that the followed searches changed, so the set
// any process keeps is compiled again at its next pull.
func bumpSearchesRev(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES ('searches_rev', '1')
		ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(settings.value AS INTEGER) + 1 AS TEXT)`)
	return err
}

// followedSearches returns the index of the searches with an active
// subscription, compiled again only when their revision has moved.
func (db *DB) followedSearches(ctx context.Context, tx *sql.Tx) (*searchSet, error) {
	var rev string
	err := tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = 'searches_rev'`).Scan(&rev)
	if errors.Is(err, sql.ErrNoRows) {
		return &searchSet{}, nil // no search was ever followed
	}
	if err != nil {
		return nil, err
	}
	c := &db.searches
	c.mu.Lock()
	if c.set != nil && c.rev == rev {
		set := c.set
		c.mu.Unlock()
		return set, nil
	}
	c.mu.Unlock()
	set, err := db.compileSearches(ctx, tx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.rev, c.set = rev, set
	c.mu.Unlock()
	return set, nil
}

// compileSearches reads the followed searches and indexes each by one
// token that a release must contain (pickKey): one of a word or phrase
// term, or else the start of a prefix term; the other tokens are checked
// on the candidates (mayMatch). Terms without tokens are ignored by both
// engines; a search with none matches nothing and is left out.
func (db *DB) compileSearches(ctx context.Context, tx *sql.Tx) (*searchSet, error) {
	rows, err := tx.QueryContext(ctx, `SELECT s.id, s.query, coalesce(d.slug, ''), coalesce(t.slug, ''), s.doc_type
		FROM searches s LEFT JOIN departments d ON d.id = s.department_id LEFT JOIN topics t ON t.id = s.topic_id
		WHERE EXISTS (SELECT 1 FROM subscriptions sub WHERE sub.search_id = s.id AND sub.status = 'active') ORDER BY s.id`)
	if err != nil {
		return nil, err
	}
	var all []followedSearch
	for rows.Next() {
		var f followedSearch
		if err := rows.Scan(&f.id, &f.q.Text, &f.q.Department, &f.q.Topic, &f.q.Type); err != nil {
			rows.Close()
			return nil, err
		}
		all = append(all, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Every term of every search, tokenized by the engine in one go.
	type termRef struct {
		search int
		prefix bool
	}
	var texts []string
	var refs []termRef
	for i, f := range all {
		for _, t := range searchTerms(f.q.Text) {
			texts = append(texts, strings.Join(t.Words, " "))
			refs = append(refs, termRef{i, t.Prefix})
		}
	}
	toks, err := db.engineTokens(ctx, tx, texts)
	if err != nil {
		return nil, err
	}
	for i := range all {
		// A query the engines would cut short is left to them.
		q := all[i].q.Text
		all[i].settled = all[i].q.Topic == "" && len(q) <= SearchMaxBytes && SearchTermCount(q) <= SearchMaxTerms
		if all[i].q.Type != "" {
			all[i].typeKey = "\n" + CategoryKey(all[i].q.Type) + "\n"
		}
	}
	for j, ref := range refs {
		f := &all[ref.search]
		if ref.prefix {
			f.prefixes = append(f.prefixes, toks[j]...)
		} else {
			f.words = append(f.words, toks[j]...)
		}
		if len(toks[j]) > 1 {
			f.settled = false
		}
	}
	set := &searchSet{exact: map[string][]int32{}, prefix: map[string][]int32{}}
	lens := map[int]bool{}
	for _, f := range all {
		// A word beats a prefix. Among words, the one fewest searches are
		// indexed by yet, so that searches sharing a common word spread
		// over their other words; then the longer, likely the rarer.
		key, prefix := pickKey(f.words, set.exact), false
		if key == "" {
			key, prefix = pickKey(f.prefixes, set.prefix), true
		}
		if key == "" {
			continue
		}
		n := int32(len(set.searches))
		set.searches = append(set.searches, f)
		if prefix {
			set.prefix[key] = append(set.prefix[key], n)
			lens[len(key)] = true
		} else {
			set.exact[key] = append(set.exact[key], n)
		}
	}
	for l := range lens {
		set.prefixLens = append(set.prefixLens, l)
	}
	slices.Sort(set.prefixLens)
	return set, nil
}

// pickKey returns the token of toks with the fewest searches in index,
// the longest of those, or "" when there is none.
func pickKey(toks []string, index map[string][]int32) string {
	key := ""
	for _, t := range toks {
		n, k := len(index[t]), len(index[key])
		if key == "" || n < k || (n == k && len(t) > len(key)) {
			key = t
		}
	}
	return key
}

// candidates appends to buf[:0] the searches that a release of department
// dept, in categories (as category_keys holds them), with these distinct
// tokens, sorted, may match: those whose key is among them and whose other
// requirements they meet (mayMatch), each once, in index order.
func (s *searchSet) candidates(dept, categories string, tokens []string, buf []int32) []int32 {
	buf = buf[:0]
	add := func(list []int32) {
		for _, c := range list {
			if s.searches[c].mayMatch(dept, categories, tokens) {
				buf = append(buf, c)
			}
		}
	}
	for _, tok := range tokens {
		add(s.exact[tok])
		for _, l := range s.prefixLens {
			if l > len(tok) {
				break
			}
			add(s.prefix[tok[:l]])
		}
	}
	slices.Sort(buf)
	return slices.Compact(buf)
}

// matchSearches records which followed searches each of rs, releases of
// department dept just indexed for search, belongs to
// (release_searches). Releases in edited lose what they matched before, as
// an edit re-tags topics.
func (db *DB) matchSearches(ctx context.Context, tx *sql.Tx, dept string, rs []arrival, edited []int64) error {
	for _, id := range edited {
		if _, err := tx.ExecContext(ctx, `DELETE FROM release_searches WHERE release_id = ?`, id); err != nil {
			return err
		}
	}
	if len(rs) == 0 {
		return nil
	}
	set, err := db.followedSearches(ctx, tx)
	if err != nil || len(set.searches) == 0 {
		return err
	}
	docs := make([]searchDoc, len(rs))
	for i, r := range rs {
		docs[i] = r.searchDoc
	}
	toks, err := db.releaseTokens(ctx, tx, docs)
	if err != nil {
		return err
	}
	// Matches are written a few hundred rows to a statement: a round trip
	// each would cost PostgreSQL more than finding them.
	var pending []any
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		rows := strings.Repeat("(?, ?), ", len(pending)/2-1) + "(?, ?)"
		_, err := tx.ExecContext(ctx, `INSERT INTO release_searches (search_id, release_id) VALUES `+rows+` ON CONFLICT DO NOTHING`, pending...)
		pending = pending[:0]
		return err
	}
	stmts := map[string]*sql.Stmt{}
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	var cand []int32
	for i, r := range rs {
		cand = set.candidates(dept, categoryKeys(r.categories), toks[i], cand)
		for _, c := range cand {
			f := set.searches[c]
			if !f.settled {
				where, args := db.searchWhere(f.q, r.id)
				q := `SELECT EXISTS (SELECT 1 FROM releases r JOIN departments d ON d.id = r.department_id WHERE ` + strings.Join(where, ` AND `) + `)`
				st := stmts[q]
				if st == nil {
					if st, err = tx.PrepareContext(ctx, q); err != nil {
						return err
					}
					stmts[q] = st
				}
				var hit bool
				if err := st.QueryRowContext(ctx, args...).Scan(&hit); err != nil {
					return fmt.Errorf("match release %d against search %d: %w", r.id, f.id, err)
				}
				if !hit {
					continue
				}
			}
			if pending = append(pending, f.id, r.id); len(pending) >= 1000 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}
