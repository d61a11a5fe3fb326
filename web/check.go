package web

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"herald/alerts"
	"herald/alerts/delivery"
	"herald/store"
	"herald/templates"
	"herald/web/admin"
)

// CheckTemplates parses every page template and message of cfg's
// TemplatesFS and renders each page with sample data, in the states a
// page can be in, without a database: what herald check-config and the
// start of herald serve run (New runs it too), so that a template that
// would fail on a visitor's request fails first. Every problem is
// returned, each naming the file, the line and the field.
func CheckTemplates(cfg Config) error {
	if cfg.TemplatesFS == nil {
		return errors.New("web: no templates (Config.TemplatesFS)")
	}
	if cfg.SiteName == "" {
		cfg.SiteName = "Herald"
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Logo != nil {
		cfg.Brand.LogoURL = "/brand/logo" + cfg.Logo.Ext()
	}
	cfg.Brand = cfg.Brand.WithDefaults(cfg.SiteName)
	s := &Server{cfg: cfg, base: &url.URL{Scheme: "https", Host: "news.example.org"}}
	var err error
	if s.msgs, err = templates.LoadMessages(cfg.TemplatesFS); err != nil {
		return err
	}
	return s.parseAndCheckPages()
}

// parseAndCheckPages parses the pages and renders the samples of those
// that parsed, returning every problem of both.
func (s *Server) parseAndCheckPages() error {
	var p templates.Problems
	var err error
	s.pages, err = parsePages(s.cfg.TemplatesFS, s.funcs())
	p.Add(err)
	p.Add(s.checkPages())
	return p.Err()
}

// checkPages renders every page sample and says every message of the
// pages' message files, returning every problem, each told once (naming
// the first sample it came from).
func (s *Server) checkPages() error {
	var p templates.Problems
	told := map[string]bool{}
	for _, smp := range s.pageSamples(time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)) {
		v := smp.view
		v.Site, v.Brand, v.Icon = s.cfg.SiteName, s.cfg.Brand, s.cfg.Icon
		if len(v.Feeds) == 0 && !strings.HasPrefix(smp.page, "admin_") {
			v.Feeds = s.feedLinks(s.say("feed.all"), "/feeds/all", "")
		}
		t := s.pages.sets[smp.page]
		if t == nil {
			continue
		}
		if err := t.ExecuteTemplate(io.Discard, "layout", &v); err != nil && !told[templates.Tidy(err)] {
			told[templates.Tidy(err)] = true
			what := smp.page
			if smp.state != "" {
				what += ", " + smp.state
			}
			p = append(p, fmt.Sprintf("%s (with the sample %s page)", templates.Tidy(err), what))
		}
	}
	for _, file := range []string{"messages/pages.txt", "messages/forms.txt", "messages/console.txt"} {
		p.Add(s.msgs.CheckSamples(file, pageMessageSamples()))
	}
	return p.Err()
}

// pageSample is one page in one of its states.
type pageSample struct {
	page, state string
	view        view
}

