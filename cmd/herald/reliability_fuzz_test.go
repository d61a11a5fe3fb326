package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"herald/alerts/address"
	"herald/cmd/herald/harness"
	"herald/store"
)

// fuzzRoute is a route to fuzz: method, path pattern, and where its input
// goes.
type fuzzRoute struct {
	method, pattern string
	api             bool           // bearer token and JSON body
	admin           bool           // console: session cookie and its CSRF token
	schema          map[string]any // JSON body schema (API)
	query           []string       // query parameter names
	fields          []string       // form fields
}

// testFuzz sends random, malformed and hostile requests to every admin API
// route (from the OpenAPI document) and every form: no answer may be a
// server error, Herald must stay up, and everything stored afterwards must
// still be valid.
func testFuzz(t *testing.T, bin string, fig *figures, rng *rand.Rand) {
	pub := harness.NewPublisher(t, harness.PublisherOptions{ETags: true})
	in := harness.NewInstance(t, bin, t.TempDir())
	var w world
	w.configure(in, pub)
	in.Config["pull"] = map[string]any{"allow_private": true, "timeout": "2s"}
	in.WriteConfig()
	w.wave(pub, 0, 3)
	in.Run(2*time.Minute, "pull")
	in.ImportSubscribers(w.subscribe(30))
	s := in.Serve()
	s.WaitReady(t, time.Minute)
	releasesBefore := in.QueryInt(`SELECT count(*) FROM releases`)
	rowsNow := func() int {
		return in.QueryInt(`SELECT (SELECT count(*) FROM departments) + (SELECT count(*) FROM sources) + (SELECT count(*) FROM topics) +
			(SELECT count(*) FROM subscribers) + (SELECT count(*) FROM subscriptions) + (SELECT count(*) FROM websub_requests)`)
	}
	rowsBefore := rowsNow()

	// Routes: the API from its OpenAPI document, the forms by hand.
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(in.Get("/api/v1/openapi.json"), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var routes []fuzzRoute
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			var op struct {
				Parameters []struct {
					Name string `json:"name"`
					In   string `json:"in"`
				} `json:"parameters"`
				RequestBody struct {
					Content map[string]struct {
						Schema map[string]any `json:"schema"`
					} `json:"content"`
				} `json:"requestBody"`
			}
			if json.Unmarshal(raw, &op) != nil {
				continue
			}
			r := fuzzRoute{method: strings.ToUpper(method), pattern: path, api: true,
				schema: op.RequestBody.Content["application/json"].Schema}
			for _, p := range op.Parameters {
				if p.In == "query" {
					r.query = append(r.query, p.Name)
				}
			}
			routes = append(routes, r)
		}
	}
	if len(routes) < 10 {
		t.Fatalf("the OpenAPI document lists only %d operations", len(routes))
	}
	apiRoutes := len(routes)
	forms := []fuzzRoute{
		{method: "POST", pattern: "/subscribe", fields: []string{"email", "topic", "department", "frequency"}},
		{method: "GET", pattern: "/subscribe", query: []string{"topic", "department"}},
		{method: "GET", pattern: "/subscribe/confirm", query: []string{"token"}},
		{method: "POST", pattern: "/subscribe/confirm", fields: []string{"token"}},
		{method: "POST", pattern: "/manage", fields: []string{"email"}},
		{method: "GET", pattern: "/manage/{token}"},
		{method: "POST", pattern: "/manage/{token}", fields: []string{"action", "subscription", "frequency", "topic", "department"}},
		{method: "GET", pattern: "/manage/address/{token}"},
		{method: "POST", pattern: "/manage/address/{token}", fields: []string{"email", "address"}},
		{method: "GET", pattern: "/unsubscribe/{token}"},
		{method: "POST", pattern: "/unsubscribe/{token}", fields: []string{"List-Unsubscribe", "confirm"}},
		{method: "POST", pattern: "/websub", fields: []string{"hub.mode", "hub.topic", "hub.callback", "hub.secret", "hub.lease_seconds"}},
		{method: "GET", pattern: "/search", query: []string{"q", "department", "topic", "from", "to", "page"}},
		{method: "GET", pattern: "/feeds/search.atom", query: []string{"q", "department", "topic"}},
		{method: "GET", pattern: "/releases/{id}"},
		{method: "GET", pattern: "/topics/{slug}"},
		{method: "GET", pattern: "/departments/{slug}"},
		{method: "POST", pattern: "/admin/login", fields: []string{"token", "next"}},
		{method: "POST", pattern: "/admin/topics", admin: true, fields: []string{"slug", "title", "description", "keywords", "categories", "exclude", "departments"}},
		{method: "POST", pattern: "/admin/topics/preview", admin: true, fields: []string{"keywords", "categories", "exclude", "departments", "slug"}},
		{method: "POST", pattern: "/admin/topics/{slug}/edit", admin: true, fields: []string{"title", "description", "keywords", "categories", "exclude", "departments"}},
		{method: "POST", pattern: "/admin/topics/{slug}/retire", admin: true, fields: []string{"confirm"}},
		{method: "POST", pattern: "/admin/sources", admin: true, fields: []string{"name", "url", "department", "format", "enabled"}},
		{method: "POST", pattern: "/admin/sources/{name}/edit", admin: true, fields: []string{"url", "department", "format", "enabled"}},
		{method: "POST", pattern: "/admin/sources/{name}/disable", admin: true},
		{method: "POST", pattern: "/admin/sources/{name}/enable", admin: true},
		{method: "POST", pattern: "/admin/sources/{name}/pull", admin: true},
		{method: "POST", pattern: "/admin/departments", admin: true, fields: []string{"slug", "name", "url"}},
		{method: "POST", pattern: "/admin/departments/{slug}/edit", admin: true, fields: []string{"name", "url"}},
		{method: "GET", pattern: "/admin/subscribers", admin: true, query: []string{"address"}},
		{method: "POST", pattern: "/admin/subscribers/erase", admin: true, fields: []string{"address", "confirm"}},
		{method: "POST", pattern: "/admin/subscribers/lift-suppression", admin: true, fields: []string{"address"}},
		{method: "POST", pattern: "/admin/outbox/{id}/retry", admin: true},
	}
	routes = append(routes, forms...)

	// A visitor's CSRF cookie and token, and an admin's session.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	csrfRE := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	page := func(path string) string {
		resp, err := browser.Get(in.Base() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := csrfRE.FindSubmatch(b)
		if m == nil {
			t.Fatalf("no CSRF token on %s (%d)", path, resp.StatusCode)
		}
		return string(m[1])
	}
	visitorCSRF := page("/subscribe?topic=harbour")
	flowAddr, flowToken := subscribeFlow(t, in, browser, visitorCSRF, page)
	if leaks := infoLeaks(in, flowAddr, flowToken, harness.AdminToken, harness.TokenKey); len(leaks) > 0 {
		t.Errorf("%d info-level log lines of a subscribe, confirm and welcome run hold the address or a secret, first: %s", len(leaks), leaks[0])
	}
	resp, err := browser.PostForm(in.Base()+"/admin/login", url.Values{"csrf_token": {visitorCSRF}, "token": {harness.AdminToken}, "next": {"/admin/"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin sign-in: %v %v", err, resp)
	}
	resp.Body.Close()
	adminCSRF := page("/admin/topics/new")

	known := []string{"harbour", "north", "north-news", "1", "2", "ferry"}
	statuses := map[int]int{}
	var serverErrors []string
	var mu sync.Mutex
	const total = 4000
	var next atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(90 * time.Second)
	seeds := make([]uint64, 8)
	for i := range seeds {
		seeds[i] = rng.Uint64()
	}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seeds[g], 9))
			for next.Add(1) <= total && time.Now().Before(deadline) {
				rt := routes[r.IntN(len(routes))]
				req := fuzzRequest(r, in.Base(), rt, doc.Components.Schemas, known, visitorCSRF, adminCSRF)
				resp, err := browser.Do(req)
				if err != nil {
					mu.Lock()
					serverErrors = append(serverErrors, fmt.Sprintf("%s %s: %v", req.Method, req.URL.Path, err))
					mu.Unlock()
					continue
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++

				// A pull of a source that cannot be fetched is the
				// publisher's failure, reported as 502 Bad Gateway.
				upstream := resp.StatusCode == http.StatusBadGateway && strings.HasSuffix(req.URL.Path, "/pull")
				if resp.StatusCode >= 500 && !upstream {
					serverErrors = append(serverErrors, fmt.Sprintf("%s %s -> %d: %s", req.Method, req.URL.Path, resp.StatusCode, harness.Tail(string(body), 200)))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sent := int(min(next.Load(), total))
	for i, e := range serverErrors {
		if i < 10 {
			t.Errorf("server error: %s", e)
		}
	}
	if err := s.Check(); err != nil {
		t.Fatalf("herald serve died during fuzzing: %v", err)
	}
	in.Get("/healthz")
	if problems := logProblems(in, false); len(problems) > 0 {
		t.Errorf("the logs report %d problems, first: %s", len(problems), problems[0])
	}
	created := rowsNow() - rowsBefore
	s.Stop(t)

	// Everything stored is still valid.
	checked := fuzzInvariants(t, in)
	if n := in.QueryInt(`SELECT count(*) FROM releases`); n != releasesBefore {
		t.Errorf("fuzzing changed the number of releases from %d to %d", releasesBefore, n)
	}
	var codes []string
	for _, c := range slices.Sorted(maps.Keys(statuses)) {
		codes = append(codes, fmt.Sprintf("%d: %d", c, statuses[c]))
	}
	fig.add(t, "fuzz: a visitor's subscribe, confirm and welcome email logged neither address nor token at info level; then %d requests to %d routes (%d API operations from openapi.json, %d forms and pages), random and hostile "+
		"bodies, fields, path segments and tokens: %d server errors; statuses %s; %d rows written by the requests, "+
		"%d stored rows checked afterwards, all valid",
		sent, len(routes), apiRoutes, len(forms), len(serverErrors), strings.Join(codes, ", "), created, checked)
}

// subscribeFlow subscribes an address through the public form, confirms
// it from the link in the confirmation email (the file transport writes
// it to the outbox directory) and waits for the welcome email. It returns
// the address and the confirmation token.
func subscribeFlow(t *testing.T, in *harness.Instance, browser *http.Client, csrf string, page func(string) string) (string, string) {
	t.Helper()
	const addr = "flow.check@example.org"
	resp, err := browser.PostForm(in.Base()+"/subscribe", url.Values{"csrf_token": {csrf}, "email": {addr},
		"topic": {"harbour"}, "frequency": {"immediately"}})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("subscribe: %v %v", err, resp)
	}
	resp.Body.Close()
	outbox := filepath.Join(in.Dir, "outbox")
	find := func(subject string) gotMail {
		deadline := time.Now().Add(20 * time.Second)
		for {
			files, _ := filepath.Glob(filepath.Join(outbox, "*.eml"))
			for _, f := range files {
				raw, err := os.ReadFile(f)
				if err != nil {
					continue
				}
				if g, err := decodeMail(raw); err == nil && g.To == addr && strings.Contains(g.Subject, subject) {
					return g
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no email %q to %s in %s after 20s", subject, addr, outbox)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	confirm := find("Confirm your subscription")
	m := regexp.MustCompile(`/subscribe/confirm\?token=([A-Za-z0-9_-]+)`).FindStringSubmatch(confirm.Text)
	if m == nil {
		t.Fatalf("no confirmation link in:\n%s", confirm.Text)
	}
	token := m[1]
	formCSRF := page("/subscribe/confirm?token=" + token)
	resp, err = browser.PostForm(in.Base()+"/subscribe/confirm", url.Values{"csrf_token": {formCSRF}, "token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "You are subscribed") {
		t.Fatalf("confirm: %d\n%s", resp.StatusCode, harness.Tail(string(body), 500))
	}
	find("You are subscribed")
	return addr, token
}

// fuzzValues are hostile and odd inputs, mixed with plausible ones.
var fuzzValues = []string{
	"", " ", "harbour", "north", "north-news", "daily", "weekly", "immediately", "reader0001@example.net",
	"new-topic", "New Topic", "-1", "0", "99999999999999999999", "1e309", "null", "true", "[]", "{}",
	"a\r\nBcc: victim@example.org", "x@example.org\r\nSubject: injected", "line\nbreak", "tab\there", "\x00nul", "\x1b[31mred",
	"<script>alert(1)</script>", "\"quoted\" & 'single'", "]]>", "' OR 1=1 --", "%00", "%0d%0a", "../../etc/passwd",
	"\xff\xfe invalid utf-8", "Ünïcödé ✓ 🚢 עברית", "\u202eevil", "http://127.0.0.1:1/feed.rss", "javascript:alert(1)",
	"ftp://example.org/x", "http://[::1", "https://example.org/" + strings.Repeat("a", 3000), "@", "a@b", "@example.org",
	"UPPER@EXAMPLE.ORG", "unsubscribe", "one-click", "List-Unsubscribe=One-Click", "subscribe", "AQEBAAAAAAAAAAAAAAA",
}

func fuzzString(r *rand.Rand) string {
	word := func() string {
		b := make([]byte, 3+r.IntN(8))
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		return string(b)
	}
	switch r.IntN(12) {
	case 0:
		return strings.Repeat(string(rune('a'+r.IntN(26))), 1+r.IntN(70000))
	case 1:
		b := make([]byte, r.IntN(64))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	case 2:
		return fuzzValues[r.IntN(len(fuzzValues))] + fuzzValues[r.IntN(len(fuzzValues))]
	case 3, 4:
		// Plausible: a new slug, name or address, to get past validation.
		return []string{"fz-" + word(), "Fuzzed " + word() + " office", word() + "@example.org", "http://127.0.0.1:1/" + word() + ".rss"}[r.IntN(4)]
	case 5:
		return word() + fuzzValues[r.IntN(len(fuzzValues))]
	}
	return fuzzValues[r.IntN(len(fuzzValues))]
}

// fuzzField is a value for a named field: half the time one that fits
// the name, so that requests get past validation and reach the store,
// otherwise anything.
func fuzzField(r *rand.Rand, name string) string {
	if r.IntN(2) == 0 {
		return fuzzString(r)
	}
	w := func() string {
		b := make([]byte, 3+r.IntN(8))
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		return string(b)
	}
	switch strings.TrimPrefix(name, "hub.") {
	case "slug":
		return "fz-" + w()
	case "name", "title", "description":
		return "Fuzzed " + w() + []string{"", " ✓", " & <b>bold</b>", " \u202e", " \r\nInjected: yes"}[r.IntN(5)]
	case "url", "callback", "topic":
		return []string{"http://127.0.0.1:1/" + w() + ".rss", "https://example.org/" + w(), "harbour"}[r.IntN(3)]
	case "department", "departments":
		return worldDepts[r.IntN(len(worldDepts))].Slug
	case "format":
		formats := store.Formats()
		return formats[r.IntN(len(formats))]
	case "email", "address":
		return w() + []string{"@example.org", "@EXAMPLE.org", "@example.org\r\nBcc: x@example.org", "@localhost"}[r.IntN(4)]
	case "frequency":
		return []string{"immediately", "daily", "weekly", "hourly"}[r.IntN(4)]
	case "keywords", "categories", "exclude":
		return w() + ", " + w()
	case "mode":
		return []string{"subscribe", "unsubscribe", "publish"}[r.IntN(3)]
	case "lease_seconds", "limit", "page", "subscription":
		return strconv.Itoa(r.IntN(2000) - 10)
	case "enabled", "retired", "confirm":
		return []string{"true", "false", "on", "1"}[r.IntN(4)]
	}
	return fuzzString(r)
}

// fuzzJSON makes a value for a schema, wrong now and then.
func fuzzJSON(r *rand.Rand, name string, schema map[string]any, schemas map[string]map[string]any, depth int) any {
	if ref, ok := schema["$ref"].(string); ok && depth < 4 {
		return fuzzJSON(r, name, schemas[strings.TrimPrefix(ref, "#/components/schemas/")], schemas, depth+1)
	}
	if r.IntN(12) == 0 || depth > 4 {
		// The wrong type.
		return []any{nil, 7, -1.5, true, "text", []any{1, "2"}, map[string]any{"x": 1}}[r.IntN(7)]
	}
	switch schema["type"] {
	case "object":
		out := map[string]any{}
		props, _ := schema["properties"].(map[string]any)
		for name, p := range props {
			if r.IntN(5) > 0 {
				ps, _ := p.(map[string]any)
				out[name] = fuzzJSON(r, name, ps, schemas, depth+1)
			}
		}
		if r.IntN(10) == 0 {
			out[fuzzString(r)] = fuzzString(r)
		}
		return out
	case "array":
		items, _ := schema["items"].(map[string]any)
		var out []any
		for range r.IntN(5) {
			out = append(out, fuzzJSON(r, name, items, schemas, depth+1))
		}
		return out
	case "boolean":
		return r.IntN(2) == 0
	case "integer", "number":
		return []any{0, 1, -1, 1 << 40, 3.5}[r.IntN(5)]
	}
	return fuzzField(r, name)
}

var fuzzWildcard = regexp.MustCompile(`\{[^}]+\}`)

// fuzzRequest builds one request for a route: random path segments,
// query, body and credentials.
func fuzzRequest(r *rand.Rand, base string, rt fuzzRoute, schemas map[string]map[string]any, known []string, visitorCSRF, adminCSRF string) *http.Request {
	segment := func() string {
		if r.IntN(3) == 0 {
			return known[r.IntN(len(known))]
		}
		return url.PathEscape(fuzzString(r))
	}
	path := fuzzWildcard.ReplaceAllStringFunc(rt.pattern, func(string) string { return segment() })
	q := url.Values{}
	for _, name := range rt.query {
		if r.IntN(4) > 0 {
			q.Set(name, fuzzField(r, name))
		}
	}
	var body io.Reader
	ctype := ""
	switch {
	case rt.api && rt.method != "GET":
		var raw []byte
		switch r.IntN(10) {
		case 0:
			raw = []byte(`{"title": "unterminated`)
		case 1:
			raw = bytes.Repeat([]byte(`{"a":`), 2000)
		case 2:
			raw = append([]byte(`{"title":"`), append(bytes.Repeat([]byte("A"), 2<<20), '"', '}')...)
		default:
			if rt.schema != nil {
				raw, _ = json.Marshal(fuzzJSON(r, "", rt.schema, schemas, 0))
			}
		}
		body, ctype = bytes.NewReader(raw), []string{"application/json", "application/json", "application/json", "text/plain", ""}[r.IntN(5)]
	case len(rt.fields) > 0 || rt.method == "POST":
		form := url.Values{}
		for _, f := range rt.fields {
			if r.IntN(5) > 0 {
				form.Set(f, fuzzField(r, f))
			}
		}
		switch {
		case rt.admin && r.IntN(5) > 0:
			form.Set("csrf_token", adminCSRF)
		case !rt.admin && r.IntN(5) > 0:
			form.Set("csrf_token", visitorCSRF)
		case r.IntN(2) == 0:
			form.Set("csrf_token", fuzzString(r))
		}
		enc := form.Encode()
		if r.IntN(20) == 0 {
			enc = strings.Repeat("field=value&", 200000)
		}
		body, ctype = strings.NewReader(enc), "application/x-www-form-urlencoded"
		if r.IntN(10) == 0 {
			ctype = "multipart/form-data; boundary=broken"
		}
	}
	u := base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(rt.method, u, body)
	if err != nil {
		req, _ = http.NewRequest(rt.method, base+"/", nil)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if rt.api {
		switch r.IntN(10) {
		case 0:
		case 1:
			req.Header.Set("Authorization", "Bearer "+harness.AdminToken+"x")
		case 2:
			req.Header.Set("Authorization", "Basic "+harness.AdminToken)
		default:
			req.Header.Set("Authorization", "Bearer "+harness.AdminToken)
		}
	}
	return req
}

// fuzzInvariants checks every row a request could have written and
// returns how many it checked.
func fuzzInvariants(t *testing.T, in *harness.Instance) int {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, in.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checked := 0
	clean := func(what, s string) {
		if !utf8.ValidString(s) || strings.ContainsFunc(s, func(c rune) bool { return unicode.IsControl(c) && c != '\n' && c != '\t' }) {
			t.Errorf("%s %q holds invalid UTF-8 or control characters", what, harness.Tail(s, 80))
		}
	}
	depts, err := db.Departments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range depts {
		checked++
		if p := d.Problems(); len(p) > 0 {
			t.Errorf("department %q stored with problems: %v", d.Slug, p)
		}
		clean("department name", d.Name)
	}
	srcs, err := db.Sources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srcs {
		checked++
		if p := s.Problems(); len(p) > 0 {
			t.Errorf("source %q stored with problems: %v", s.Name, p)
		}
		clean("source name", s.Name)
	}
	topics, err := db.Topics(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range topics {
		checked++
		if p := tp.Problems(); len(p) > 0 {
			t.Errorf("topic %q stored with problems: %v", tp.Slug, p)
		}
		clean("topic title", tp.Title)
	}
	// Stored addresses are canonical: the rule gives them back unchanged.
	validAddr := func(a string) bool {
		canonical, err := address.Parse(a)
		return err == nil && canonical == a
	}
	for _, r := range in.QueryStrings(`SELECT address, pending_address FROM subscribers`) {
		checked++
		if !validAddr(r[0]) || (r[1] != "" && !validAddr(r[1])) {
			t.Errorf("subscriber address %q (pending %q) is not a valid address", r[0], r[1])
		}
	}
	for _, r := range in.QueryStrings(`SELECT s.frequency, s.status, coalesce(t.slug, ''), coalesce(d.slug, '')
		FROM subscriptions s LEFT JOIN topics t ON t.id = s.topic_id LEFT JOIN departments d ON d.id = s.department_id`) {
		checked++
		if !store.ValidFrequency(r[0]) || (r[2] == "") == (r[3] == "") {
			t.Errorf("subscription %v is not valid", r)
		}
	}
	for _, r := range in.QueryStrings(`SELECT to_addr, subject FROM outbox`) {
		checked++
		if !validAddr(r[0]) || strings.ContainsAny(r[1], "\r\n") {
			t.Errorf("outbox message to %q, subject %q, is not valid", r[0], r[1])
		}
		clean("subject", r[1])
	}
	for _, r := range in.QueryStrings(`SELECT callback FROM websub_subscriptions`) {
		checked++
		if u, err := url.Parse(r[0]); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			t.Errorf("WebSub callback %q is not an http(s) URL", r[0])
		}
	}
	return checked
}
