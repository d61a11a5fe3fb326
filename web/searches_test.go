package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"herald/store"
	"herald/store/storetest"
)

// followedSearches stores a search of the Home Office's passports news
// followed by three subscribers, and one by one, and returns the first.
func followedSearches(t *testing.T, s *site) store.Search {
	t.Helper()
	ctx := context.Background()
	ho, err := s.db.DepartmentBySlug(ctx, "home-office")
	if err != nil {
		t.Fatal(err)
	}
	passports := storetest.Search(t, s.db, store.SearchSpec{Query: "notice passports", DepartmentID: ho.ID,
		Name: "Search: notice passports in Home Office"})
	for i, f := range []string{store.FrequencyDaily, store.FrequencyDaily, store.FrequencyWeekly} {
		storetest.Subscribe(t, s.db, "p"+strconv.Itoa(i)+"@example.org", store.Target{SearchID: passports.ID}, f)
	}
	storetest.Request(t, s.db, "waiting@example.org", store.Target{SearchID: passports.ID}, store.FrequencyDaily)
	other := storetest.Search(t, s.db, store.SearchSpec{Query: "customs"})
	storetest.Subscribe(t, s.db, "c@example.org", store.Target{SearchID: other.ID}, store.FrequencyImmediately)
	return passports
}

func TestAPISearches(t *testing.T) {
	s := newSite(t)
	passports := followedSearches(t, s)
	var list []struct {
		ID      int64          `json:"id"`
		Query   string         `json:"query"`
		Name    string         `json:"name"`
		Active  map[string]int `json:"active"`
		Pending int            `json:"pending"`
		URL     string         `json:"url"`
	}
	r := s.api("GET", "/api/v1/searches", nil)
	wantStatus(t, r, 200)
	r.json(t, &list)
	if len(list) != 2 || list[0].ID != passports.ID || list[0].Active["daily"] != 2 || list[0].Active["weekly"] != 1 ||
		list[0].Pending != 1 || list[0].URL != "http://news.example.org/search?department=home-office&q=notice+passports" {
		t.Fatalf("searches: %+v", list)
	}
	wantStatus(t, s.api("GET", "/api/v1/searches?limit=5000", nil), 400)
	wantStatus(t, s.api("GET", "/api/v1/searches?limit=x", nil), 400)
	wantStatus(t, s.api("GET", "/api/v1/searches", nil, "wrong"), 401)

	var detail struct {
		Name     string `json:"name"`
		Proposal struct {
			Topic struct {
				Slug  string     `json:"slug"`
				Match store.Rule `json:"match"`
			} `json:"topic"`
			Differences []string `json:"differences"`
		} `json:"proposal"`
	}
	r = s.api("GET", "/api/v1/searches/"+strconv.FormatInt(passports.ID, 10), nil)
	wantStatus(t, r, 200)
	r.json(t, &detail)
	if detail.Proposal.Topic.Slug != "notice-passports" || strings.Join(detail.Proposal.Differences, ",") != "body,all_words" ||
		strings.Join(detail.Proposal.Topic.Match.Departments, ",") != "home-office" {
		t.Errorf("detail: %+v", detail)
	}
	wantStatus(t, s.api("GET", "/api/v1/searches/999", nil), 404)
	wantStatus(t, s.api("GET", "/api/v1/searches/nope", nil), 404)

	path := "/api/v1/searches/" + strconv.FormatInt(passports.ID, 10) + "/promote"
	r = s.api("POST", path, map[string]any{"slug": "Bad Slug"})
	wantStatus(t, r, 400)
	if r.fieldErrors(t)["slug"] == "" {
		t.Errorf("bad slug: %s", r.body)
	}
	r = s.api("POST", path, map[string]any{"title": "Passport notices"})
	wantStatus(t, r, 201)
	var promoted struct {
		Topic struct {
			Slug  string `json:"slug"`
			Title string `json:"title"`
		} `json:"topic"`
		Moved int `json:"moved"`
	}
	r.json(t, &promoted)
	if promoted.Topic.Slug != "notice-passports" || promoted.Topic.Title != "Passport notices" || promoted.Moved != 3 ||
		r.Header.Get("Location") != "http://news.example.org/api/v1/topics/notice-passports" {
		t.Errorf("promoted: %+v, Location %q", promoted, r.Header.Get("Location"))
	}
	counts, err := s.db.SubscriberCounts(context.Background())
	if err != nil || counts["notice-passports"]["daily"] != 2 || counts["notice-passports"]["weekly"] != 1 {
		t.Errorf("the topic's subscribers: %v, %v", counts, err)
	}
	wantStatus(t, s.api("POST", path, map[string]any{}), 400) // the slug is taken now
}

func TestConsoleSearches(t *testing.T) {
	s := newSite(t)
	passports := followedSearches(t, s)
	s.login()
	r := s.get("/admin/searches")
	wantStatus(t, r, 200)
	id := strconv.FormatInt(passports.ID, 10)
	for _, w := range []string{`<a href="/admin/searches/` + id + `">Search: notice passports in Home Office</a>`,
		"<td>0</td><td>2</td><td>1</td><td>1</td>", `href="/admin/searches" aria-current="page"`} {
		if !strings.Contains(r.body, w) {
			t.Errorf("the list lacks %q", w)
		}
	}
	r = s.get("/admin/searches/" + id)
	wantStatus(t, r, 200)
	for _, w := range []string{"A topic reads the title and summary of a release", "A topic keyword needs the words together",
		`value="notice-passports"`, "notice passports</textarea>", `value="home-office" checked`} {
		if !strings.Contains(r.body, w) {
			t.Errorf("the search page lacks %q", w)
		}
	}
	tok := s.formToken()
	r = s.postForm("/admin/searches/"+id+"/promote", url.Values{"csrf_token": {tok}, "slug": {"Bad Slug"}, "title": {"Passports"},
		"keywords": {"passports"}})
	wantStatus(t, r, 400)
	if !strings.Contains(r.body, `<p class="error" id="slug-error">`) {
		t.Errorf("a bad slug is not shown beside the field:\n%s", excerptBody(r.body))
	}
	r = s.postForm("/admin/searches/"+id+"/promote", url.Values{"csrf_token": {tok}, "slug": {"passports"}, "title": {"Passports"},
		"keywords": {"passports"}, "departments": {"home-office"}})
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "/admin/topics/passports/edit" {
		t.Fatalf("promoted search redirects to %q", loc)
	}
	if edit := s.get("/admin/topics/passports/edit"); !strings.Contains(edit.body, "Topic “Passports” created; 3 subscriptions moved to it from the search.") {
		t.Errorf("no notice after promoting:\n%s", excerptBody(edit.body))
	}
	if r := s.get("/admin/searches"); strings.Contains(r.body, "notice passports in Home Office</a>") && !strings.Contains(r.body, "<td>0</td><td>0</td><td>0</td><td>1</td>") {
		t.Errorf("after promotion the search should keep only its waiting request:\n%s", excerptBody(r.body))
	}
}
