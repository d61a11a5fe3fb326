package alerts_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"herald/alerts"
	"herald/alerts/alertstest"
	"herald/store"
)

// followSearch signs addr up for the search named by params at freq and
// confirms it, as a subscriber following the emails would.
func (f *subFixture) followSearch(addr, params, freq string) alerts.Confirmation {
	f.t.Helper()
	req, err := f.svc.CheckRequest(f.ctx, addr, alerts.TargetFields{Search: params}, freq)
	if err != nil {
		f.t.Fatal(err)
	}
	f.svc.RequestSubscription(f.ctx, req)
	f.svc.Wait()
	confirms := f.outbox(func(m alertstest.Message) bool { return m.To == addr && m.Kind == store.KindConfirm })
	res, err := f.svc.Confirm(f.ctx, confirmToken(f.t, confirms[len(confirms)-1].Text))
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

func TestFollowASearch(t *testing.T) {
	f := newSubFixture(t, func(c *alerts.Config) { c.DigestMaxEntries = 1 })
	req, err := f.svc.CheckRequest(f.ctx, "ana@example.org", alerts.TargetFields{Search: "q=Trafficking++Victims&department=home-office&page=3"}, "immediately")
	if err != nil {
		t.Fatal(err)
	}
	target := req.Target()
	if target.Kind != "search" || target.Slug != "department=home-office&q=trafficking+victims" ||
		target.Name != "Search: trafficking victims in Home Office" || target.SearchID != 0 {
		t.Fatalf("target: %+v", target)
	}
	if list, err := f.db.SearchesFollowed(f.ctx, 10); err != nil || len(list) != 0 {
		t.Fatalf("checking a request stored a search: %+v, %v", list, err)
	}
	f.svc.RequestSubscription(f.ctx, req)
	f.svc.Wait()
	confirm := f.outbox(alertstest.Kind(store.KindConfirm))
	if len(confirm) != 1 || !strings.Contains(confirm[0].Text, "Search: trafficking victims in Home Office (search)") {
		t.Fatalf("confirmation: %+v", confirm)
	}
	res, err := f.svc.Confirm(f.ctx, confirmToken(t, confirm[0].Text))
	if err != nil || res.Subscription.Kind != "search" || res.Subscription.Status != store.SubscriptionActive {
		t.Fatalf("confirm: %+v, %v", res, err)
	}
	// The same search asked for again, in other words, is the same search.
	again := f.followSearch("bo@example.org", "department=home-office&q=%22trafficking%22+VICTIMS", "daily")
	if again.Subscription.SearchID != res.Subscription.SearchID {
		t.Errorf("the same search twice made two: %d and %d", res.Subscription.SearchID, again.Subscription.SearchID)
	}
	f.followSearch("sam@example.org", "q=trafficking+victims&department=home-office", "immediately")
	// Ana also follows the topic, which the same release matches: one
	// email all the same.
	f.subscribe("ana@example.org", store.Target{TopicID: f.traffick.ID}, "immediately")
	f.subscribe("cy@example.org", store.Target{TopicID: f.budget.ID}, "immediately")

	f.clock.Set(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	f.pull(f.src,
		entry("r1", "Support for trafficking victims extended", "<p>Survivors get help for longer.</p>", time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)),
		entry("r2", "Trafficking gangs sentenced", "<p>Four men were jailed.</p>", time.Date(2026, 3, 2, 9, 40, 0, 0, time.UTC)),
		entry("r4", "Victims of trafficking: new guidance", "<p>For police.</p>", time.Date(2026, 3, 2, 9, 20, 0, 0, time.UTC)),
	)
	f.pull(f.trSrc, entry("r3", "Help for trafficking victims abroad", "<p>Another department.</p>", time.Date(2026, 3, 2, 9, 50, 0, 0, time.UTC)))
	if _, err := f.svc.ProcessPending(f.ctx); err != nil {
		t.Fatal(err)
	}
	rows := f.outbox(alertstest.Kind(store.KindImmediate))
	var anas []subOutboxRow
	var sams []string
	for _, r := range rows {
		if r.To == "ana@example.org" {
			anas = append(anas, r)
		}
		if r.To == "sam@example.org" {
			sams = append(sams, r.Subject)
		}
		if r.To == "bo@example.org" {
			t.Errorf("a daily subscriber got an immediate email: %s", r.Subject)
		}
	}
	slices.Sort(sams)
	if want := []string{"Home Office: Support for trafficking victims extended", "Home Office: Victims of trafficking: new guidance"}; !slices.Equal(sams, want) {
		t.Errorf("the search's immediate subscriber got %q, want %q", sams, want)
	}
	if len(anas) != 3 {
		t.Fatalf("ana got %d immediate emails, want one for each Home Office trafficking release", len(anas))
	}
	var matched subOutboxRow
	for _, r := range anas {
		if strings.Contains(r.Subject, "Support for trafficking victims") {
			matched = r
		}
	}
	words := strings.Join(strings.Fields(matched.Text), " ")
	if !strings.Contains(words, "subscribed to Search: trafficking victims in Home Office (search) and Human trafficking (topic) on Herald") {
		t.Errorf("the email about the release both match does not name both:\n%s", matched.Text)
	}
	if !strings.Contains(matched.Text, "Unsubscribe from Search: trafficking victims in Home Office") {
		t.Errorf("no unsubscribe link for the search:\n%s", matched.Text)
	}

	// The daily subscriber's digest lists a matching release (it holds
	// one), under the search's name, with a link to the search page for
	// the other.
	f.runDue("daily", time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	f.clock.Set(time.Date(2026, 3, 3, 8, 30, 0, 0, time.UTC))
	f.runDue("daily", time.Date(2026, 3, 3, 8, 30, 0, 0, time.UTC))
	digests := f.outbox(alertstest.Kind(store.KindDigest))
	if len(digests) != 1 || digests[0].To != "bo@example.org" {
		t.Fatalf("digests: %+v", digests)
	}
	d := digests[0].Text
	if !strings.Contains(d, "== Search: trafficking victims in Home Office (search) ==") || !strings.Contains(d, "2 new releases") ||
		!strings.Contains(d, "Support for trafficking victims extended") ||
		strings.Contains(d, "Trafficking gangs sentenced") || strings.Contains(d, "Help for trafficking victims abroad") {
		t.Errorf("digest:\n%s", d)
	}
	if !strings.Contains(d, "And 1 more:\n"+subBase+"/search?department=home-office&q=trafficking+victims") {
		t.Errorf("the digest does not link the search:\n%s", d)
	}
}

func TestFollowASearchProblems(t *testing.T) {
	f := newSubFixture(t, nil)
	if err := f.db.RetireTopic(f.ctx, "budget"); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("flood ", 40)
	for _, tc := range []struct {
		search, code, value string
		kind                error
	}{
		{"q=", alerts.ProblemSearchEmpty, "", alerts.ErrInvalid},
		{"department=home-office", alerts.ProblemSearchEmpty, "", alerts.ErrInvalid},
		{"q=%21%21%21+%3F", alerts.ProblemSearchEmpty, "!!! ?", alerts.ErrInvalid},
		{"q=" + strings.ReplaceAll(long, " ", "+"), alerts.ProblemSearchTooLong, "flood flood flood", alerts.ErrInvalid},
		{"q=" + strings.Repeat("a+", 17), alerts.ProblemSearchTooLong, strings.Repeat("a ", 17), alerts.ErrInvalid},
		{"q=flood&department=nowhere", alerts.ProblemSearchUnknownDepartment, "nowhere", store.ErrNotFound},
		{"q=flood&department=Bad+Slug", alerts.ProblemSearchUnknownDepartment, "Bad Slug", store.ErrNotFound},
		{"q=flood&topic=nope", alerts.ProblemSearchUnknownTopic, "nope", store.ErrNotFound},
		{"q=flood&topic=budget", alerts.ProblemSearchTopicEnded, "Budget", alerts.ErrTopicEnded},
		{"q=flood&type=leaflet", alerts.ProblemSearchUnknownType, "leaflet", store.ErrNotFound},
		{"q=flood%0d%0a", alerts.ProblemSearchControl, "", alerts.ErrInvalid},
		{"q=%zz", alerts.ProblemSearchUnreadable, "", alerts.ErrInvalid},
	} {
		_, err := f.svc.CheckRequest(f.ctx, "ana@example.org", alerts.TargetFields{Search: tc.search}, "daily")
		var fe alerts.FieldErrors
		if !errors.As(err, &fe) {
			t.Errorf("%q: %v, want FieldErrors", tc.search, err)
			continue
		}
		p, ok := fe.Get("target")
		value := ""
		if len(p.Data) == 2 && p.Data[0] == "Value" {
			value, _ = p.Data[1].(string)
		}
		if !ok || p.Message != tc.code || !strings.HasPrefix(value, strings.TrimSpace(tc.value)) || !errors.Is(p.Err, tc.kind) {
			t.Errorf("%q: %+v, want %s about %q", tc.search, p, tc.code, tc.value)
		}
	}
	if _, err := f.svc.CheckRequest(f.ctx, "ana@example.org", alerts.TargetFields{Search: "q=flood", Topic: "immigration"}, "daily"); err == nil {
		t.Error("a search and a topic at once: no error")
	}
	if list, err := f.db.SearchesFollowed(f.ctx, 10); err != nil || len(list) != 0 {
		t.Errorf("bad requests stored searches: %+v, %v", list, err)
	}
}

// Housekeeping forgets a search once nobody follows it.
func TestHousekeepingForgetsUnfollowedSearches(t *testing.T) {
	f := newSubFixture(t, nil)
	res := f.followSearch("ana@example.org", "q=flood", "daily")
	if _, err := f.db.EndSubscriptions(f.ctx, store.EndFilter{SubscriptionID: res.Subscription.ID}); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(24 * time.Hour)
	if rep, err := f.svc.Housekeep(f.ctx, f.clock.Now()); err != nil || rep.Searches != 0 {
		t.Fatalf("housekeeping the next day: %+v, %v", rep, err)
	}
	f.clock.Add(60 * 24 * time.Hour)
	if rep, err := f.svc.Housekeep(f.ctx, f.clock.Now()); err != nil || rep.Searches != 1 {
		t.Fatalf("housekeeping two months on: %+v, %v", rep, err)
	}
}
