package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"herald/store"
	"herald/store/storetest"
	"herald/templates"
	"herald/web"
)

func TestLogin(t *testing.T) {
	s := newSite(t)
	form := s.get("/admin/login")
	wantStatus(t, form, 200)
	for _, want := range []string{`<label for="token">Admin token</label>`, `type="password" id="token" name="token"`, `name="csrf_token"`} {
		if !strings.Contains(form.body, want) {
			t.Errorf("login form lacks %q", want)
		}
	}
	tok := csrfField.FindStringSubmatch(form.body)[1]

	// No token, a forged token: refused before the admin token is looked at.
	r := s.postForm("/admin/login", url.Values{"token": {adminToken}})
	wantStatus(t, r, 403)
	r = s.postForm("/admin/login", url.Values{"csrf_token": {"forged" + tok[6:]}, "token": {adminToken}})
	wantStatus(t, r, 403)
	if strings.Contains(r.Header.Get("Set-Cookie"), "herald_admin") {
		t.Error("a session was made without a valid CSRF token")
	}

	r = s.postForm("/admin/login", url.Values{"csrf_token": {tok}, "token": {"wrong-token-0123456789"}})
	wantStatus(t, r, 403)
	for _, want := range []string{`<p class="error" id="token-error">`, `aria-invalid="true"`, "That token is not valid"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("wrong-token page lacks %q", want)
		}
	}

	r = s.postForm("/admin/login", url.Values{"csrf_token": {tok}, "token": {adminToken}, "next": {"/admin/topics"}})
	wantStatus(t, r, 303)
	if loc := r.Header.Get("Location"); loc != "/admin/topics" {
		t.Errorf("redirect to %q", loc)
	}
	c := r.Header.Get("Set-Cookie")
	for _, want := range []string{"herald_admin=", "Path=/admin", "HttpOnly", "SameSite=Lax", "Max-Age=43200"} {
		if !strings.Contains(c, want) {
			t.Errorf("session cookie %q lacks %s", c, want)
		}
	}
	if strings.Contains(c, "Secure") {
		t.Error("Secure cookie on an http site")
	}
	if strings.Contains(c, adminToken) {
		t.Error("the cookie carries the admin token")
	}
	wantStatus(t, s.get("/admin/"), 200)
	// Signed in, the login page sends the admin on.
	wantStatus(t, s.get("/admin/login"), 303)

	// Logging out ends the session on the server.
	dash := s.get("/admin/")
	sessionTok := csrfField.FindStringSubmatch(dash.body)[1]
	old := s.client.Jar.Cookies(mustURL(s.url("/admin/")))
	wantStatus(t, s.postForm("/admin/logout", url.Values{"csrf_token": {sessionTok}}), 303)
	r = s.get("/admin/")
	wantStatus(t, r, 303)
	// Replaying the old cookie does not bring the session back.
	s.client.Jar.SetCookies(mustURL(s.url("/admin/")), old)
	r = s.get("/admin/")
	wantStatus(t, r, 303)
	if loc := r.Header.Get("Location"); loc != "/admin/login?next=%2Fadmin%2F" {
		t.Errorf("redirect to %q", loc)
	}
}

func mustURL(raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	return u
}

