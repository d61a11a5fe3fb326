package alerts_test

import (
	"context"
	"testing"
	"time"

	"herald/alerts"
	"herald/alerts/alertstest"
	"herald/feeds/rules"
	"herald/store"
	"herald/store/storetest"
	"herald/templates"
)

// subFixture is a database with two departments, two topics and a source
// that has been pulled once (so new releases are alertable), and a service.
type subFixture struct {
	t        *testing.T
	ctx      context.Context
	db       *store.DB
	clock    *storetest.Clock
	svc      *alerts.Service
	keys     alerts.Keys
	src      store.Source
	trSrc    store.Source
	home     store.Department
	treasury store.Department
	traffick store.Topic
	immig    store.Topic
	budget   store.Topic
}

var subLondon = func() *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return loc
}()

const subBase = alertstest.BaseURL

func newSubFixture(t *testing.T, mod func(*alerts.Config)) *subFixture {
	t.Helper()
	ctx := context.Background()
	db, clock := storetest.Open(t, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	f := &subFixture{t: t, ctx: ctx, db: db, clock: clock}
	var err error
	if f.home, err = db.UpsertDepartment(ctx, store.Department{Slug: "home-office", Name: "Home Office"}); err != nil {
		t.Fatal(err)
	}
	if f.treasury, err = db.UpsertDepartment(ctx, store.Department{Slug: "treasury", Name: "Treasury"}); err != nil {
		t.Fatal(err)
	}
	if f.src, err = db.UpsertSource(ctx, store.Source{Name: "home-office", URL: "https://example.org/ho.atom", DepartmentSlug: "home-office", Format: "auto", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if f.trSrc, err = db.UpsertSource(ctx, store.Source{Name: "treasury", URL: "https://example.org/tr.atom", DepartmentSlug: "treasury", Format: "auto", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if f.traffick, err = db.UpsertTopic(ctx, store.Topic{Slug: "human-trafficking", Title: "Human trafficking", Description: "Policy and enforcement.",
		Rule: store.Rule{Departments: []string{"home-office"}, Keywords: []string{"trafficking"}}}, &rules.Topics{}); err != nil {
		t.Fatal(err)
	}
	if f.immig, err = db.UpsertTopic(ctx, store.Topic{Slug: "immigration", Title: "Immigration",
		Rule: store.Rule{Keywords: []string{"visa", "border"}}}, &rules.Topics{}); err != nil {
		t.Fatal(err)
	}
	if f.budget, err = db.UpsertTopic(ctx, store.Topic{Slug: "budget", Title: "Budget",
		Rule: store.Rule{Departments: []string{"treasury"}, Keywords: []string{"budget"}}}, &rules.Topics{}); err != nil {
		t.Fatal(err)
	}
	// The first pull of a source stores its back catalogue silently.
	for _, s := range []store.Source{f.src, f.trSrc} {
		if _, err := db.ApplyPull(ctx, s.ID, nil, store.PullOptions{Topics: &rules.Topics{}, Alert: rules.AlertNew(0), Realert: rules.Realert}); err != nil {
			t.Fatal(err)
		}
	}
	f.keys, err = alerts.NewKeys("test key number one, long enough")
	if err != nil {
		t.Fatal(err)
	}
	cfg := alerts.Config{BaseURL: subBase, Location: subLondon, TemplatesFS: templates.Embedded()}
	if mod != nil {
		mod(&cfg)
	}
	f.svc, err = alerts.NewService(db, cfg, f.keys, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// pull stores entries as one successful pull of src at the current time.
func (f *subFixture) pull(src store.Source, entries ...store.Entry) store.PullResult {
	f.t.Helper()
	res, err := f.db.ApplyPull(f.ctx, src.ID, entries, store.PullOptions{Topics: &rules.Topics{}, Alert: rules.AlertNew(0), Realert: rules.Realert})
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

// subscribe creates an active subscription the way a confirmed sign-up
// leaves it.
func (f *subFixture) subscribe(addr string, target store.Target, freq string) storetest.Subscription {
	f.t.Helper()
	return storetest.Subscribe(f.t, f.db, addr, target, freq)
}

// subOutboxRow is an outbox row as tests look at it.
type subOutboxRow = alertstest.Message

// outbox returns the outbox rows keep picks (nil: all).
func (f *subFixture) outbox(keep alertstest.Filter) []subOutboxRow {
	f.t.Helper()
	return alertstest.Outbox(f.t, f.db, keep)
}

// subLinks returns the links to Herald in a text body that contain part.
func subLinks(text, part string) []string { return alertstest.Links(text, part) }

func subLink(t *testing.T, text, part string) string {
	t.Helper()
	return alertstest.Link(t, text, part)
}