// pageSamples are the pages with made-up data, each in the states that
// take different parts of its template.
func (s *Server) pageSamples(now time.Time) []pageSample {
	dept := store.Department{ID: 1, Slug: "home-office", Name: "Home Office", URL: "https://www.gov.uk/government/organisations/home-office"}
	topic := store.Topic{ID: 1, Slug: "human-trafficking", Title: "Human trafficking and modern slavery",
		Description: "Policy and news on tackling trafficking.", Rule: store.Rule{Departments: []string{"home-office"}, Keywords: []string{"trafficking"}}}
	rel := store.Release{ID: 1, Source: "home-office-news", DepartmentID: 1, DepartmentSlug: "home-office", DepartmentName: "Home Office",
		Link: "https://www.gov.uk/government/news/uk-and-romania-pledge", Title: "UK and Romania pledge to tackle human trafficking",
		Summary: "<p>Joint work against organised immigration crime.</p>", Body: "<p>The Home Secretary met her Romanian counterpart.</p>",
		Categories: []string{"Crime"}, Published: now.Add(-3 * time.Hour), Updated: now.Add(-time.Hour), FirstSeen: now.Add(-2 * time.Hour),
		Topics: []string{"human-trafficking"}}
	items := s.items([]store.Release{rel})
	feeds := s.feedLinks(topic.Title, "/feeds/topics/"+topic.Slug, "")
	fe := admin.FieldErrors{"email": "Your email address must contain an @, like name@example.org.", "csrf": "This form had expired."}
	target := alerts.Target{Target: store.Target{TopicID: 1}, Kind: "topic", Slug: topic.Slug, Name: topic.Title, Description: topic.Description}
	row := manageRow{ID: 1, Name: topic.Title, Kind: "topic", URL: s.abs("/topics/" + topic.Slug), Frequency: store.FrequencyDaily, Error: "Choose how often you want emails."}
	retired := row
	retired.Retired, retired.Error = true, ""
	src := sourceOut{Source: store.Source{ID: 1, Name: "home-office-news", URL: "https://www.gov.uk/home-office.atom", DepartmentSlug: "home-office",
		Format: "auto", Enabled: true, LastPullAt: now.Add(-time.Hour), LastSuccessAt: now.Add(-2 * time.Hour), LastStatus: "failed",
		LastError: "connection refused", FailureCount: 2, NextPullAt: now.Add(time.Hour)}, Health: "failing"}
	pull := store.Pull{ID: 1, Source: src.Name, StartedAt: now.Add(-time.Hour), Duration: time.Second, Status: "failed", Error: "connection refused"}
	opts := []option{{Value: "home-office", Label: "Home Office", Selected: true}, {Value: "treasury", Label: "HM Treasury"}}
	sform := sourceForm{Editing: src.Name, Name: src.Name, URL: src.URL, Department: "home-office", Format: "auto", Enabled: true,
		Departments: opts, Formats: []option{{Value: "auto", Label: "auto", Selected: true}}, Errors: map[string]string{"url": "URL is required.", "name": "Name is required."}}
	days := []store.DayCount{{Day: now.Add(-24 * time.Hour), Count: 3}, {Day: now, Count: 0}}
	tform := topicForm{Editing: topic.Slug, Retired: true, Slug: topic.Slug, Title: topic.Title, Description: topic.Description, Departments: opts,
		Keywords: "trafficking", Categories: "Crime", Exclude: "football",
		Errors:      map[string]string{"slug": "Slug is required.", "title": "Title is required.", "keywords": "Keywords, line 1, is too long.", "match": "The rule is empty."},
		Preview:     &previewOut{Matched30d: 2, Examples: []releaseBrief{{ID: 1, Title: rel.Title, Department: rel.DepartmentName, Published: rel.Published, URL: "/releases/1"}}, Subscribers: 4},
		Subscribers: map[string]int{"immediately": 1, "daily": 2, "weekly": 0}}
	msg := store.OutboxMessage{ID: 1, Key: "immediate:1.1:1", Kind: store.KindImmediate, Subject: "Home Office: A release", Status: store.StatusFailed,
		Attempts: 3, LastError: "550 mailbox unavailable", CreatedAt: now.Add(-time.Hour), NextAttemptAt: now}
	info := admin.SubscriberInfo{Address: "name@example.org", Status: "active", CreatedAt: now.Add(-48 * time.Hour), ConfirmedAt: now.Add(-47 * time.Hour),
		Suppressed: true, SuppressionReason: "550 mailbox unavailable",
		Subscriptions: []admin.SubscriptionInfo{{Topic: topic.Slug, Frequency: "daily", Status: "active", CreatedAt: now}, {Department: dept.Slug, Frequency: "weekly", Status: "ended", CreatedAt: now}}}
	sup := store.Suppression{Address: "name@example.org", Cause: store.CauseBounce, Reason: "550 mailbox unavailable", Failures: 3, CreatedAt: now,
		Source: "delivery", OutboxID: 1, Report: "Status: 5.1.1"}
	conf := confirmPage{Mode: "subscription", State: "ask", CSRF: "csrf", Action: "/subscribe/confirm", Token: "token", Error: "This page had expired.",
		Name: topic.Title, Kind: "topic", FrequencyPhrase: "once a day", OldFrequencyPhrase: "once a week", Address: "name@example.org", ManageURL: s.abs("/manage/token")}
	confirmAs := func(mode, state string) confirmPage {
		c := conf
		c.Mode, c.State = mode, state
		return c
	}
	errPage := errorPage{Status: http.StatusGone, Heading: "This link has expired", Message: "Links in our emails work for 7 days.", LinkURL: "/manage", LinkLabel: "Get a new link"}
	followed := searchOut{SearchFollowers: store.SearchFollowers{Search: store.Search{ID: 1, Query: "trafficking", DepartmentSlug: dept.Slug,
		DepartmentName: dept.Name, Type: "press release", Name: "Search: trafficking in Home Office, Press release", CreatedAt: now},
		Active: map[string]int{"immediately": 1, "daily": 3}, Pending: 1}, URL: s.abs("/search?q=trafficking&department=home-office")}
	pub := func(page, state string, title string, data any) pageSample {
		return pageSample{page: page, state: state, view: view{Title: title, Data: data, CSRF: "csrf"}}
	}
	adm := func(page, state, section string, data any) pageSample {
		return pageSample{page: page, state: state, view: view{Title: page, Admin: true, Section: section, Flash: "Saved.", CSRF: "csrf", NoIndex: true,
			Nav: adminNav{Subscribers: true, Outbox: true, Emails: true}, Data: data}}
	}
	samples := []pageSample{
		pub("home", "", "Latest news", homePage{Departments: []store.Department{dept}, Topics: []store.Topic{topic}, Releases: items}),
		pub("home", "empty", "Latest news", homePage{}),
		{page: "listing", view: view{Title: topic.Title, Feeds: feeds, Data: listingPage{Kind: "topic", Slug: topic.Slug, Name: topic.Title, Description: topic.Description,
			Website: dept.URL, Releases: items, Older: "/topics/human-trafficking?before=1", Latest: "/topics/human-trafficking",
			Subscribe: subscribeForm{Kind: "topic", Slug: topic.Slug, Name: topic.Title, CSRF: "csrf"}}}},
		pub("listing", "of a retired topic", topic.Title, listingPage{Kind: "topic", Slug: topic.Slug, Name: topic.Title, Retired: true}),
		{page: "release", view: view{Title: rel.Title, Print: true, Data: releasePage{Release: releaseView{Release: rel, Summary: template.HTML(rel.Summary),
			Body: template.HTML(rel.Body)}, URL: s.abs("/releases/1"), Topics: []store.Topic{topic}, Latest: items}}},
		pub("search", "", "Search", &searchPage{Params: searchParams{Q: "trafficking", Department: "home-office", Topic: topic.Slug, Page: 2},
			FirstPage: "/search?q=trafficking", Searched: true, Departments: []store.Department{dept}, Topics: []store.Topic{topic},
			Types: []documentType{{Key: "press release", Label: "Press release"}}, Follow: "/subscribe?search=q%3Dtrafficking",
			Releases: items, Total: 30, First: 21, Last: 21, Prev: "/search?q=trafficking", Next: "/search?q=trafficking&page=3"}),
		pub("search", "with nothing found", "Search", &searchPage{Params: searchParams{Q: "nothing"}, Searched: true}),
		pub("search", "before searching", "Search", &searchPage{}),
		pub("error", "", "This link has expired", errPage),
		pub("error", "without a link", "Page not found", errorPage{Status: 404, Heading: "Page not found", Message: "Not found."}),
		pub("subscribe", "the list", "Subscribe", subscribePage{List: true, Topics: []store.Topic{topic}, Departments: []store.Department{dept}}),
		pub("subscribe", "the form with problems", "Subscribe", subscribePage{CSRF: "csrf", Topic: topic.Slug, Target: target, Email: "name",
			Frequency: "daily", Frequencies: store.Frequencies(), Errors: fe}),
		pub("subscribe", "the form for a search", "Subscribe", subscribePage{CSRF: "csrf", Search: "q=trafficking",
			Target:    alerts.Target{Kind: "search", Slug: "q=trafficking", Name: followed.Name},
			Frequency: "daily", Frequencies: store.Frequencies()}),
		pub("subscribe", "the form for a department", "Subscribe", subscribePage{CSRF: "csrf", Department: dept.Slug,
			Target:    alerts.Target{Target: store.Target{DepartmentID: 1}, Kind: "department", Slug: dept.Slug, Name: dept.Name},
			Frequency: "immediately", Frequencies: store.Frequencies()}),
		pub("subscribe_sent", "", "Check your email", subscribeSentPage{Email: "name@example.org", Target: target, FrequencyPhrase: "once a day"}),
		pub("confirm", "asking", "Confirm", confirmAs("subscription", "ask")),
		pub("confirm", "done", "Confirm", confirmAs("subscription", "done")),
		pub("confirm", "done, first time", "Confirm", func() confirmPage { c := confirmAs("subscription", "done"); c.OldFrequencyPhrase = ""; return c }()),
		pub("confirm", "already done", "Confirm", confirmAs("subscription", "already")),
		pub("confirm", "asking for a new address", "Confirm", confirmAs("address", "ask")),
		pub("confirm", "with a new address", "Confirm", confirmAs("address", "done")),
		pub("manage_request", "", "Manage", manageRequestPage{CSRF: "csrf", Email: "name", Errors: fe}),
		pub("manage_sent", "", "Check your email", manageSentPage{Email: "name@example.org"}),
		pub("manage", "", "Your subscriptions", managePage{CSRF: "csrf", Action: "/manage/token", Address: "name@example.org",
			PendingAddress: "new@example.org", Rows: []manageRow{row, retired}, Frequencies: store.Frequencies(), Notice: "Saved.", Email: "new", Errors: fe}),
		pub("manage", "with nothing", "Your subscriptions", managePage{Action: "/manage/token", Address: "name@example.org"}),
		pub("unsubscribe", "", "Unsubscribe", unsubscribePage{Action: "/unsubscribe/token", What: "emails about Immigration"}),
		pub("unsubscribe", "a request", "Unsubscribe", unsubscribePage{Action: "/unsubscribe/token", What: "your request", Pending: true}),
		pub("unsubscribed", "", "Unsubscribed", unsubscribePage{Ended: []manageRow{row}, ResubscribeURL: "/subscribe?topic=human-trafficking"}),
		pub("unsubscribed", "a request", "Unsubscribed", unsubscribePage{Ended: []manageRow{row}, Pending: true}),
		pub("unsubscribed", "nothing left", "Unsubscribed", unsubscribePage{}),

		pub("admin_login", "", "Sign in", loginPage{Next: "/admin/", Error: "That token is not valid."}),
		adm("admin_dashboard", "", "dashboard", dashboardPage{Stats: store.Dashboard{ReleasesPerDay: days, EmailsSentPerDay: days, Releases: 10,
			OutboxDepth: 2, OutboxOldest: now.Add(-time.Hour)}, Charts: []chart{newChart("Releases", days)}, Sources: []sourceOut{src}, Failing: 1,
			Pulls: []store.Pull{pull}, Outbox: true, Subscribers: true}),
		adm("admin_dashboard", "empty", "dashboard", dashboardPage{}),
		adm("admin_topics", "", "topics", topicsPage{Topics: []topicRow{{topicOut: topicOut{Topic: topic, URL: s.abs("/topics/" + topic.Slug),
			Subscribers: map[string]int{"daily": 2}}, Total: 2}}, Counts: true}),
		adm("admin_topics", "empty", "topics", topicsPage{}),
		adm("admin_topic", "", "topics", tform),
		adm("admin_topic", "new", "topics", topicForm{Departments: opts}),
		adm("admin_sources", "", "sources", sourcesPage{Sources: []sourceOut{src}, Form: sform}),
		adm("admin_sources", "empty", "sources", sourcesPage{}),
		adm("admin_source", "", "sources", sourcePage{Source: src, Form: sform, Pulls: []store.Pull{pull}, Pull: true}),
		adm("admin_departments", "", "departments", departmentsPage{Departments: []store.Department{dept},
			Form: departmentForm{Slug: "x", Name: "X", URL: "https://x.example.org", Errors: map[string]string{"slug": "Slug is required."}}}),
		adm("admin_department", "", "departments", departmentForm{Editing: dept.Slug, Slug: dept.Slug, Name: dept.Name, URL: dept.URL,
			Errors: map[string]string{"name": "Name is required."}}),
		adm("admin_subscribers", "", "subscribers", subscribersPage{Address: "name@example.org", Info: &info}),
		adm("admin_subscribers", "not found", "subscribers", subscribersPage{Address: "name", Error: "Email address is required.", NotFound: true}),
		adm("admin_suppressions", "", "subscribers", suppressionsPage{Query: admin.SuppressionQuery{Cause: "bounce", Search: "example", Limit: 10},
			Causes: store.Causes(), Error: "Limit must be from 1 to 1000.", List: []store.Suppression{sup}}),
		adm("admin_outbox", "", "outbox", outboxPage{State: outboxOut{Counts: map[string]int{"sent": 3, "failed": 1}, Depth: 1, OldestWaiting: now},
			Failed: []store.OutboxMessage{msg}}),
		adm("admin_outbox", "empty", "outbox", outboxPage{}),
		adm("admin_searches", "", "searches", []searchOut{followed}),
		adm("admin_searches", "empty", "searches", []searchOut{}),
		adm("admin_search", "", "searches", adminSearchPage{Search: followed, Differences: []string{admin.DiffBody}, Form: topicForm{Slug: "trafficking",
			Title: "Trafficking", Departments: opts, Keywords: "trafficking", Errors: map[string]string{"slug": "Slug is required."}}}),
	}
	return append(samples, s.emailPageSamples(now)...)
}