func TestSecureCookieOnHTTPS(t *testing.T) {
	ctx := context.Background()
	s := newSite(t)
	server, err := web.New(s.db, web.Config{BaseURL: "https://news.example.org", AdminTokens: []string{adminToken}, TemplatesFS: templates.Embedded()},
		web.Deps{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	get := newRecorderRequest(ctx, server, "GET", "/admin/login", "", nil)
	tok := csrfField.FindStringSubmatch(get.Body.String())[1]
	var csrfC *http.Cookie
	for _, c := range get.Result().Cookies() {
		if c.Name == csrfCookie {
			csrfC = c
		}
	}
	post := newRecorderRequest(ctx, server, "POST", "/admin/login", url.Values{"csrf_token": {tok}, "token": {adminToken}}.Encode(), csrfC)
	if post.Code != 303 || !strings.Contains(post.Header().Get("Set-Cookie"), "; Secure") {
		t.Errorf("https login = %d, cookie %q", post.Code, post.Header().Get("Set-Cookie"))
	}
}

func TestLoginAttemptsAreRateLimited(t *testing.T) {
	s := newSite(t)
	tok := s.csrf("/admin/login")
	for i := 1; i <= 5; i++ {
		r := s.postForm("/admin/login", url.Values{"csrf_token": {tok}, "token": {"guess-" + strconv.Itoa(i)}})
		wantStatus(t, r, 403)
	}
	r := s.postForm("/admin/login", url.Values{"csrf_token": {tok}, "token": {adminToken}})
	wantStatus(t, r, 429)
	if r.Header.Get("Retry-After") == "" || !strings.Contains(r.body, "too many sign-in attempts") {
		t.Errorf("429 without Retry-After or explanation: %s", r.body)
	}
}

func TestLoginRedirectStaysOnTheConsole(t *testing.T) {
	s := newSite(t)
	for _, next := range []string{"//evil.example.org/admin/", "https://evil.example.org/", "/admin/\r\nSet-Cookie: x", "/public"} {
		s2 := newSite(t)
		tok := s2.csrf("/admin/login")
		r := s2.postForm("/admin/login", url.Values{"csrf_token": {tok}, "token": {adminToken}, "next": {next}})
		wantStatus(t, r, 303)
		if loc := r.Header.Get("Location"); loc != "/admin/" {
			t.Errorf("next=%q redirected to %q", next, loc)
		}
	}
	r := s.get("/admin/topics?x=1")
	wantStatus(t, r, 303)
	if loc := r.Header.Get("Location"); loc != "/admin/login?next=%2Fadmin%2Ftopics%3Fx%3D1" {
		t.Errorf("redirect = %q", loc)
	}
}

func TestConsolePages(t *testing.T) {
	s := newSite(t)
	s.subscribe("ana@example.org", "topic", "human-trafficking", "weekly")
	s.suppress("ana@example.org", "550 mailbox unavailable")
	s.login()
	tests := []struct {
		path   string
		status int
		want   []string
	}{
		{"/admin", 303, nil},
		{"/admin/", 200, []string{"<h1>Dashboard</h1>", "releases stored", "Releases stored per day: 26 in all", "New subscribers per day: 1 in all",
			"Emails sent per day", `<rect x=`, "home-office-news", "treasury-news", `aria-current="page">Dashboard`}},
		{"/admin/topics", 200, []string{`<a href="/admin/topics/human-trafficking/edit">Human trafficking</a>`, "<td>1</td>"}},
		{"/admin/topics/new", 200, []string{`<label for="slug">Slug</label>`, `formaction="/admin/topics/preview"`, `<input type="checkbox" id="dept-home-office" name="departments" value="home-office">`}},
		{"/admin/topics/human-trafficking/edit", 200, []string{`value="Human trafficking"`, "trafficking\nmodern slavery</textarea>", "Retire topic", "0 immediately, 0 daily, 1 weekly"}},
		{"/admin/topics/nowhere/edit", 404, nil},
		{"/admin/sources", 200, []string{"home-office-news", `<span class="badge badge-ok">ok</span>`, "Add a source"}},
		{"/admin/sources/home-office-news/edit", 200, []string{"Pull now", "Disable", `value="https://home-office.example.org/feed.atom"`, "Recent pulls"}},
		{"/admin/sources/nowhere/edit", 404, nil},
		{"/admin/departments", 200, []string{`<a href="/admin/departments/home-office/edit">Home Office</a>`, "Add a department"}},
		{"/admin/departments/home-office/edit", 200, []string{`value="Home Office"`}},
		{"/admin/departments/nowhere/edit", 404, nil},
		{"/admin/subscribers", 200, []string{`<label for="address">Email address</label>`}},
		{"/admin/subscribers?address=ana@example.org", 200, []string{"<h2 id=\"subscriber-heading\">ana@example.org</h2>", "Lift suppression", "Erase", `href="/admin/subscribers/export?address=ana%40example.org"`}},
		{"/admin/subscribers?address=nobody@example.org", 200, []string{"No subscriber has that address."}},
		{"/admin/subscribers?address=bad%0d%0aaddress", 400, []string{`<p class="error" id="address-error">`, "Email address must not contain line breaks"}},
		{"/admin/outbox", 200, []string{"<h1>Outbox</h1>", "No failed messages."}},
		{"/admin/nowhere", 404, nil},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			r := s.get(tc.path)
			wantStatus(t, r, tc.status)
			for _, w := range tc.want {
				if !strings.Contains(r.body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			if tc.status == 200 && r.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q", r.Header.Get("Cache-Control"))
			}
		})
	}
}

// Every console form refuses a post without the session's token.
func TestConsoleFormsNeedTheSessionToken(t *testing.T) {
	s := newSite(t)
	s.login()
	posts := []string{
		"/admin/logout", "/admin/topics", "/admin/topics/preview", "/admin/topics/human-trafficking/edit",
		"/admin/topics/human-trafficking/retire", "/admin/sources", "/admin/sources/home-office-news/edit",
		"/admin/sources/home-office-news/disable", "/admin/sources/home-office-news/enable", "/admin/sources/home-office-news/pull",
		"/admin/departments", "/admin/departments/home-office/edit", "/admin/subscribers/erase",
		"/admin/subscribers/lift-suppression", "/admin/outbox/1/retry",
	}
	good := csrfField.FindStringSubmatch(s.get("/admin/").body)[1]
	other := newSite(t)
	other.login()
	foreign := csrfField.FindStringSubmatch(other.get("/admin/").body)[1]
	for _, p := range posts {
		for name, tok := range map[string]string{"missing": "", "forged": good[:len(good)-2] + "xx", "another session's": foreign} {
			r := s.postForm(p, url.Values{"csrf_token": {tok}, "slug": {"x"}, "title": {"x"}, "keywords": {"x"}, "confirm": {"yes"}, "address": {"ana@example.org"}})
			if r.StatusCode != 403 {
				t.Errorf("POST %s with a %s token = %d, want 403", p, name, r.StatusCode)
			}
		}
	}
	if t2, _ := s.db.TopicBySlug(context.Background(), "human-trafficking"); t2.Retired() {
		t.Error("a forged post retired a topic")
	}
	// Signed out, a post is sent to the login page and does nothing.
	anon := newSite(t)
	r := anon.postForm("/admin/topics/human-trafficking/retire", url.Values{"csrf_token": {good}})
	wantStatus(t, r, 303)
	if t2, _ := anon.db.TopicBySlug(context.Background(), "human-trafficking"); t2.Retired() {
		t.Error("an anonymous post retired a topic")
	}
}

// formToken reads the CSRF token of a console page.
func (s *site) formToken() string {
	s.t.Helper()
	return s.csrf("/admin/")
}

func TestConsoleTopicForms(t *testing.T) {
	s := newSite(t)
	s.login()
	tok := s.formToken()

	r := s.postForm("/admin/topics/preview", url.Values{"csrf_token": {tok}, "slug": {"passports"}, "title": {"Passports"},
		"keywords": {"passports\r\n\r\n"}, "departments": {"home-office"}})
	wantStatus(t, r, 200)
	for _, want := range []string{"would have matched <strong>23</strong> releases", "Home Office notice 23 on passports", `value="passports"`,
		`id="dept-home-office" name="departments" value="home-office" checked`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("preview lacks %q", want)
		}
	}

	r = s.postForm("/admin/topics", url.Values{"csrf_token": {tok}, "slug": {"Bad Slug"}, "title": {"Two\r\nlines"},
		"keywords": {"ok\n!!!"}})
	wantStatus(t, r, 400)
	for _, want := range []string{
		`<div class="error-summary" role="alert"`, `<a href="#slug">Slug must be`, `<p class="error" id="slug-error">`,
		`<p class="error" id="title-error"><span class="visually-hidden">Error:</span> Title must not contain line breaks or control characters.</p>`,
		"Keywords, line 2, must contain a letter or a digit.", `aria-invalid="true" aria-describedby="title-error"`,
		`value="Bad Slug"`, "ok\n!!!</textarea>",
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("form with errors lacks %q", want)
		}
	}

	r = s.postForm("/admin/topics", url.Values{"csrf_token": {tok}, "slug": {"passports"}, "title": {"Passports"},
		"description": {"Fees and renewals.\r\nAll of them."}, "keywords": {"passports"}, "departments": {"home-office"}})
	wantStatus(t, r, 303)
	if loc := r.Header.Get("Location"); loc != "/admin/topics/passports/edit" {
		t.Fatalf("created topic redirects to %q", loc)
	}
	edit := s.get("/admin/topics/passports/edit")
	if !strings.Contains(edit.body, "Topic “Passports” created.") {
		t.Error("no confirmation after creating")
	}
	if again := s.get("/admin/topics/passports/edit"); strings.Contains(again.body, "created.") {
		t.Error("the confirmation shows twice")
	}
	topic, err := s.db.TopicBySlug(context.Background(), "passports")
	if err != nil || topic.Description != "Fees and renewals.\nAll of them." {
		t.Fatalf("topic = %+v, %v", topic, err)
	}
	if page := s.get("/topics/passports"); !strings.Contains(page.body, "Home Office notice 23 on passports") {
		t.Error("the public page does not show the new topic's news")
	}

	r = s.postForm("/admin/topics/passports/edit", url.Values{"csrf_token": {tok}, "title": {"Passport news"}, "keywords": {"passports\nfees"}})
	wantStatus(t, r, 303)
	topic, _ = s.db.TopicBySlug(context.Background(), "passports")
	if topic.Title != "Passport news" || len(topic.Rule.Keywords) != 2 || len(topic.Rule.Departments) != 0 {
		t.Errorf("after edit: %+v", topic)
	}
	r = s.postForm("/admin/topics/passports/edit", url.Values{"csrf_token": {tok}, "title": {""}, "keywords": {""}})
	wantStatus(t, r, 400)
	if !strings.Contains(r.body, "Title is required.") || !strings.Contains(r.body, "The rule must give at least one department, category or keyword.") {
		t.Errorf("empty edit:\n%s", excerptBody(r.body))
	}

	// Preview while editing counts the topic's subscribers.
	s.subscribe("ana@example.org", "topic", "passports", "daily")
	r = s.postForm("/admin/topics/preview", url.Values{"csrf_token": {tok}, "editing": {"passports"}, "title": {"Passport news"}, "keywords": {"fees"}})
	wantStatus(t, r, 200)
	if !strings.Contains(r.body, "<strong>1</strong> current subscriber would be emailed about them (the topic’s own") || !strings.Contains(r.body, `action="/admin/topics/passports/edit"`) {
		t.Errorf("edit preview:\n%s", excerptBody(r.body))
	}

	wantStatus(t, s.postForm("/admin/topics/passports/retire", url.Values{"csrf_token": {tok}}), 303)
	if topic, _ = s.db.TopicBySlug(context.Background(), "passports"); !topic.Retired() {
		t.Error("not retired")
	}
	wantStatus(t, s.postForm("/admin/topics/nowhere/retire", url.Values{"csrf_token": {tok}}), 404)
	wantStatus(t, s.postForm("/admin/topics/nowhere/edit", url.Values{"csrf_token": {tok}, "title": {"x"}, "keywords": {"x"}}), 404)
}

