package store_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"herald/store"
	"herald/store/storetest"
)

// plainText stands in for the pull side's HTML-to-text rule.
func plainText(html string) string {
	return strings.TrimSpace(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(html, " "))
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// copySource is a SQLite store holding a little of everything Copy moves,
// and what the test checks afterwards.
type copySource struct {
	db           *store.DB
	alice        storetest.Subscription
	erasedSubID  int64 // the highest subscriber id the source gave out, since erased
	erasedSubnID int64
	docGzip      []byte
	tokenKey     string
	source       int64
	search       store.Search
}

func seedCopySource(t *testing.T) copySource {
	t.Helper()
	ctx := context.Background()
	clock := storetest.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	// Copy's purpose is moving a SQLite file's data: the source is one
	// whatever the engine of the test process.
	db := storetest.OpenFile(t, filepath.Join(t.TempDir(), "herald.db"), clock)
	var src copySource
	src.db = db

	var treasury store.Department
	for _, d := range []store.Department{{Slug: "home-office", Name: "Home Office"}, {Slug: "treasury", Name: "Treasury"}} {
		var err error
		if treasury, err = db.UpsertDepartment(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	borders := tags(map[string][]string{"borders": {"border"}})
	topic, err := db.UpsertTopic(ctx, store.Topic{Slug: "borders", Title: "Borders", Rule: store.Rule{Keywords: []string{"border"}}}, borders)
	if err != nil {
		t.Fatal(err)
	}
	source, err := db.UpsertSource(ctx, store.Source{Name: "home-office", URL: "https://news.example.org/ho.atom", DepartmentSlug: "home-office", Format: "auto", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	src.source = source.ID
	// A followed search, matched by what arrives after the source's back
	// catalogue.
	src.search = storetest.Search(t, db, store.SearchSpec{Query: "lorries", Type: "press_release"})
	storetest.Subscribe(t, db, "sam@example.org", store.Target{SearchID: src.search.ID}, store.FrequencyDaily)
	if _, err := db.ApplyPull(ctx, source.ID, nil, pullWith(borders)); err != nil {
		t.Fatal(err)
	}
	base := clock.Now().Add(-24 * time.Hour)
	_, err = db.ApplyPull(ctx, source.ID, []store.Entry{
		{GUID: "ho-1", Link: "https://news.example.org/ho-1", Title: "New border checks at northern ports",
			Summary: "<p>Officers check lorries.</p>", PlainSummary: "Officers check lorries.",
			Body: "<p>Readings of the <strong>aquifer</strong> are published weekly.</p>", PlainBody: "Readings of the aquifer are published weekly.",
			Categories: []string{"Press release", "Borders", "Ports"}, DocumentType: "press_release", Published: base},
		{GUID: "ho-2", Link: "https://news.example.org/ho-2", Title: "Café owners welcome new rules",
			Summary: "<p>Ünïcode — “quotes” and emoji 🚢.</p>", PlainSummary: "Ünïcode — “quotes” and emoji 🚢.", Published: base.Add(time.Hour)},
	}, pullWith(borders))
	if err != nil {
		t.Fatal(err)
	}

	src.alice = storetest.Subscribe(t, db, "alice@example.org", store.Target{TopicID: topic.ID}, store.FrequencyDaily)
	storetest.Request(t, db, "bob@example.org", store.Target{DepartmentID: treasury.ID}, store.FrequencyImmediately)
	gone := storetest.Subscribe(t, db, "gone@example.org", store.Target{TopicID: topic.ID}, store.FrequencyWeekly)
	src.erasedSubID, src.erasedSubnID = gone.Subscriber.ID, gone.Subscription.ID
	if ok, err := db.EraseSubscriber(ctx, "gone@example.org"); err != nil || !ok {
		t.Fatalf("erase: %v %v", ok, err)
	}

	_, err = db.EnqueueEmails(ctx, []store.OutboxMessage{
		{Key: "confirm:1:7", Kind: store.KindConfirm, SubscriberID: src.alice.Subscriber.ID, To: "alice@example.org",
			Subject: "Confirm – “Borders”", Text: "Line one\r\nLine two\twith a tab", HTML: "<p>Hello \u00e9</p>",
			UnsubscribeURL: "https://herald.example/unsubscribe/abc", MessageID: store.MessageIDFor("confirm:1:7")},
		{Key: "digest:daily:2026-03-02:1", Kind: store.KindDigest, SubscriberID: src.alice.Subscriber.ID, To: "alice@example.org",
			Subject: "Your daily digest", Text: "Two releases", HTML: "<p>Two releases</p>", MessageID: store.MessageIDFor("digest:daily:2026-03-02:1")},
	})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Deliver(t, db, "confirm:1:7", store.StatusSent, "")

	body := []byte(`<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>All</title></feed>`)
	src.docGzip = gzipped(t, body)
	err = db.UpdateFeedCache(ctx, store.FeedCacheUpdate{
		Save: []store.FeedDoc{{Path: "/feeds/all.atom", Key: "all", Kind: store.FeedKindCurrent, Format: "atom", Body: body,
			Gzip: src.docGzip, ETag: `"e1"`, LastModified: base}},
		Archives: []store.FeedArchive{{Key: "all", PageSize: 50, Pages: 0, LastID: 0, IDSum: 0}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetFeedMeta(ctx, "rules", "r1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddWebSubRequest(ctx, store.WebSubRequest{Mode: store.WebSubSubscribe, Topic: "https://herald.example/feeds/all.atom",
		Callback: "https://reader.example/cb", Secret: "s3cret", LeaseSeconds: 3600}); err != nil {
		t.Fatal(err)
	}
	src.tokenKey, _, err = db.SettingOrCreate(ctx, "alerts.token_key", func() (string, error) { return "generated-key-0123456789", nil })
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// dump returns every row of table, each as its columns' names and values
// in name order, sorted: equal dumps mean equal rows, field by field.
func dump(t *testing.T, db *store.DB, table string) []string {
	t.Helper()
	rows, err := db.SQL().Query(`SELECT * FROM "` + table + `"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fields := make([]string, len(cols))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			fields[i] = fmt.Sprintf("%s=%#v", cols[i], v)
		}
		slices.Sort(fields)
		out = append(out, strings.Join(fields, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func dumpAll(t *testing.T, db *store.DB, tables []store.TableCount) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, tc := range tables {
		out[tc.Table] = dump(t, db, tc.Table)
	}
	return out
}

func TestCopy(t *testing.T) {
	// Each case names its target's engine itself, so the package's
	// PostgreSQL pass would only repeat it.
	storetest.SQLiteOnly(t, "copies from SQLite to both engines in one pass")
	for _, tc := range []struct {
		name   string
		target func(t *testing.T) string
	}{
		{"to SQLite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "target.db") }},
		{"to PostgreSQL", func(t *testing.T) string { return storetest.PostgresURL(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := tc.target(t)
			testCopy(t, target)
		})
	}
}

func testCopy(t *testing.T, target string) {
	ctx := context.Background()
	src := seedCopySource(t)
	dst, err := store.Open(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()

	var progressed []string
	rep, err := store.Copy(ctx, src.db, dst, store.CopyOptions{PlainText: plainText, Progress: func(table string, done, total int64) {
		if done > total {
			t.Errorf("progress of %s: %d done of %d", table, done, total)
		}
		if done == total {
			progressed = append(progressed, table)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}

	// Every table of the schema, parents before children.
	var names []string
	counts := map[string]int64{}
	for _, tc := range rep.Tables {
		names = append(names, tc.Table)
		counts[tc.Table] = tc.Rows
	}
	for _, want := range []string{"departments", "sources", "releases", "topics", "release_topics", "feed_dirty", "pulls", "settings",
		"feed_docs", "feed_archives", "feed_meta", "websub_subscriptions", "websub_requests", "websub_deliveries", "outbox",
		"suppressions", "bounce_counts", "subscribers", "subscriptions", "digest_runs", "searches", "release_searches", "document_types"} {
		if !slices.Contains(names, want) {
			t.Errorf("table %s was not copied (copied %v)", want, names)
		}
	}
	for _, name := range []string{"schema_migrations", "releases_search", "releases_fts"} {
		if slices.Contains(names, name) {
			t.Errorf("table %s was copied; it is the target's own", name)
		}
	}
	before := func(a, b string) {
		if slices.Index(names, a) > slices.Index(names, b) {
			t.Errorf("%s copied after %s, which refers to it: %v", a, b, names)
		}
	}
	before("departments", "sources")
	before("sources", "releases")
	before("releases", "release_topics")
	before("topics", "release_topics")
	before("subscribers", "subscriptions")
	before("searches", "subscriptions")
	before("searches", "release_searches")
	before("websub_subscriptions", "websub_deliveries")
	for table, want := range map[string]int64{"departments": 2, "sources": 1, "releases": 2, "release_topics": 1, "subscribers": 3,
		"subscriptions": 3, "outbox": 2, "feed_docs": 1, "websub_requests": 1, "searches": 1, "release_searches": 1, "document_types": 1} {
		if counts[table] != want {
			t.Errorf("%s: copied %d rows, want %d", table, counts[table], want)
		}
	}
	if rep.Indexed != 2 {
		t.Errorf("indexed %d releases, want 2", rep.Indexed)
	}
	if !slices.Contains(progressed, "outbox") || !slices.Contains(progressed, store.CopySearchIndex) {
		t.Errorf("progress reported the end of %v", progressed)
	}

	// Every row arrived as it was, field by field.
	want := dumpAll(t, src.db, rep.Tables)
	got := dumpAll(t, dst, rep.Tables)
	for _, tc := range rep.Tables {
		if !slices.Equal(got[tc.Table], want[tc.Table]) {
			t.Errorf("%s differs after the copy:\n got %q\nwant %q", tc.Table, got[tc.Table], want[tc.Table])
		}
	}
	// And through the store's API.
	docs, err := dst.FeedDocs(ctx, true)
	if err != nil || len(docs) != 1 || !bytes.Equal(docs[0].Gzip, src.docGzip) || docs[0].ETag != `"e1"` {
		t.Fatalf("feed docs on the target: %+v, %v", docs, err)
	}
	msgs, err := dst.OutboxMessages(ctx, 0, 10)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("outbox on the target: %+v, %v", msgs, err)
	}
	if m := msgs[0]; m.Key != "confirm:1:7" || m.Status != store.StatusSent || m.Subject != "Confirm – “Borders”" {
		t.Errorf("first outbox message: %+v", m)
	}
	if key, err := dst.Setting(ctx, "alerts.token_key"); err != nil || key != src.tokenKey {
		t.Errorf("token key on the target: %q, %v; want %q", key, err, src.tokenKey)
	}
	// Links name subscription and subscriber ids: the same ones.
	err = dst.InTx(ctx, func(tx *store.Tx) error {
		sub, err := tx.Subscription(src.alice.Subscription.ID)
		if err != nil {
			return err
		}
		if sub.SubscriberID != src.alice.Subscriber.ID || sub.Status != store.SubscriptionActive || sub.Frequency != store.FrequencyDaily {
			t.Errorf("alice's subscription on the target: %+v", sub)
		}
		s, err := tx.SubscriberByAddress("alice@example.org")
		if err != nil {
			return err
		}
		if s.ID != src.alice.Subscriber.ID || !s.ConfirmedAt.Equal(src.alice.Subscriber.ConfirmedAt) {
			t.Errorf("alice on the target: %+v, want %+v", s, src.alice.Subscriber)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Search finds releases by title, plain summary and body text.
	for q, title := range map[string]string{"border": "New border checks at northern ports", "lorries": "New border checks at northern ports",
		"aquifer": "New border checks at northern ports", "owners": "Café owners welcome new rules"} {
		res, err := dst.SearchReleases(ctx, store.SearchQuery{Text: q})
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != 1 || res.Releases[0].Title != title {
			t.Errorf("search %q on the target: %v, want %q", q, titles(res.Releases), title)
		}
	}
	if res, err := dst.SearchReleases(ctx, store.SearchQuery{Text: "strong"}); err != nil || res.Total != 0 {
		t.Errorf("search for a tag name on the target: %v, %v", titles(res.Releases), err)
	}
	// The followed search goes on matching what arrives on the target.
	pulled, err := dst.ApplyPull(ctx, src.source, []store.Entry{{GUID: "ho-3", Title: "More lorries checked", Categories: []string{"Press release"},
		Published: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}}, pullWith(tags(nil)))
	if err != nil || len(pulled.NewIDs) != 1 {
		t.Fatalf("pull on the target: %+v, %v", pulled, err)
	}
	if got, err := dst.SearchMatches(ctx, src.search.ID); err != nil || len(got) != 2 || got[1] != pulled.NewIDs[0] {
		t.Errorf("releases matching the followed search on the target: %v, %v; want the copied one and %d", got, err, pulled.NewIDs[0])
	}

	// New rows get new ids, above every id the source gave out, an erased
	// subscriber's included.
	carol := storetest.Subscribe(t, dst, "carol@example.org", store.Target{TopicID: src.alice.Subscription.TopicID}, store.FrequencyWeekly)
	if carol.Subscriber.ID <= src.erasedSubID || carol.Subscription.ID <= src.erasedSubnID {
		t.Errorf("a new subscriber on the target got id %d and subscription %d; the source had given out %d and %d",
			carol.Subscriber.ID, carol.Subscription.ID, src.erasedSubID, src.erasedSubnID)
	}
	n, err := dst.EnqueueEmails(ctx, []store.OutboxMessage{{Key: "manage:9", Kind: store.KindManage, SubscriberID: carol.Subscriber.ID,
		To: "carol@example.org", Subject: "s", Text: "t", HTML: "h", MessageID: store.MessageIDFor("manage:9")}})
	if err != nil || n != 1 {
		t.Fatalf("enqueue on the target: %d, %v", n, err)
	}
	if msgs, err := dst.OutboxMessages(ctx, msgs[1].ID, 10); err != nil || len(msgs) != 1 || msgs[0].Key != "manage:9" {
		t.Errorf("a new outbox row on the target: %+v, %v", msgs, err)
	}

	// A second copy is refused and writes nothing.
	filled := dumpAll(t, dst, rep.Tables)
	_, err = store.Copy(ctx, src.db, dst, store.CopyOptions{PlainText: plainText})
	if !errors.Is(err, store.ErrNotEmpty) || !strings.Contains(err.Error(), "subscribers") {
		t.Fatalf("second copy: %v, want ErrNotEmpty naming the tables", err)
	}
	for table, rows := range dumpAll(t, dst, rep.Tables) {
		if !slices.Equal(rows, filled[table]) {
			t.Errorf("the refused copy changed %s", table)
		}
	}

	// And back: the copy copied again into a new SQLite file holds what the
	// source did, and what was added since.
	back, err := store.Open(ctx, filepath.Join(t.TempDir(), "back.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if _, err := store.Copy(ctx, dst, back, store.CopyOptions{PlainText: plainText}); err != nil {
		t.Fatal(err)
	}
	for table, rows := range dumpAll(t, back, rep.Tables) {
		if !slices.Equal(rows, filled[table]) {
			t.Errorf("%s differs after copying back:\n got %q\nwant %q", table, rows, filled[table])
		}
	}
	if res, err := back.SearchReleases(ctx, store.SearchQuery{Text: "aquifer"}); err != nil || res.Total != 1 {
		t.Errorf("search after copying back: %v, %v", titles(res.Releases), err)
	}
	dave := storetest.Subscribe(t, back, "dave@example.org", store.Target{TopicID: src.alice.Subscription.TopicID}, store.FrequencyWeekly)
	if dave.Subscriber.ID <= carol.Subscriber.ID {
		t.Errorf("a new subscriber after copying back got id %d, not above %d", dave.Subscriber.ID, carol.Subscriber.ID)
	}
}

func TestCopyRefuses(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.Open(t, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	if _, err := store.Copy(ctx, db, db, store.CopyOptions{PlainText: plainText}); err == nil {
		t.Error("copying a database into itself: no error")
	}
	other, _ := storetest.Open(t, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	if _, err := store.Copy(ctx, db, other, store.CopyOptions{}); err == nil {
		t.Error("copying without PlainText: no error")
	}
}
