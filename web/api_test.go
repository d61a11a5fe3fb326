package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"herald/store"
	"herald/store/storetest"
	"herald/web"
	"herald/web/admin"
)

// openAPIOperations lists "METHOD path" of the served OpenAPI document.
func (s *site) openAPIOperations() []string {
	s.t.Helper()
	r := s.get("/api/v1/openapi.json")
	wantStatus(s.t, r, 200)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	r.json(s.t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		s.t.Fatalf("openapi = %q", doc.OpenAPI)
	}
	var ops []string
	for path, item := range doc.Paths {
		for method := range item {
			ops = append(ops, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(ops)
	return ops
}

func TestAPIRequiresAToken(t *testing.T) {
	// Wrong tokens are rate limited (TestAPITokenGuessingIsLimited): let
	// the limiter's clock run a minute between tries.
	var clock atomic.Int64
	clock.Store(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Add(int64(time.Minute))) }
	s := newSite(t, func(c *siteConfig) { c.cfg.Now = now })
	ops := s.openAPIOperations()
	if len(ops) < 20 {
		t.Fatalf("only %d operations documented", len(ops))
	}
	fill := strings.NewReplacer("{slug}", "human-trafficking", "{name}", "home-office-news", "{id}", "1")
	for _, op := range ops {
		method, path, _ := strings.Cut(op, " ")
		path = fill.Replace(path)
		for _, tok := range []string{"", "wrong-token-0123456789abcdef", adminToken + "x", strings.ToUpper(adminToken)} {
			var body any
			if method != http.MethodGet {
				body = "{}"
			}
			r := s.api(method, path, body, tok)
			if r.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q = %d, want 401", method, path, tok, r.StatusCode)
				continue
			}
			if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(r.body, `"error"`) {
				t.Errorf("%s: 401 without WWW-Authenticate or JSON body", op)
			}
		}
	}
	// The scheme must be Bearer; the token alone or Basic is refused.
	for _, h := range []string{adminToken, "Basic " + adminToken, "Bearer"} {
		req, _ := http.NewRequest(http.MethodGet, s.url("/api/v1/topics"), nil)
		req.Header.Set("Authorization", h)
		if r := s.do(req); r.StatusCode != 401 {
			t.Errorf("Authorization: %q = %d, want 401", h, r.StatusCode)
		}
	}
	wantStatus(t, s.api("GET", "/api/v1/topics", nil), 200)
}

func TestAdminIsOffWithoutTokens(t *testing.T) {
	s := newSite(t, withoutAdmin())
	for _, p := range []string{"/api/v1/topics", "/api/v1/openapi.json", "/admin/", "/admin/login", "/admin"} {
		r := s.api("GET", p, nil)
		wantStatus(t, r, 404)
	}
	r := s.postForm("/admin/login", nil)
	if r.StatusCode != 404 && r.StatusCode != 405 {
		t.Errorf("POST /admin/login = %d", r.StatusCode)
	}
}

func TestAPITopics(t *testing.T) {
	s := newSite(t)
	s.subscribe("ana@example.org", "topic", "human-trafficking", "daily")
	s.subscribe("ana@example.org", "department", "treasury", "weekly")
	s.subscribe("ben@example.org", "topic", "human-trafficking", "immediately")
	s.subscribe("cy@example.org", "department", "home-office", "weekly")

	var topics []struct {
		Slug        string         `json:"slug"`
		URL         string         `json:"url"`
		Subscribers map[string]int `json:"subscribers"`
		Match       store.Rule     `json:"match"`
	}
	r := s.api("GET", "/api/v1/topics", nil)
	wantStatus(t, r, 200)
	r.json(t, &topics)
	if len(topics) != 1 || topics[0].Slug != "human-trafficking" || topics[0].URL != "http://news.example.org/topics/human-trafficking" {
		t.Fatalf("topics = %+v", topics)
	}
	if got := topics[0].Subscribers; got["immediately"] != 1 || got["daily"] != 1 || got["weekly"] != 0 {
		t.Errorf("subscribers = %v", got)
	}

	// Preview: what a rule would catch, and who would hear of it.
	var p struct {
		Matched     int `json:"matched_30d"`
		Subscribers int `json:"subscribers"`
		Examples    []struct {
			Title string `json:"title"`
			URL   string `json:"url"`
		} `json:"examples"`
	}
	r = s.api("POST", "/api/v1/topics/preview", map[string]any{"match": map[string]any{"keywords": []string{"passports"}, "departments": []string{"home-office"}}})
	wantStatus(t, r, 200)
	r.json(t, &p)
	if p.Matched != 23 || len(p.Examples) != 10 || p.Subscribers != 1 || p.Examples[0].Title != "Home Office notice 23 on passports" {
		t.Errorf("preview = %+v", p)
	}
	// Editing a topic: its own two subscribers, and the Treasury's one
	// (ana, already counted).
	r = s.api("POST", "/api/v1/topics/preview", map[string]any{"slug": "human-trafficking", "match": map[string]any{"keywords": []string{"slavery"}, "departments": []string{"treasury", "home-office"}}})
	wantStatus(t, r, 200)
	r.json(t, &p)
	if p.Matched != 1 || p.Subscribers != 3 {
		t.Errorf("preview for an existing topic = %+v", p)
	}

	// Create, then see it on the public site.
	r = s.api("POST", "/api/v1/topics", map[string]any{"slug": "passports", "title": "Passports", "description": "Fees and renewals.",
		"match": map[string]any{"keywords": []string{"passports"}}})
	wantStatus(t, r, 201)
	if loc := r.Header.Get("Location"); loc != "http://news.example.org/api/v1/topics/passports" {
		t.Errorf("Location = %q", loc)
	}
	page := s.get("/topics/passports")
	wantStatus(t, page, 200)
	if !strings.Contains(page.body, "Home Office notice 23 on passports") {
		t.Error("the new topic's page does not list its releases")
	}
	r = s.api("POST", "/api/v1/topics", map[string]any{"slug": "passports", "title": "Again", "match": map[string]any{"keywords": []string{"x"}}})
	wantStatus(t, r, 400)
	if f := r.fieldErrors(t); !strings.Contains(f["slug"], "already taken") {
		t.Errorf("duplicate slug: %v", f)
	}

	wantStatus(t, s.api("GET", "/api/v1/topics/passports", nil), 200)
	wantStatus(t, s.api("GET", "/api/v1/topics/nowhere", nil), 404)

	r = s.api("PUT", "/api/v1/topics/passports", map[string]any{"title": "Passport news", "match": map[string]any{"keywords": []string{"passports"}}})
	wantStatus(t, r, 200)
	if got, _ := s.db.TopicBySlug(context.Background(), "passports"); got.Title != "Passport news" || got.Description != "" {
		t.Errorf("after PUT: %+v", got)
	}
	wantStatus(t, s.api("PUT", "/api/v1/topics/nowhere", map[string]any{"title": "x", "match": map[string]any{"keywords": []string{"x"}}}), 404)
	r = s.api("PUT", "/api/v1/topics/passports", map[string]any{"slug": "renamed", "title": "x", "match": map[string]any{"keywords": []string{"x"}}})
	wantStatus(t, r, 400)
	if f := r.fieldErrors(t); f["slug"] == "" {
		t.Errorf("renaming: %v", f)
	}

	r = s.api("POST", "/api/v1/topics/passports/retire", nil)
	wantStatus(t, r, 200)
	if !strings.Contains(r.body, `"retired_at"`) {
		t.Errorf("retired topic = %s", r.body)
	}
	page = s.get("/topics/passports")
	if !strings.Contains(page.body, "This topic has ended") || strings.Contains(page.body, `action="/subscribe"`) {
		t.Error("a retired topic's page still offers subscribing")
	}
	wantStatus(t, s.api("POST", "/api/v1/topics/nowhere/retire", nil), 404)
	r = s.api("GET", "/api/v1/topics", nil)
	if strings.Contains(r.body, `"passports"`) {
		t.Error("retired topic listed without ?retired=true")
	}
	if r = s.api("GET", "/api/v1/topics?retired=true", nil); !strings.Contains(r.body, `"passports"`) {
		t.Error("retired topic not listed with ?retired=true")
	}
}

func TestAPIRejectsBadInput(t *testing.T) {
	s := newSite(t)
	tests := []struct {
		name, method, path string
		body               any
		status             int
		fields             []string
	}{
		{"empty topic", "POST", "/api/v1/topics", map[string]any{}, 400, []string{"slug", "title", "match"}},
		{"bad slug", "POST", "/api/v1/topics", map[string]any{"slug": "Bad Slug", "title": "t", "match": map[string]any{"keywords": []string{"k"}}}, 400, []string{"slug"}},
		{"CRLF in title", "POST", "/api/v1/topics", map[string]any{"slug": "ok", "title": "a\r\nb", "match": map[string]any{"keywords": []string{"k"}}}, 400, []string{"title"}},
		{"CRLF in slug", "POST", "/api/v1/topics", map[string]any{"slug": "ok\r\n", "title": "t", "match": map[string]any{"keywords": []string{"k"}}}, 400, []string{"slug"}},
		{"CRLF in keyword", "POST", "/api/v1/topics", map[string]any{"slug": "ok", "title": "t", "match": map[string]any{"keywords": []string{"k", "a\r\nb"}}}, 400, []string{"match.keywords[1]"}},
		{"bell in description", "POST", "/api/v1/topics", map[string]any{"slug": "ok", "title": "t", "description": "a\x07", "match": map[string]any{"keywords": []string{"k"}}}, 400, []string{"description"}},
		{"keyword without letters", "POST", "/api/v1/topics", map[string]any{"slug": "ok", "title": "t", "match": map[string]any{"keywords": []string{"ok", "!!!"}}}, 400, []string{"match.keywords[1]"}},
		{"unknown department", "POST", "/api/v1/topics", map[string]any{"slug": "ok", "title": "t", "match": map[string]any{"departments": []string{"nowhere"}}}, 400, []string{"match.departments[0]"}},
		{"unknown field", "POST", "/api/v1/topics", map[string]any{"slug": "ok", "colour": "red"}, 400, []string{"colour"}},
		{"wrong type", "POST", "/api/v1/topics", map[string]any{"slug": "ok", "title": 5}, 400, []string{"title"}},
		{"not JSON", "POST", "/api/v1/topics", "{", 400, nil},
		{"two objects", "POST", "/api/v1/topics", `{"slug":"a"} {"slug":"b"}`, 400, nil},
		{"empty body", "POST", "/api/v1/topics", "", 400, nil},
		{"array body", "POST", "/api/v1/topics", "[]", 400, nil},
		{"empty preview", "POST", "/api/v1/topics/preview", map[string]any{"match": map[string]any{}}, 400, []string{"match"}},
		{"preview CRLF slug", "POST", "/api/v1/topics/preview", map[string]any{"slug": "a\r\nb", "match": map[string]any{"keywords": []string{"k"}}}, 400, []string{"slug"}},
		{"source bad URL", "POST", "/api/v1/sources", map[string]any{"name": "n", "url": "ftp://x", "department": "home-office"}, 400, []string{"url"}},
		{"source CRLF URL", "POST", "/api/v1/sources", map[string]any{"name": "n", "url": "https://x.example/\r\nHost: y", "department": "home-office"}, 400, []string{"url"}},
		{"source unknown department", "POST", "/api/v1/sources", map[string]any{"name": "n", "url": "https://x.example/f", "department": "nowhere"}, 400, []string{"department"}},
		{"source bad format", "POST", "/api/v1/sources", map[string]any{"name": "n", "url": "https://x.example/f", "department": "home-office", "format": "csv"}, 400, []string{"format"}},
		{"source taken", "POST", "/api/v1/sources", map[string]any{"name": "home-office-news", "url": "https://x.example/f", "department": "home-office"}, 400, []string{"name"}},
		{"department CRLF name", "POST", "/api/v1/departments", map[string]any{"slug": "d", "name": "A\r\nB"}, 400, []string{"name"}},
		{"department bad url", "POST", "/api/v1/departments", map[string]any{"slug": "d", "name": "D", "url": "javascript:alert(1)"}, 400, []string{"url"}},
		{"department taken", "POST", "/api/v1/departments", map[string]any{"slug": "home-office", "name": "D"}, 400, []string{"slug"}},
		{"department rename", "PUT", "/api/v1/departments/home-office", map[string]any{"slug": "other", "name": "D"}, 400, []string{"slug"}},
		{"lookup without address", "GET", "/api/v1/subscribers", nil, 400, []string{"address"}},
		{"lookup bad address", "GET", "/api/v1/subscribers?address=not-an-address", nil, 400, []string{"address"}},
		{"lookup display name", "GET", "/api/v1/subscribers?address=Ana+%3Cana@example.org%3E", nil, 400, []string{"address"}},
		{"lookup CRLF address", "GET", "/api/v1/subscribers?address=ana@example.org%0d%0aBcc:x@example.org", nil, 400, []string{"address"}},
		{"erase CRLF address", "POST", "/api/v1/subscribers/erase", map[string]any{"address": "ana@example.org\r\nBcc: x@example.org"}, 400, []string{"address"}},
		{"lift bad address", "POST", "/api/v1/subscribers/lift-suppression", map[string]any{"address": "@example.org"}, 400, []string{"address"}},
		{"failed limit", "GET", "/api/v1/outbox/failed?limit=0", nil, 400, []string{"limit"}},
		{"failed limit too high", "GET", "/api/v1/outbox/failed?limit=501", nil, 400, []string{"limit"}},
		{"suppressions limit", "GET", "/api/v1/suppressions?limit=1001", nil, 400, []string{"limit"}},
		{"suppressions limit not a number", "GET", "/api/v1/suppressions?limit=ten", nil, 400, []string{"limit"}},
		{"searches limit", "GET", "/api/v1/searches?limit=0", nil, 400, []string{"limit"}},
		{"searches limit not a number", "GET", "/api/v1/searches?limit=1e3", nil, 400, []string{"limit"}},
		{"text body", "POST", "/api/v1/departments", nil, 415, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			if tc.name == "text body" {
				req, _ := http.NewRequest("POST", s.url(tc.path), strings.NewReader("slug=x"))
				req.Header.Set("Authorization", "Bearer "+adminToken)
				req.Header.Set("Content-Type", "text/plain")
				r = s.do(req)
			} else {
				r = s.api(tc.method, tc.path, tc.body)
			}
			wantStatus(t, r, tc.status)
			if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			f := r.fieldErrors(t)
			for _, name := range tc.fields {
				if f[name] == "" {
					t.Errorf("no problem named for %q: %v", name, f)
				}
			}
			if len(tc.fields) == 0 && len(f) != 0 {
				t.Errorf("unexpected field problems %v", f)
			}
		})
	}
	if got, _ := s.db.Topics(context.Background(), true); len(got) != 1 {
		t.Errorf("bad input created topics: %d", len(got))
	}
}