func TestConsoleSourceAndDepartmentForms(t *testing.T) {
	s := newSite(t)
	pub := publisher(t)
	s.login()
	tok := s.formToken()
	ctx := context.Background()

	r := s.postForm("/admin/departments", url.Values{"csrf_token": {tok}, "slug": {"transport"}, "name": {"Transport"}, "url": {"javascript:alert(1)"}})
	wantStatus(t, r, 400)
	if !strings.Contains(r.body, "URL must be an absolute http:// or https:// URL.") {
		t.Errorf("bad department url:\n%s", excerptBody(r.body))
	}
	wantStatus(t, s.postForm("/admin/departments", url.Values{"csrf_token": {tok}, "slug": {"transport"}, "name": {"Transport"}}), 303)
	wantStatus(t, s.postForm("/admin/departments/transport/edit", url.Values{"csrf_token": {tok}, "name": {"Department for Transport"}}), 303)
	if d, _ := s.db.DepartmentBySlug(ctx, "transport"); d.Name != "Department for Transport" {
		t.Errorf("department = %+v", d)
	}
	r = s.postForm("/admin/departments/transport/edit", url.Values{"csrf_token": {tok}, "name": {"A\nB"}})
	wantStatus(t, r, 400)

	r = s.postForm("/admin/sources", url.Values{"csrf_token": {tok}, "name": {"transport-news"}, "url": {"not a url"}, "department": {"transport"}, "format": {"auto"}, "enabled": {"on"}})
	wantStatus(t, r, 400)
	if !strings.Contains(r.body, `<p class="error" id="url-error">`) || !strings.Contains(r.body, `value="transport-news"`) {
		t.Errorf("bad source form:\n%s", excerptBody(r.body))
	}
	r = s.postForm("/admin/sources", url.Values{"csrf_token": {tok}, "name": {"transport-news"}, "url": {pub.URL + "/news.atom"}, "department": {"transport"}, "format": {"atom"}, "enabled": {"on"}})
	wantStatus(t, r, 303)
	wantStatus(t, s.postForm("/admin/sources/transport-news/pull", url.Values{"csrf_token": {tok}}), 303)
	page := s.get("/admin/sources/transport-news/edit")
	if !strings.Contains(page.body, "Pulled “transport-news”: ok.") || !strings.Contains(page.body, `<span class="badge badge-ok">ok</span>`) {
		t.Errorf("after pull:\n%s", excerptBody(page.body))
	}
	wantStatus(t, s.postForm("/admin/sources/transport-news/edit", url.Values{"csrf_token": {tok}, "url": {pub.URL + "/gone.atom"}, "department": {"transport"}, "format": {"atom"}, "enabled": {"on"}}), 303)
	wantStatus(t, s.postForm("/admin/sources/transport-news/pull", url.Values{"csrf_token": {tok}}), 303)
	page = s.get("/admin/sources/transport-news/edit")
	if !strings.Contains(page.body, "Pulling transport-news failed") || !strings.Contains(page.body, "badge-failing") {
		t.Errorf("after failed pull:\n%s", excerptBody(page.body))
	}
	wantStatus(t, s.postForm("/admin/sources/transport-news/disable", url.Values{"csrf_token": {tok}}), 303)
	if src, _ := s.db.SourceByName(ctx, "transport-news"); src.Enabled {
		t.Error("not disabled")
	}
	// Unticking "enabled" in the edit form disables too.
	wantStatus(t, s.postForm("/admin/sources/transport-news/enable", url.Values{"csrf_token": {tok}}), 303)
	wantStatus(t, s.postForm("/admin/sources/transport-news/edit", url.Values{"csrf_token": {tok}, "url": {pub.URL + "/news.atom"}, "department": {"transport"}, "format": {"atom"}}), 303)
	if src, _ := s.db.SourceByName(ctx, "transport-news"); src.Enabled || src.URL != pub.URL+"/news.atom" {
		t.Errorf("after edit: %+v", src)
	}
	wantStatus(t, s.postForm("/admin/sources/nowhere/pull", url.Values{"csrf_token": {tok}}), 404)
}