// pageMessageSamples are the named values the pages' messages (pages.txt,
// forms.txt, console.txt) are said with to check them; a message not
// listed takes none.
func pageMessageSamples() map[string][]any {
	return map[string][]any{
		"title.subscribe_to":             {"Name", "Immigration"},
		"title.search_results_for":       {"Query", "trafficking"},
		"feed.search_title":              {"Site", "Herald", "Active", true, "Query", "flood", "Department", "environment-agency", "Topic", "flooding", "Type", "Press release"},
		"feed.search_subtitle":           {"Site", "Herald"},
		"unsubscribe.what.pending":       {"Name", "Immigration"},
		"unsubscribe.what.one":           {"Name", "Immigration", "Kind", "topic", "FrequencyPhrase", "once a day"},
		"unsubscribe.what.frequency":     {"FrequencyPhrase", "once a day"},
		"unsubscribe.what.all":           {"Site", "Herald"},
		"error.heading.other":            {"Status", 418, "StatusText", "I'm a teapot"},
		"error.message.413":              {"Limit", 1 << 20},
		"error.method":                   {"Method", "DELETE", "Allow", []string{"GET", "POST"}},
		"form.email.local_char":          {"Char", ","},
		"form.email.domain_char":         {"Char", `"`},
		"form.target.no_topic":           {"Slug", "nope"},
		"form.target.no_department":      {"Slug", "nope"},
		"form.target.topic_ended":        {"Title", "Brexit"},
		"form.search.unknown_department": {"Value", "nowhere"},
		"form.search.unknown_topic":      {"Value", "nope"},
		"form.search.topic_ended":        {"Value", "Brexit"},
		"form.search.unknown_type":       {"Value", "leaflet"},
		"form.search.unreadable":         {"Value", ""},
		"form.search.empty":              {"Value", ""},
		"form.search.too_long":           {"Value", "flood"},
		"form.search.control":            {"Value", ""},
		"console.done.search_promoted":   {"Title", "Flooding", "Moved", 3},
		"console.title.topic":            {"Title", "Immigration"},
		"console.title.source":           {"Name", "home-office-news"},
		"console.title.department":       {"Name", "Home Office"},
		"console.title.email":            {"Kind", "welcome"},
		"console.done.topic_created":     {"Title", "Immigration"},
		"console.done.topic_saved":       {"Title", "Immigration"},
		"console.done.source_added":      {"Name", "home-office-news"},
		"console.done.source_saved":      {"Name", "home-office-news"},
		"console.done.source_disabled":   {"Name", "home-office-news"},
		"console.done.source_enabled":    {"Name", "home-office-news"},
		"console.done.source_pulled":     {"Name", "home-office-news", "Status", "new"},
		"console.done.department_added":  {"Name", "Home Office"},
		"console.done.department_saved":  {"Name", "Home Office"},
		"console.done.test_sent":         {"Kind", "welcome"},
		"console.error.pull_failed":      {"Name", "home-office-news", "Error", "connection refused"},
		"console.error.not_failed":       {"ID", 7},
		"console.error.too_many_tests":   {"Limit", 20},
		"console.error.no_email_kind":    {"Kind", "nope"},
		"console.field_problem":          {"Label", "Slug", "Problem", "is required"},
		"console.field_problem_line":     {"Label", "Keywords", "Line", 2, "Problem", "must contain a letter or a digit"},
		"console.ago.minutes":            {"N", 2},
		"console.ago.hours":              {"N", 1},
		"console.ago.days":               {"N", 3},
	}
}