func TestAPIBodyLimit(t *testing.T) {
	s := newSite(t, withMaxBody(1024))
	big := `{"slug":"big","title":"` + strings.Repeat("x", 2000) + `","match":{"keywords":["k"]}}`
	r := s.api("POST", "/api/v1/topics", big)
	wantStatus(t, r, 413)
	if !strings.Contains(r.body, "larger than the limit of 1024 bytes") {
		t.Errorf("413 body = %s", r.body)
	}
	// Without a Content-Length the limit holds while reading.
	req, _ := http.NewRequest("POST", s.url("/api/v1/topics"), struct{ *strings.Reader }{strings.NewReader(big)})
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.ContentLength = -1
	wantStatus(t, s.do(req), 413)
}

// publisher serves a publisher's feed, and a broken one.
func publisher(t *testing.T) *httptest.Server {
	feed, err := os.ReadFile("testdata/publisher.atom")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/news.atom" {
			w.Header().Set("Content-Type", "application/atom+xml")
			w.Write(feed)
			return
		}
		http.Error(w, "upstream is down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAPISourcesAndPull(t *testing.T) {
	s := newSite(t)
	pub := publisher(t)
	r := s.api("POST", "/api/v1/departments", map[string]any{"slug": "transport", "name": "Department for Transport", "url": "https://transport.example.org"})
	wantStatus(t, r, 201)

	r = s.api("POST", "/api/v1/sources", map[string]any{"name": "transport-news", "url": pub.URL + "/news.atom", "department": "transport", "format": "atom"})
	wantStatus(t, r, 201)
	var src struct {
		Name, Health, LastStatus, LastError string
		Enabled                             bool
		FailureCount                        int `json:"failure_count"`
	}
	r.json(t, &src)
	if src.Health != "never-pulled" || !src.Enabled {
		t.Errorf("new source = %+v", src)
	}

	r = s.api("POST", "/api/v1/sources/transport-news/pull", nil)
	wantStatus(t, r, 200)
	r.json(t, &src)
	if src.Health != "ok" {
		t.Errorf("after pull: %s", r.body)
	}
	page := s.get("/departments/transport")
	if !strings.Contains(page.body, "Rail timetable changes from May") {
		t.Error("pulled releases are not on the department's page")
	}

	r = s.api("PUT", "/api/v1/sources/transport-news", map[string]any{"url": pub.URL + "/broken.atom", "department": "transport"})
	wantStatus(t, r, 200)
	r = s.api("POST", "/api/v1/sources/transport-news/pull", nil)
	wantStatus(t, r, 502)
	if !strings.Contains(r.body, "Pulling transport-news failed") {
		t.Errorf("failed pull = %s", r.body)
	}
	r = s.api("GET", "/api/v1/sources/transport-news", nil)
	wantStatus(t, r, 200)
	var failed struct {
		Health       string
		LastError    string `json:"last_error"`
		FailureCount int    `json:"failure_count"`
		Enabled      bool
	}
	r.json(t, &failed)
	if failed.Health != "failing" || failed.FailureCount != 1 || failed.LastError == "" || !failed.Enabled {
		t.Errorf("after a failed pull: %+v", failed)
	}

	r = s.api("POST", "/api/v1/sources/transport-news/disable", nil)
	wantStatus(t, r, 200)
	if !strings.Contains(r.body, `"health": "disabled"`) {
		t.Errorf("disabled = %s", r.body)
	}
	wantStatus(t, s.api("POST", "/api/v1/sources/transport-news/enable", nil), 200)

	var list []map[string]any
	r = s.api("GET", "/api/v1/sources", nil)
	r.json(t, &list)
	if len(list) != 3 {
		t.Errorf("%d sources listed", len(list))
	}
	for _, p := range []string{"/api/v1/sources/nowhere", "/api/v1/departments/nowhere"} {
		wantStatus(t, s.api("GET", p, nil), 404)
	}
	for _, p := range []string{"/api/v1/sources/nowhere/pull", "/api/v1/sources/nowhere/disable", "/api/v1/sources/nowhere/enable"} {
		wantStatus(t, s.api("POST", p, nil), 404)
	}
	wantStatus(t, s.api("PUT", "/api/v1/sources/nowhere", map[string]any{"url": "https://x.example/f", "department": "transport"}), 404)

	r = s.api("PUT", "/api/v1/departments/transport", map[string]any{"name": "Transport"})
	wantStatus(t, r, 200)
	if d, _ := s.db.DepartmentBySlug(context.Background(), "transport"); d.Name != "Transport" || d.URL != "" {
		t.Errorf("department after PUT = %+v", d)
	}
	r = s.api("GET", "/api/v1/departments", nil)
	if !strings.Contains(r.body, `"slug": "transport"`) {
		t.Errorf("departments = %s", r.body)
	}
}

