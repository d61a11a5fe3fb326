package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Search is a search people follow by email: the words, in the form
// NormalizeSearchText gives, and the filters of the search page.
type Search struct {
	ID             int64  `json:"id"`
	Query          string `json:"query"`
	DepartmentID   int64  `json:"-"`
	DepartmentSlug string `json:"department,omitempty"`
	DepartmentName string `json:"department_name,omitempty"`
	TopicID        int64  `json:"-"`
	TopicSlug      string `json:"topic,omitempty"`
	TopicTitle     string `json:"topic_title,omitempty"`
	// Type is a document type as CategoryKey gives it, "" for any.
	Type string `json:"type,omitempty"`
	// Name is what emails and pages call the search.
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// SearchQuery returns the search as the search page runs it.
func (s Search) SearchQuery() SearchQuery {
	return SearchQuery{Text: s.Query, Department: s.DepartmentSlug, Topic: s.TopicSlug, Type: s.Type}
}

// Params returns the search's parameters as the search page's query
// string takes them (q, department, topic, type), in one order.
func (q SearchQuery) Params() string {
	v := url.Values{}
	for _, p := range []struct{ k, v string }{{"q", q.Text}, {"department", q.Department}, {"topic", q.Topic}, {"type", q.Type}} {
		if p.v != "" {
			v.Set(p.k, p.v)
		}
	}
	return v.Encode()
}

const searchCols = `s.id, s.query, coalesce(s.department_id, 0), coalesce(d.slug, ''), coalesce(d.name, ''),
	coalesce(s.topic_id, 0), coalesce(t.slug, ''), coalesce(t.title, ''), s.doc_type, s.name, s.created_at`

const searchFrom = ` FROM searches s LEFT JOIN departments d ON d.id = s.department_id LEFT JOIN topics t ON t.id = s.topic_id`

func scanSearch(row interface{ Scan(...any) error }) (Search, error) {
	var s Search
	var created string
	err := row.Scan(&s.ID, &s.Query, &s.DepartmentID, &s.DepartmentSlug, &s.DepartmentName,
		&s.TopicID, &s.TopicSlug, &s.TopicTitle, &s.Type, &s.Name, &created)
	s.CreatedAt = parseTime(created)
	return s, err
}

// SearchSpec is a search to follow, checked by the caller: Query as
// NormalizeSearchText gives it (not ""), Type as CategoryKey gives it,
// the department and topic by id (0 for none), and the name to give it if
// it is new.
type SearchSpec struct {
	Query        string
	DepartmentID int64
	TopicID      int64
	Type         string
	Name         string
}

// EnsureSearch returns the stored search spec describes, storing it first
// when there is none. An existing search keeps its name.
func (tx *Tx) EnsureSearch(spec SearchSpec) (Search, error) {
	if spec.Query == "" || spec.Query != NormalizeSearchText(spec.Query) || spec.Type != CategoryKey(spec.Type) || strings.TrimSpace(spec.Name) == "" {
		return Search{}, fmt.Errorf("store: ensure search %q: normalised words, type and a name are required", spec.Query)
	}
	var id int64
	err := tx.tx.QueryRowContext(tx.ctx, `INSERT INTO searches (query, department_id, topic_id, doc_type, name, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`,
		spec.Query, nullID(spec.DepartmentID), nullID(spec.TopicID), spec.Type, spec.Name, fmtTime(tx.now)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.tx.QueryRowContext(tx.ctx, `SELECT id FROM searches WHERE query = ? AND coalesce(department_id, 0) = ?
			AND coalesce(topic_id, 0) = ? AND doc_type = ?`, spec.Query, spec.DepartmentID, spec.TopicID, spec.Type).Scan(&id)
	}
	if err != nil {
		return Search{}, fmt.Errorf("store: ensure search %q: %w", spec.Query, err)
	}
	s, err := scanSearch(tx.tx.QueryRowContext(tx.ctx, `SELECT `+searchCols+searchFrom+` WHERE s.id = ?`, id))
	return s, notFound(fmt.Sprintf("search %d", id), err)
}

// SearchFollowers is a stored search and how many follow it.
type SearchFollowers struct {
	Search
	// Active counts the active subscriptions by frequency; Pending those
	// waiting for confirmation.
	Active  map[string]int `json:"active"`
	Pending int            `json:"pending"`
}

// ActiveTotal is the number of active subscriptions, all frequencies.
func (f SearchFollowers) ActiveTotal() int {
	n := 0
	for _, c := range f.Active {
		n += c
	}
	return n
}

// SearchesFollowed lists up to limit searches with an active or pending
// subscription, the most followed first (active subscriptions, then
// pending ones, then the newest).
func (db *DB) SearchesFollowed(ctx context.Context, limit int) ([]SearchFollowers, error) {
	counts, err := db.searchCounts(ctx, 0)
	if err != nil {
		return nil, fmt.Errorf("store: searches followed: %w", err)
	}
	rows, err := db.db.QueryContext(ctx, `SELECT `+searchCols+searchFrom+` WHERE EXISTS
		(SELECT 1 FROM subscriptions sub WHERE sub.search_id = s.id AND sub.status IN ('active', 'pending'))`)
	if err != nil {
		return nil, fmt.Errorf("store: searches followed: %w", err)
	}
	defer rows.Close()
	out := []SearchFollowers{}
	for rows.Next() {
		s, err := scanSearch(rows)
		if err != nil {
			return nil, fmt.Errorf("store: searches followed: %w", err)
		}
		f, ok := counts[s.ID]
		if !ok {
			continue // its last subscription ended between the two reads
		}
		f.Search = s
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: searches followed: %w", err)
	}
	slices.SortFunc(out, func(a, b SearchFollowers) int {
		return cmp.Or(cmp.Compare(b.ActiveTotal(), a.ActiveTotal()), cmp.Compare(b.Pending, a.Pending), cmp.Compare(b.ID, a.ID))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// noFollowers counts nobody, at every frequency.
func noFollowers() SearchFollowers {
	f := SearchFollowers{Active: map[string]int{}}
	for _, fr := range Frequencies() {
		f.Active[fr] = 0
	}
	return f
}

// searchCounts counts the active subscriptions by frequency and the
// pending ones of every search (id 0) or of one.
func (db *DB) searchCounts(ctx context.Context, id int64) (map[int64]SearchFollowers, error) {
	q := `SELECT search_id, status, frequency, count(*) FROM subscriptions
		WHERE search_id IS NOT NULL AND status IN ('active', 'pending')`
	var args []any
	if id != 0 {
		q += ` AND search_id = ?`
		args = append(args, id)
	}
	rows, err := db.db.QueryContext(ctx, q+` GROUP BY search_id, status, frequency`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]SearchFollowers{}
	for rows.Next() {
		var sid int64
		var status, freq string
		var n int
		if err := rows.Scan(&sid, &status, &freq, &n); err != nil {
			return nil, err
		}
		f, ok := out[sid]
		if !ok {
			f = noFollowers()
		}
		if status == SubscriptionActive {
			f.Active[freq] += n
		} else {
			f.Pending += n
		}
		out[sid] = f
	}
	return out, rows.Err()
}

// SearchByID returns one stored search with its followers, or
// ErrNotFound.
func (db *DB) SearchByID(ctx context.Context, id int64) (SearchFollowers, error) {
	s, err := scanSearch(db.db.QueryRowContext(ctx, `SELECT `+searchCols+searchFrom+` WHERE s.id = ?`, id))
	if err != nil {
		return SearchFollowers{}, notFound(fmt.Sprintf("search %d", id), err)
	}
	counts, err := db.searchCounts(ctx, id)
	if err != nil {
		return SearchFollowers{}, fmt.Errorf("store: search %d: %w", id, err)
	}
	f, ok := counts[id]
	if !ok {
		f = noFollowers()
	}
	f.Search = s
	return f, nil
}

// PromoteSearch creates topic t (failing with ErrConflict if its slug is
// taken), tags the archive with it as CreateTopic does, and moves the
// search's active subscriptions to it, in one transaction. It returns the
// topic and how many subscriptions moved; ErrNotFound when there is no
// such search. Pending and ended subscriptions stay with the search.
func (db *DB) PromoteSearch(ctx context.Context, id int64, t Topic, rules TopicRules) (Topic, int, error) {
	if p := t.Problems(); len(p) > 0 {
		return Topic{}, 0, fmt.Errorf("store: promote search %d: %s", id, strings.Join(p, "; "))
	}
	rule, err := json.Marshal(t.Rule)
	if err != nil {
		return Topic{}, 0, fmt.Errorf("store: promote search %d: %w", id, err)
	}
	var out Topic
	var moved int
	err = db.tx(ctx, func(tx *sql.Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM searches WHERE id = ?)`, id).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return ErrNotFound
		}
		var err error
		if out, err = db.saveTopicTx(ctx, tx, t, rule, rules, true); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE subscriptions SET topic_id = ?, search_id = NULL WHERE search_id = ? AND status = 'active'`, out.ID, id)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		moved = int(n)
		return bumpSearchesRev(ctx, tx)
	})
	if err != nil {
		return Topic{}, 0, fmt.Errorf("store: promote search %d to topic %q: %w", id, t.Slug, err)
	}
	return out, moved, nil
}

// DeleteUnfollowedSearches deletes the searches created before
// createdBefore that no active or pending subscription follows and no
// subscription left since endedBefore, with the ended subscriptions to
// them and what they matched, and returns how many.
func (db *DB) DeleteUnfollowedSearches(ctx context.Context, createdBefore, endedBefore time.Time) (int, error) {
	res, err := db.db.ExecContext(ctx, `DELETE FROM searches WHERE created_at < ? AND NOT EXISTS
		(SELECT 1 FROM subscriptions sub WHERE sub.search_id = searches.id AND (sub.status IN ('active', 'pending') OR sub.ended_at >= ?))`,
		fmtTime(createdBefore), fmtTime(endedBefore))
	if err != nil {
		return 0, fmt.Errorf("store: delete unfollowed searches: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// Searches returns every stored search, followed or not, in id order.
func (db *DB) Searches(ctx context.Context) ([]Search, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+searchCols+searchFrom+` ORDER BY s.id`)
	if err != nil {
		return nil, fmt.Errorf("store: searches: %w", err)
	}
	defer rows.Close()
	out := []Search{}
	for rows.Next() {
		s, err := scanSearch(rows)
		if err != nil {
			return nil, fmt.Errorf("store: searches: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