// emailPageSamples are the console's email pages.
func (s *Server) emailPageSamples(now time.Time) []pageSample {
	nav := adminNav{Subscribers: true, Outbox: true, Emails: true}
	page := emailsPage{Kinds: alerts.EmailKinds(), Kind: "welcome", Query: "release=1", FrameURL: "/admin/emails/welcome/html?release=1",
		Preview: emailPreview{Kind: "welcome", Subject: "You are subscribed to Immigration", Headers: []delivery.Header{{Name: "From", Value: "Herald <alerts@example.org>"}},
			Text: "You are subscribed\n", HTML: "<p>You are subscribed</p>"},
		Releases:    []option{{Value: "1", Label: "A release", Selected: true}},
		Targets:     []option{{Value: "topic:immigration", Label: "Immigration (topic)"}},
		Frequencies: []option{{Value: "daily", Label: "once a day"}},
		To:          "name@example.org", Limit: alerts.TestsPerHour,
		Errors: map[string]string{"to": "Your email address is required.", "release": "Not found.", "target": "There is no topic called “x”.",
			"frequency": "Choose immediately, daily or weekly."}}
	return []pageSample{
		{page: "admin_emails", view: view{Title: "Emails", Admin: true, Section: "emails", CSRF: "csrf", Nav: nav, Data: emailsPage{Kinds: alerts.EmailKinds()}}},
		{page: "admin_email", view: view{Title: "Email", Admin: true, Section: "emails", CSRF: "csrf", Flash: "Sent.", Nav: nav, Data: page}},
		{page: "admin_email", state: "with nothing to choose", view: view{Title: "Email", Admin: true, Section: "emails", CSRF: "csrf", Nav: nav,
			Data: emailsPage{Kinds: alerts.EmailKinds(), Kind: "confirm", Errors: map[string]string{}}}},
	}
}