func TestAPISubscribers(t *testing.T) {
	s := newSite(t)
	s.subscribe("ana@example.org", "topic", "human-trafficking", "daily")
	s.suppress("ana@example.org", "550 mailbox unavailable")

	r := s.api("GET", "/api/v1/subscribers?address=ana@example.org", nil)
	wantStatus(t, r, 200)
	var info admin.SubscriberInfo
	r.json(t, &info)
	if info.Address != "ana@example.org" || info.Status != "confirmed" || !info.Suppressed || info.SuppressionReason != "550 mailbox unavailable" ||
		len(info.Subscriptions) != 1 || info.Subscriptions[0].Topic != "human-trafficking" || info.Subscriptions[0].Status != "active" {
		t.Errorf("lookup = %+v", info)
	}
	wantStatus(t, s.api("GET", "/api/v1/subscribers?address=nobody@example.org", nil), 404)

	r = s.api("GET", "/api/v1/subscribers/export?address=ana@example.org", nil)
	wantStatus(t, r, 200)
	if !strings.HasPrefix(r.Header.Get("Content-Disposition"), "attachment") || !strings.Contains(r.body, `"address": "ana@example.org"`) ||
		!strings.Contains(r.body, `"suppression_reason": "550 mailbox unavailable"`) {
		t.Errorf("export = %s %s", r.Header.Get("Content-Disposition"), r.body)
	}
	wantStatus(t, s.api("GET", "/api/v1/subscribers/export?address=nobody@example.org", nil), 404)

	wantStatus(t, s.api("POST", "/api/v1/subscribers/lift-suppression", map[string]any{"address": "ana@example.org"}), 204)
	if info, _ := s.subs.LookupSubscriber(context.Background(), "ana@example.org"); info.Suppressed {
		t.Error("suppression not lifted")
	}
	wantStatus(t, s.api("POST", "/api/v1/subscribers/lift-suppression", map[string]any{"address": "ana@example.org"}), 404)

	wantStatus(t, s.api("POST", "/api/v1/subscribers/erase", map[string]any{"address": "ana@example.org"}), 204)
	wantStatus(t, s.api("GET", "/api/v1/subscribers?address=ana@example.org", nil), 404)
	wantStatus(t, s.api("POST", "/api/v1/subscribers/erase", map[string]any{"address": "ana@example.org"}), 404)

	if strings.Contains(s.logs.String(), "ana@example.org") {
		t.Error("a subscriber's address reached the log")
	}
}

