package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"herald/store"
	"herald/store/storetest"
)

func TestSearchTypeFilter(t *testing.T) {
	db := searchFixture(t)
	ctx := context.Background()
	src, err := db.UpsertSource(ctx, store.Source{Name: "govuk", URL: "https://www.gov.uk/api/search.json", DepartmentSlug: "treasury", Format: "auto", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ApplyPull(ctx, src.ID, []store.Entry{
		{GUID: "g-1", Title: "Border statistics published", Categories: []string{"Statistics", "HM Treasury"}, DocumentType: "official_statistics"},
		{GUID: "g-2", Title: "Border tariffs: press notice", Categories: []string{"Press release"}, DocumentType: "press_release"},
		{GUID: "g-3", Title: "Border speech", Categories: []string{"press-release"}},
	}, pullWith(tags(nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q    store.SearchQuery
		want []string
	}{
		{store.SearchQuery{Text: "border", Type: "press_release"}, []string{"Border speech", "Border tariffs: press notice"}},
		{store.SearchQuery{Text: "border", Type: "Press release"}, []string{"Border speech", "Border tariffs: press notice"}},
		{store.SearchQuery{Type: "hm-treasury"}, []string{"Border statistics published"}},
		{store.SearchQuery{Text: "border", Type: "statistics"}, []string{"Border statistics published"}},
		{store.SearchQuery{Text: "border", Type: "stat"}, nil},
		{store.SearchQuery{Type: "official_statistics"}, nil}, // a document type not among the categories
	} {
		res, err := db.SearchReleases(ctx, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		got := titles(res.Releases)
		slices.Sort(got)
		if !slices.Equal(got, append([]string{}, tc.want...)) {
			t.Errorf("%+v: %q, want %q", tc.q, got, tc.want)
		}
	}
	types, err := db.DocumentTypes(ctx)
	if err != nil || !slices.Equal(types, []string{"official_statistics", "press_release"}) {
		t.Errorf("document types: %q, %v", types, err)
	}
}

// Releases stored before the store kept category keys get them when it
// next opens, and the type filter finds them.
func TestCategoryKeysFilledOnOpen(t *testing.T) {
	ctx := context.Background()
	path := storetest.Database(t)
	clock := storetest.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	db := storetest.OpenFile(t, path, clock)
	src := seed(t, db)
	if _, err := db.ApplyPull(ctx, src.ID, []store.Entry{
		{GUID: "1", Title: "Ferry checks", Categories: []string{"Press release", "Ports"}},
		{GUID: "2", Title: "Ferry review", Categories: []string{"Consultation"}},
	}, pullWith(tags(nil))); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().Exec(`UPDATE releases SET category_keys = NULL`); err != nil {
		t.Fatal(err)
	}
	if res, err := db.SearchReleases(ctx, store.SearchQuery{Type: "press_release"}); err != nil || res.Total != 0 {
		t.Fatalf("before the store opens again: %v, %v", titles(res.Releases), err)
	}
	db.Close()
	db = storetest.OpenFile(t, path, clock)
	res, err := db.SearchReleases(ctx, store.SearchQuery{Type: "press_release"})
	if err != nil || !slices.Equal(titles(res.Releases), []string{"Ferry checks"}) {
		t.Errorf("after: %v, %v", titles(res.Releases), err)
	}
}

// A database from before searches could be followed: subscriptions keep
// their ids and the ids they gave out, document types come from the
// releases stored, and a subscription may now follow a search.
func TestSearchesMigration(t *testing.T) {
	storetest.SQLiteOnly(t, "PostgreSQL changes the subscriptions table in place")
	ctx := context.Background()
	path := storetest.Database(t)
	clock := storetest.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	db := storetest.OpenFile(t, path, clock)
	src := seed(t, db)
	if _, err := db.ApplyPull(ctx, src.ID, []store.Entry{{GUID: "1", Title: "Ferry checks", DocumentType: "press_release"}}, pullWith(tags(nil))); err != nil {
		t.Fatal(err)
	}
	dept, err := db.DepartmentBySlug(ctx, "home-office")
	if err != nil {
		t.Fatal(err)
	}
	alice := storetest.Subscribe(t, db, "alice@example.org", store.Target{DepartmentID: dept.ID}, store.FrequencyDaily)
	gone := storetest.Subscribe(t, db, "gone@example.org", store.Target{DepartmentID: dept.ID}, store.FrequencyWeekly)
	if _, err := db.EraseSubscriber(ctx, "gone@example.org"); err != nil {
		t.Fatal(err)
	}
	// Back to the schema before 0011.
	for _, q := range []string{
		`DELETE FROM schema_migrations WHERE name = '0011_searches.sql'`,
		`CREATE TABLE subscriptions_old (
			id INTEGER PRIMARY KEY AUTOINCREMENT,
			subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
			topic_id INTEGER REFERENCES topics(id) ON DELETE CASCADE,
			department_id INTEGER REFERENCES departments(id) ON DELETE CASCADE,
			frequency TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
			confirmed_at TEXT NOT NULL DEFAULT '', ended_at TEXT NOT NULL DEFAULT '',
			CHECK ((topic_id IS NULL) <> (department_id IS NULL)))`,
		`INSERT INTO subscriptions_old SELECT id, subscriber_id, topic_id, department_id, frequency, status, created_at, confirmed_at, ended_at FROM subscriptions`,
		`UPDATE sqlite_sequence SET seq = (SELECT seq FROM sqlite_sequence WHERE name = 'subscriptions') WHERE name = 'subscriptions_old'`,
		`DROP TABLE subscriptions`,
		`ALTER TABLE subscriptions_old RENAME TO subscriptions`,
		`DROP TABLE release_searches`,
		`DROP TABLE searches`,
		`DROP TABLE document_types`,
		`DROP INDEX releases_category_keys_pending`,
		`ALTER TABLE releases DROP COLUMN category_keys`,
	} {
		if _, err := db.SQL().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	db = storetest.OpenFile(t, path, clock)
	sub, err := db.SubscriptionByID(ctx, alice.Subscription.ID)
	if err != nil || sub.Status != store.SubscriptionActive || sub.DepartmentID != dept.ID || sub.Kind != "department" {
		t.Errorf("alice's subscription after the migration: %+v, %v", sub, err)
	}
	types, err := db.DocumentTypes(ctx)
	if err != nil || !slices.Equal(types, []string{"press_release"}) {
		t.Errorf("document types after the migration: %q, %v", types, err)
	}
	s := storetest.Search(t, db, store.SearchSpec{Query: "ferry"})
	carol := storetest.Subscribe(t, db, "carol@example.org", store.Target{SearchID: s.ID}, store.FrequencyDaily)
	if carol.Subscription.ID <= gone.Subscription.ID {
		t.Errorf("a new subscription got id %d; %d was given out before the migration", carol.Subscription.ID, gone.Subscription.ID)
	}
	if carol.Subscription.Kind != "search" || carol.Subscription.Slug != "q=ferry" || carol.Subscription.Name != "Search: ferry" {
		t.Errorf("search subscription: %+v", carol.Subscription)
	}
	// Exactly one target.
	err = db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.AddSubscription(carol.Subscriber.ID, store.Target{SearchID: s.ID, DepartmentID: dept.ID}, store.FrequencyDaily)
		return err
	})
	if err == nil {
		t.Error("a subscription to a search and a department was stored")
	}
}

func TestEnsureSearch(t *testing.T) {
	db, _ := storetest.Open(t, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	ctx := context.Background()
	d := storetest.Department(t, db, "environment-agency", "Environment Agency")
	a := storetest.Search(t, db, store.SearchSpec{Query: "flood defences", DepartmentID: d.ID, Name: "Search: flood defences in Environment Agency"})
	b := storetest.Search(t, db, store.SearchSpec{Query: "flood defences", DepartmentID: d.ID, Name: "another name"})
	if a.ID != b.ID || b.Name != "Search: flood defences in Environment Agency" || b.DepartmentSlug != "environment-agency" {
		t.Errorf("the same search twice: %+v and %+v", a, b)
	}
	c := storetest.Search(t, db, store.SearchSpec{Query: "flood defences"})
	e := storetest.Search(t, db, store.SearchSpec{Query: "flood defences", Type: "press_release"})
	if c.ID == a.ID || e.ID == c.ID {
		t.Errorf("different searches share ids: %d %d %d", a.ID, c.ID, e.ID)
	}
	if got := e.SearchQuery().Params(); got != "q=flood+defences&type=press_release" {
		t.Errorf("params %q", got)
	}
	for _, bad := range []store.SearchSpec{
		{Query: "", Name: "x"},
		{Query: "Flood", Name: "x"},
		{Query: "flood", Type: "Press release", Name: "x"},
		{Query: "flood"},
	} {
		err := db.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.EnsureSearch(bad)
			return err
		})
		if err == nil {
			t.Errorf("EnsureSearch(%+v): no error", bad)
		}
	}
}

func TestSearchesFollowedAndPromoted(t *testing.T) {
	db, clock := storetest.Open(t, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	ctx := context.Background()
	src := seed(t, db)
	flood := storetest.Search(t, db, store.SearchSpec{Query: "flood"})
	ferry := storetest.Search(t, db, store.SearchSpec{Query: "ferry"})
	lone := storetest.Search(t, db, store.SearchSpec{Query: "lonely"})
	storetest.Subscribe(t, db, "a@example.org", store.Target{SearchID: flood.ID}, store.FrequencyDaily)
	storetest.Subscribe(t, db, "b@example.org", store.Target{SearchID: flood.ID}, store.FrequencyImmediately)
	storetest.Subscribe(t, db, "c@example.org", store.Target{SearchID: flood.ID}, store.FrequencyDaily)
	storetest.Request(t, db, "d@example.org", store.Target{SearchID: flood.ID}, store.FrequencyWeekly)
	storetest.Subscribe(t, db, "a@example.org", store.Target{SearchID: ferry.ID}, store.FrequencyWeekly)
	ended := storetest.Subscribe(t, db, "e@example.org", store.Target{SearchID: lone.ID}, store.FrequencyWeekly)
	if _, err := db.EndSubscriptions(ctx, store.EndFilter{SubscriptionID: ended.Subscription.ID}); err != nil {
		t.Fatal(err)
	}

	list, err := db.SearchesFollowed(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != flood.ID || list[1].ID != ferry.ID {
		t.Fatalf("followed searches: %+v", list)
	}
	if a := list[0].Active; a[store.FrequencyDaily] != 2 || a[store.FrequencyImmediately] != 1 || a[store.FrequencyWeekly] != 0 || list[0].Pending != 1 {
		t.Errorf("flood's followers: %+v, pending %d", a, list[0].Pending)
	}

	// Promoting moves the active subscriptions, in one go, to a topic that
	// tags the archive.
	if _, err := db.ApplyPull(ctx, src.ID, []store.Entry{{GUID: "1", Title: "Flood warning"}}, pullWith(tags(nil))); err != nil {
		t.Fatal(err)
	}
	floods := tags(map[string][]string{"floods": {"Flood"}})
	topic, moved, err := db.PromoteSearch(ctx, flood.ID, store.Topic{Slug: "floods", Title: "Floods", Rule: store.Rule{Keywords: []string{"flood"}}}, floods)
	if err != nil || moved != 3 || topic.Slug != "floods" || topic.ID == 0 {
		t.Fatalf("promote: %+v, %d moved, %v", topic, moved, err)
	}
	rs, err := db.Releases(ctx, store.ReleaseFilter{Topic: "floods"})
	if err != nil || len(rs) != 1 {
		t.Errorf("the new topic's releases: %v, %v", titles(rs), err)
	}
	after, err := db.SearchByID(ctx, flood.ID)
	if err != nil || after.ActiveTotal() != 0 || after.Pending != 1 {
		t.Errorf("flood after promotion: %+v, %v", after, err)
	}
	subs, err := db.SubscriberCounts(ctx)
	if err != nil || subs["floods"][store.FrequencyDaily] != 2 {
		t.Errorf("the topic's subscribers: %v, %v", subs, err)
	}
	if _, _, err := db.PromoteSearch(ctx, ferry.ID, store.Topic{Slug: "floods", Title: "Again", Rule: store.Rule{Keywords: []string{"ferry"}}}, floods); !errors.Is(err, store.ErrConflict) {
		t.Errorf("promoting to a taken slug: %v", err)
	}
	if f, _ := db.SearchByID(ctx, ferry.ID); f.ActiveTotal() != 1 {
		t.Errorf("a refused promotion moved subscriptions: %+v", f)
	}
	if _, _, err := db.PromoteSearch(ctx, 9999, store.Topic{Slug: "nothing", Title: "Nothing", Rule: store.Rule{Keywords: []string{"x"}}}, floods); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("promoting no search: %v", err)
	}

	// Housekeeping forgets searches nobody follows, once old enough and
	// left long enough ago.
	clock.Add(48 * time.Hour)
	if n, err := db.DeleteUnfollowedSearches(ctx, clock.Now().Add(-24*time.Hour), clock.Now().Add(-72*time.Hour)); err != nil || n != 0 {
		t.Errorf("deleted %d unfollowed searches, %v; lonely was left too recently", n, err)
	}
	n, err := db.DeleteUnfollowedSearches(ctx, clock.Now().Add(-24*time.Hour), clock.Now().Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Errorf("deleted %d unfollowed searches, %v; want lonely only", n, err)
	}
	if _, err := db.SearchByID(ctx, lone.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("lonely after housekeeping: %v", err)
	}
	if _, err := db.SubscriptionByID(ctx, ended.Subscription.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the ended subscription to lonely: %v", err)
	}
}

// A release matched by a followed search reaches that search's
// subscribers, alongside topic and department subscribers, each once.
func TestSearchRecipients(t *testing.T) {
	db, _ := storetest.Open(t, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	ctx := context.Background()
	src := seed(t, db)
	ho, _ := db.DepartmentBySlug(ctx, "home-office")
	flood := storetest.Search(t, db, store.SearchSpec{Query: "flood"})
	other := storetest.Search(t, db, store.SearchSpec{Query: "drought"})
	storetest.Subscribe(t, db, "a@example.org", store.Target{SearchID: flood.ID}, store.FrequencyImmediately)
	storetest.Subscribe(t, db, "a@example.org", store.Target{DepartmentID: ho.ID}, store.FrequencyImmediately)
	storetest.Subscribe(t, db, "b@example.org", store.Target{SearchID: flood.ID}, store.FrequencyDaily)
	storetest.Subscribe(t, db, "c@example.org", store.Target{SearchID: other.ID}, store.FrequencyImmediately)
	if _, err := db.ApplyPull(ctx, src.ID, nil, pullWith(tags(nil))); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplyPull(ctx, src.ID, []store.Entry{{GUID: "1", Title: "Flood warning for the coast"}}, pullWith(tags(nil))); err != nil {
		t.Fatal(err)
	}
	pending, err := db.PendingAlerts(ctx, 0, 10)
	if err != nil || len(pending) != 1 || !slices.Equal(pending[0].SearchIDs, []int64{flood.ID}) {
		t.Fatalf("pending alerts: %+v, %v", pending, err)
	}
	page, err := db.AlertRecipients(ctx, store.RecipientQuery{Frequency: store.FrequencyImmediately, DepartmentIDs: []int64{ho.ID},
		SearchIDs: pending[0].SearchIDs})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Recipients) != 1 || page.Recipients[0].Address != "a@example.org" || len(page.Recipients[0].Subscriptions) != 2 {
		t.Fatalf("recipients: %+v", page.Recipients)
	}
	for _, s := range page.Recipients[0].Subscriptions {
		if s.Kind == "search" && (s.SearchID != flood.ID || s.Name != "Search: flood" || s.Slug != "q=flood") {
			t.Errorf("the search subscription as a recipient sees it: %+v", s)
		}
	}
	day, err := db.DigestReleases(ctx, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC))
	if err != nil || len(day) != 1 || !slices.Equal(day[0].SearchIDs, []int64{flood.ID}) {
		t.Errorf("digest releases: %+v, %v", day, err)
	}
	// Many targets at once read the frequency's subscriptions instead.
	ids := []int64{flood.ID}
	for i := range 40 {
		ids = append(ids, 100000+int64(i))
	}
	page, err = db.AlertRecipients(ctx, store.RecipientQuery{Frequency: store.FrequencyDaily, SearchIDs: ids})
	if err != nil || len(page.Recipients) != 1 || page.Recipients[0].Address != "b@example.org" {
		t.Errorf("recipients of many searches: %+v, %v", page.Recipients, err)
	}
}