func TestConsoleSubscribersAndOutbox(t *testing.T) {
	s := newSite(t)
	s.subscribe("ana@example.org", "department", "treasury", "daily")
	s.suppress("ana@example.org", "550 mailbox unavailable")
	s.login()
	tok := s.formToken()
	ctx := context.Background()

	r := s.get("/admin/subscribers/export?address=ana@example.org")
	wantStatus(t, r, 200)
	if !strings.Contains(r.Header.Get("Content-Disposition"), "attachment") {
		t.Error("export is not a download")
	}
	wantStatus(t, s.postForm("/admin/subscribers/lift-suppression", url.Values{"csrf_token": {tok}, "address": {"ana@example.org"}}), 303)
	if info, _ := s.subs.LookupSubscriber(ctx, "ana@example.org"); info.Suppressed {
		t.Error("suppression not lifted")
	}
	wantStatus(t, s.postForm("/admin/subscribers/erase", url.Values{"csrf_token": {tok}, "address": {"ana@example.org"}}), 303)
	if _, err := s.subs.LookupSubscriber(ctx, "ana@example.org"); err != nil {
		t.Error("erased without the confirmation box")
	}
	wantStatus(t, s.postForm("/admin/subscribers/erase", url.Values{"csrf_token": {tok}, "address": {"ana@example.org"}, "confirm": {"yes"}}), 303)
	if _, err := s.subs.LookupSubscriber(ctx, "ana@example.org"); err == nil {
		t.Error("not erased")
	}
	wantStatus(t, s.postForm("/admin/subscribers/erase", url.Values{"csrf_token": {tok}, "address": {"a@b\r\nBcc: c@d"}, "confirm": {"yes"}}), 400)

	_, err := s.db.EnqueueEmails(ctx, []store.OutboxMessage{{Key: "k", Kind: store.KindConfirm, To: "ben@example.org", Subject: "Confirm", Text: "t", HTML: "h"}})
	if err != nil {
		t.Fatal(err)
	}
	id := storetest.Deliver(t, s.db, "k", store.StatusFailed, "550 user unknown")
	page := s.get("/admin/outbox")
	if !strings.Contains(page.body, "550 user unknown") || !regexp.MustCompile(`action="/admin/outbox/\d+/retry"`).MatchString(page.body) {
		t.Errorf("outbox page:\n%s", excerptBody(page.body))
	}
	wantStatus(t, s.postForm("/admin/outbox/"+strconv.FormatInt(id, 10)+"/retry", url.Values{"csrf_token": {tok}}), 303)
	wantStatus(t, s.postForm("/admin/outbox/"+strconv.FormatInt(id, 10)+"/retry", url.Values{"csrf_token": {tok}}), 409)
	if strings.Contains(s.logs.String(), "ana@example.org") || strings.Contains(s.logs.String(), "ben@example.org") {
		t.Error("an address reached the log")
	}
}

func TestConsoleFormBodyLimit(t *testing.T) {
	s := newSite(t, withMaxBody(2048))
	s.login()
	tok := s.formToken()
	r := s.postForm("/admin/topics", url.Values{"csrf_token": {tok}, "slug": {"big"}, "title": {strings.Repeat("x", 4000)}, "keywords": {"k"}})
	wantStatus(t, r, 413)
	r = s.postForm("/admin/login", url.Values{"csrf_token": {tok}, "token": {strings.Repeat("x", 4000)}})
	wantStatus(t, r, 413)
}

// newRecorderRequest serves one request without a network.
func newRecorderRequest(ctx context.Context, server *web.Server, method, path, body string, cookie *http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	server.Handler().ServeHTTP(rec, req)
	return rec
}