func TestAPIOutbox(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	_, err := s.db.EnqueueEmails(ctx, []store.OutboxMessage{
		{Key: "confirm:1:a", Kind: store.KindConfirm, SubscriberID: 1, To: "ana@example.org", Subject: "Confirm your subscription", Text: "t", HTML: "h"},
		{Key: "confirm:2:b", Kind: store.KindConfirm, SubscriberID: 2, To: "ben@example.org", Subject: "Confirm your subscription", Text: "t", HTML: "h"},
	})
	if err != nil {
		t.Fatal(err)
	}
	failedID := storetest.Deliver(t, s.db, "confirm:2:b", store.StatusFailed, "550 5.1.1 no such user")

	var st struct {
		Counts        map[string]int `json:"counts"`
		Depth         int            `json:"depth"`
		OldestWaiting time.Time      `json:"oldest_waiting"`
	}
	r := s.api("GET", "/api/v1/outbox", nil)
	wantStatus(t, r, 200)
	r.json(t, &st)
	if st.Counts["pending"] != 1 || st.Counts["failed"] != 1 || st.Counts["sent"] != 0 || st.Depth != 1 || !st.OldestWaiting.Equal(s.now) {
		t.Errorf("outbox = %+v", st)
	}

	var failed []map[string]any
	r = s.api("GET", "/api/v1/outbox/failed?limit=10", nil)
	wantStatus(t, r, 200)
	r.json(t, &failed)
	if len(failed) != 1 || failed[0]["last_error"] != "550 5.1.1 no such user" {
		t.Errorf("failed = %v", failed)
	}
	if strings.Contains(r.body, "ben@example.org") {
		t.Error("the failed list shows the address")
	}

	id := strconv.FormatInt(failedID, 10)
	wantStatus(t, s.api("POST", "/api/v1/outbox/"+id+"/retry", nil), 204)
	r = s.api("POST", "/api/v1/outbox/"+id+"/retry", nil)
	wantStatus(t, r, 409)
	wantStatus(t, s.api("POST", "/api/v1/outbox/999999/retry", nil), 404)
	wantStatus(t, s.api("POST", "/api/v1/outbox/abc/retry", nil), 404)
	r = s.api("GET", "/api/v1/outbox", nil)
	r.json(t, &st)
	if st.Counts["pending"] != 2 || st.Counts["failed"] != 0 {
		t.Errorf("after retry: %+v", st.Counts)
	}
}

