package alerts_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"herald/alerts"
	"herald/alerts/alertstest"
	"herald/store"
)

var subUpdate = flag.Bool("update", false, "rewrite the golden files in testdata/")

// subGolden compares got with testdata/name, or rewrites it with -update.
func subGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *subUpdate {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s differs (-want +got):\n%s", name, d)
	}
}

// traffickingEntry is an invented release matching the human-trafficking
// topic.
func traffickingEntry(guid, title string) store.Entry {
	return store.Entry{
		GUID:      guid,
		Link:      "https://www.example.org/news/" + guid,
		Title:     title,
		Summary:   `<p>The Minister for Safeguarding met partners in Valmora to agree joint patrols against <em>human trafficking</em> &amp; exploitation.</p><p>A second paragraph with <a href="https://www.example.org/plan">the plan</a>.</p>`,
		Published: time.Date(2026, 3, 2, 8, 45, 0, 0, time.UTC),
	}
}

func TestImmediateOneEmailPerSubscriber(t *testing.T) {
	f := newSubFixture(t, nil)
	both := f.subscribe("both@example.org", store.Target{TopicID: f.traffick.ID}, "immediately")
	f.subscribe("both@example.org", store.Target{DepartmentID: f.home.ID}, "immediately")
	topicOnly := f.subscribe("topic@example.org", store.Target{TopicID: f.traffick.ID}, "immediately")
	f.subscribe("daily@example.org", store.Target{TopicID: f.traffick.ID}, "daily")
	f.subscribe("treasury@example.org", store.Target{DepartmentID: f.treasury.ID}, "immediately")
	gone := f.subscribe("gone@example.org", store.Target{TopicID: f.traffick.ID}, "immediately")
	if _, err := f.db.EndSubscriptions(f.ctx, store.EndFilter{SubscriptionID: gone.Subscription.ID}); err != nil {
		t.Fatal(err)
	}

	res := f.pull(f.src, traffickingEntry("r1", "Valmora and Estland pledge to tackle human trafficking"))
	if res.Alerts != 1 {
		t.Fatalf("pull queued %d alerts, want 1", res.Alerts)
	}
	n, err := f.svc.ProcessPending(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows := f.outbox(alertstest.Kind(store.KindImmediate))
	if n != 2 || len(rows) != 2 {
		t.Fatalf("enqueued %d, outbox %d; want one each for both@ and topic@", n, len(rows))
	}
	byTo := map[string]subOutboxRow{}
	for _, r := range rows {
		byTo[r.To] = r
	}
	rid := res.NewIDs[0]
	b, ok := byTo["both@example.org"]
	if !ok || b.Key != fmt.Sprintf("immediate:%d.1:%d", rid, both.Subscriber.ID) {
		t.Fatalf("both@: %+v", b)
	}
	if b.Subject != "Home Office: Valmora and Estland pledge to tackle human trafficking" {
		t.Errorf("subject %q", b.Subject)
	}
	if !strings.Contains(b.HTML, "Human trafficking (topic) and Home Office (department)") {
		t.Errorf("the email does not say which subscriptions matched:\n%s", b.Text)
	}
	if len(subLinks(b.Text, "/unsubscribe/")) != 2 || len(subLinks(b.Text, "/manage/")) != 1 {
		t.Errorf("footer should link each matched subscription and the manage page:\n%s", b.Text)
	}
	// Two subscriptions matched: one click ends every immediate one.
	tok := strings.TrimPrefix(b.Unsubscribe, subBase+"/unsubscribe/")
	got, err := f.keys.Verify(tok, f.clock.Now(), alerts.PurposeUnsubscribeAll)
	if err != nil || got.Subject != both.Subscriber.ID {
		t.Errorf("List-Unsubscribe of both@ = %q: %+v %v", b.Unsubscribe, got, err)
	}
	one := byTo["topic@example.org"]
	tok = strings.TrimPrefix(one.Unsubscribe, subBase+"/unsubscribe/")
	if got, err := f.keys.Verify(tok, f.clock.Now(), alerts.PurposeUnsubscribe); err != nil || got.Subject != topicOnly.Subscription.ID {
		t.Errorf("List-Unsubscribe of topic@ = %q: %+v %v", one.Unsubscribe, got, err)
	}
	subGolden(t, "immediate.txt", one.Text)
	subGolden(t, "immediate.html", one.HTML)

	// Done means done: nothing more on the next call.
	if n, err := f.svc.ProcessPending(f.ctx); n != 0 || err != nil {
		t.Fatalf("second ProcessPending: %d, %v", n, err)
	}
	// A crash after queueing but before clearing the flag repeats the
	// release; the outbox keys keep it to one message each.
	if err := f.db.MarkAlertPending(f.ctx, rid); err != nil {
		t.Fatal(err)
	}
	if n, err := f.svc.ProcessPending(f.ctx); n != 0 || err != nil {
		t.Fatalf("repeated release: %d, %v", n, err)
	}

	// An edit that keeps the title is a correction: no new alert.
	f.clock.Add(time.Hour)
	edited := traffickingEntry("r1", "Valmora and Estland pledge to tackle human trafficking")
	edited.Summary = "<p>Corrected the name of the minister.</p>"
	if res := f.pull(f.src, edited); res.Updated != 1 || res.Alerts != 0 {
		t.Fatalf("edit: %+v", res)
	}
	if n, err := f.svc.ProcessPending(f.ctx); n != 0 || err != nil {
		t.Fatalf("same-title edit enqueued %d, %v", n, err)
	}
	// A new title is announced again, under a new key.
	edited.Title = "Valmora, Estland and Norland pledge to tackle human trafficking"
	f.pull(f.src, edited)
	if n, err := f.svc.ProcessPending(f.ctx); n != 2 || err != nil {
		t.Fatalf("retitled release enqueued %d, %v", n, err)
	}
	if rows := f.outbox(alertstest.KeyPrefix(fmt.Sprintf("immediate:%d.2:", rid))); len(rows) != 2 || !strings.Contains(rows[0].Text, "updated") {
		t.Fatalf("second alert rows: %+v", rows)
	}
}

func TestImmediateBatches(t *testing.T) {
	f := newSubFixture(t, func(c *alerts.Config) { c.BatchSize = 3 })
	want := map[string]bool{}
	for i := range 11 {
		addr := fmt.Sprintf("s%02d@example.org", i)
		want[addr] = true
		// Every other subscriber follows both the topic and the department:
		// a subscriber's rows must never be split across batches.
		f.subscribe(addr, store.Target{TopicID: f.traffick.ID}, "immediately")
		if i%2 == 0 {
			f.subscribe(addr, store.Target{DepartmentID: f.home.ID}, "immediately")
		}
	}
	f.pull(f.src, traffickingEntry("r1", "Joint patrols against human trafficking"))
	n, err := f.svc.ProcessPending(f.ctx)
	if err != nil || n != 11 {
		t.Fatalf("ProcessPending = %d, %v; want 11", n, err)
	}
	for _, r := range f.outbox(alertstest.Kind(store.KindImmediate)) {
		if !want[r.To] {
			t.Errorf("unexpected or repeated recipient %s", r.To)
		}
		delete(want, r.To)
	}
	if len(want) != 0 {
		t.Errorf("not alerted: %v", want)
	}
}

func TestImmediateRespectsAlertability(t *testing.T) {
	f := newSubFixture(t, nil)
	f.subscribe("ana@example.org", store.Target{DepartmentID: f.home.ID}, "immediately")
	old := traffickingEntry("old", "An old release about trafficking")
	old.Published = f.clock.Now().Add(-72 * time.Hour)
	if res := f.pull(f.src, old); res.Alerts != 0 {
		t.Fatalf("a release older than the alert age queued %d alerts", res.Alerts)
	}
	if n, err := f.svc.ProcessPending(f.ctx); n != 0 || err != nil {
		t.Fatalf("ProcessPending = %d, %v", n, err)
	}
	if rows := f.outbox(nil); len(rows) != 0 {
		t.Fatalf("outbox: %+v", rows)
	}
	// A release whose topic was retired reaches only department
	// subscribers.
	f.subscribe("topic@example.org", store.Target{TopicID: f.traffick.ID}, "immediately")
	if err := f.db.RetireTopic(f.ctx, f.traffick.Slug); err != nil {
		t.Fatal(err)
	}
	f.pull(f.src, traffickingEntry("new", "A new release about trafficking"))
	if n, err := f.svc.ProcessPending(f.ctx); n != 1 || err != nil {
		t.Fatalf("ProcessPending = %d, %v", n, err)
	}
	if rows := f.outbox(nil); len(rows) != 1 || rows[0].To != "ana@example.org" {
		t.Fatalf("outbox: %+v", rows)
	}
}

func TestImmediateSubjectsAreSafe(t *testing.T) {
	f := newSubFixture(t, nil)
	f.subscribe("ana@example.org", store.Target{DepartmentID: f.home.ID}, "immediately")
	e := traffickingEntry("x", "Line one\r\nBcc: victim@example.org <script>alert(1)</script>")
	e.Link = "javascript:alert(1)"
	f.pull(f.src, e)
	if _, err := f.svc.ProcessPending(f.ctx); err != nil {
		t.Fatal(err)
	}
	r := f.outbox(nil)[0]
	if strings.ContainsAny(r.Subject, "\r\n") {
		t.Errorf("subject has a line break: %q", r.Subject)
	}
	if strings.Contains(r.HTML, "<script>") || strings.Contains(r.HTML, "javascript:") {
		t.Errorf("HTML not escaped:\n%s", r.HTML)
	}
	if strings.Contains(r.Text, "javascript:") {
		t.Errorf("text links to a javascript: URL")
	}
	if err := checkNoHTTPInjection(r.Text); err != nil {
		t.Error(err)
	}
}

// checkNoHTTPInjection fails when a line of text begins like a header
// that an injected CRLF would have created.
func checkNoHTTPInjection(text string) error {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "Bcc:") {
			return fmt.Errorf("line starts with an injected header: %q", l)
		}
	}
	return nil
}