func regexpAll(expr, s string) []string {
	var out []string
	for _, m := range regexp.MustCompile(expr).FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestOpenAPIDocument(t *testing.T) {
	s := newSite(t)
	r := s.get("/api/v1/openapi.json")
	wantStatus(t, r, 200)
	var doc struct {
		Servers []struct{ URL string } `json:"servers"`
		Paths   map[string]map[string]struct {
			OperationID string         `json:"operationId"`
			Responses   map[string]any `json:"responses"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	r.json(t, &doc)
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "http://news.example.org" {
		t.Errorf("servers = %+v", doc.Servers)
	}
	ids := map[string]bool{}
	for path, item := range doc.Paths {
		for method, op := range item {
			if op.OperationID == "" || ids[op.OperationID] {
				t.Errorf("%s %s: operationId %q missing or repeated", method, path, op.OperationID)
			}
			ids[op.OperationID] = true
			if op.Responses["401"] == nil {
				t.Errorf("%s %s does not document 401", method, path)
			}
		}
	}
	// Every $ref names a schema that exists.
	for _, m := range regexpAll(`"\$ref": "#/components/schemas/([A-Za-z]+)"`, r.body) {
		if doc.Components.Schemas[m] == nil {
			t.Errorf("$ref to missing schema %s", m)
		}
	}
}

// The OpenAPI document and the router agree: every registered API route is
// documented, and every documented operation is registered (a request to
// it reaches the token check rather than a 404 or 405).
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	s := newSite(t)
	documented := map[string]bool{}
	for _, op := range s.openAPIOperations() {
		documented[op] = true
	}
	routes := s.server.APIRoutes()
	if len(routes) != len(documented) {
		t.Errorf("%d routes registered, %d documented", len(routes), len(documented))
	}
	for _, r := range routes {
		if !documented[r] {
			t.Errorf("route %s is not in the OpenAPI document", r)
		}
	}
	registered := map[string]bool{}
	for _, r := range routes {
		registered[r] = true
	}
	for op := range documented {
		if !registered[op] {
			t.Errorf("documented operation %s is not registered", op)
		}
	}
}

// Without a puller, subscriber side or outbox, their routes are neither
// served nor documented.
func TestOpenAPIOmitsMissingParts(t *testing.T) {
	s := newSite(t, withDeps(func(d *web.Deps) { d.Puller, d.Subscribers, d.SubscriberStats, d.Outbox = nil, nil, nil, nil }))
	ops := s.openAPIOperations()
	if len(ops) != len(s.server.APIRoutes()) {
		t.Errorf("%d documented, %d registered", len(ops), len(s.server.APIRoutes()))
	}
	for _, op := range ops {
		if strings.Contains(op, "/pull") || strings.Contains(op, "/subscribers") || strings.Contains(op, "/outbox") {
			t.Errorf("%s is documented but not served", op)
		}
	}
	wantStatus(t, s.api("GET", "/api/v1/outbox", nil), 404)
	r := s.api("GET", "/api/v1/topics", nil)
	wantStatus(t, r, 200)
	if strings.Contains(r.body, `"subscribers"`) {
		t.Error("topics show subscriber counts with nothing to count them")
	}
	s.login()
	for _, p := range []string{"/admin/", "/admin/topics", "/admin/sources/home-office-news/edit"} {
		r := s.get(p)
		wantStatus(t, r, 200)
		for _, absent := range []string{`href="/admin/subscribers"`, `href="/admin/outbox"`, "Pull now", "New subscribers per day"} {
			if strings.Contains(r.body, absent) {
				t.Errorf("%s offers %q", p, absent)
			}
		}
	}
}
