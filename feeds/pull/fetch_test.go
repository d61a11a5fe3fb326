package pull_test

import (
	"compress/gzip"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"herald/feeds/netguard"
	"herald/feeds/pull"
	"herald/store"
)

func TestFetchIdentifiesHerald(t *testing.T) {
	env := newPullEnv(t, pull.Config{Version: "1.4.0"}, nil)
	pub := newPullPublisher(t)
	env.addSource("coastal", pub.set("/feed", pullFixture(t, "good.xml"), "application/rss+xml"), store.FormatAuto)
	env.pull(pull.Request{})
	h := pub.header("/feed")
	if ua := h.Get("User-Agent"); ua != "Herald/1.4.0 (+https://github.com/herald)" {
		t.Errorf("User-Agent = %q", ua)
	}
	for _, typ := range []string{"application/atom+xml", "application/rss+xml", "application/feed+json", "application/rdf+xml"} {
		if !strings.Contains(h.Get("Accept"), typ) {
			t.Errorf("Accept %q does not list %s", h.Get("Accept"), typ)
		}
	}
	if h.Get("If-None-Match") != "" || h.Get("If-Modified-Since") != "" {
		t.Errorf("first request was conditional: %v", h)
	}

	custom := newPullEnv(t, pull.Config{UserAgent: "Herald-staging"}, nil)
	custom.addSource("coastal", pub.URL+"/feed", store.FormatAuto)
	custom.pull(pull.Request{})
	if ua := pub.header("/feed").Get("User-Agent"); ua != "Herald-staging" {
		t.Errorf("configured User-Agent = %q", ua)
	}
}

func TestFetchBodyCap(t *testing.T) {
	body := pullFixture(t, "good.xml")
	cases := []struct {
		name    string
		max     int64
		chunked bool
		wantErr string
	}{
		{"exactly the cap, length known", int64(len(body)), false, ""},
		{"exactly the cap, streamed", int64(len(body)), true, ""},
		{"one byte over, length known", int64(len(body)) - 1, false, fmt.Sprintf("body larger than %d bytes (Content-Length %d)", len(body)-1, len(body))},
		{"one byte over, streamed", int64(len(body)) - 1, true, fmt.Sprintf("body larger than %d bytes", len(body)-1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newPullEnv(t, pull.Config{MaxBody: tc.max}, nil)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !tc.chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				}
				w.Write(body[:100])
				w.(http.Flusher).Flush()
				w.Write(body[100:])
			}))
			t.Cleanup(srv.Close)
			env.addSource("coastal", srv.URL, store.FormatAuto)
			r := env.pull(pull.Request{})["coastal"]
			if tc.wantErr == "" {
				if r.Status != pull.StatusNew {
					t.Fatalf("report %+v, want new", r)
				}
				return
			}
			if r.Status != pull.StatusFailed || r.Err != tc.wantErr {
				t.Fatalf("report %+v, want failed with %q", r, tc.wantErr)
			}
		})
	}
}

func TestFetchGzip(t *testing.T) {
	env := newPullEnv(t, pull.Config{}, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			t.Errorf("Accept-Encoding = %q", r.Header.Get("Accept-Encoding"))
		}
		w.Header().Set("Content-Type", "application/rss+xml")
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		zw.Write(pullFixture(t, "good.xml"))
		zw.Close()
	}))
	t.Cleanup(srv.Close)
	env.addSource("coastal", srv.URL, store.FormatAuto)
	if r := env.pull(pull.Request{})["coastal"]; r.Status != pull.StatusNew || r.New != 2 {
		t.Fatalf("report %+v", r)
	}
}

func TestFetchRedirects(t *testing.T) {
	cases := []struct {
		name    string
		hops    int
		target  string // final Location, if not the feed
		wantErr string
	}{
		{name: "five redirects are followed", hops: 5},
		{name: "six are not", hops: 6, wantErr: "too many redirects: gave up after 5"},
		{name: "redirect to a file URL", hops: 1, target: "file:///etc/passwd", wantErr: `redirect to "file:///etc/passwd" refused`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newPullEnv(t, pull.Config{}, nil)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := 0
				fmt.Sscanf(r.URL.Query().Get("hop"), "%d", &n)
				switch {
				case n < tc.hops-1 || (n == tc.hops-1 && tc.target == ""):
					http.Redirect(w, r, fmt.Sprintf("/feed?hop=%d", n+1), http.StatusMovedPermanently)
				case n == tc.hops-1:
					w.Header().Set("Location", tc.target)
					w.WriteHeader(http.StatusFound)
				default:
					w.Header().Set("Content-Type", "application/rss+xml")
					w.Write(pullFixture(t, "good.xml"))
				}
			}))
			t.Cleanup(srv.Close)
			env.addSource("coastal", srv.URL+"/feed", store.FormatAuto)
			r := env.pull(pull.Request{})["coastal"]
			if tc.wantErr == "" {
				if r.Status != pull.StatusNew || r.New != 2 {
					t.Fatalf("report %+v, want 2 new", r)
				}
				return
			}
			if r.Status != pull.StatusFailed || !strings.Contains(r.Err, tc.wantErr) {
				t.Fatalf("report %+v, want failed with %q", r, tc.wantErr)
			}
		})
	}
}

// TestFetchResolvesAgainstFinalURL: after a redirect, relative links are
// relative to where the feed was found, not where it was looked for.
func TestFetchResolvesAgainstFinalURL(t *testing.T) {
	env := newPullEnv(t, pull.Config{}, nil)
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old/feed.json" {
			http.Redirect(w, r, "/new/feed.json", http.StatusMovedPermanently)
			return
		}
		w.Header().Set("Content-Type", "application/feed+json")
		fmt.Fprint(w, `{"version":"https://jsonfeed.org/version/1.1","title":"t","items":[{"id":"1","url":"item-1.html","title":"Moved feed"}]}`)
	}))
	t.Cleanup(srv.Close)
	env.addSource("coastal", srv.URL+"/old/feed.json", store.FormatAuto)
	if r := env.pull(pull.Request{})["coastal"]; r.Status != pull.StatusNew {
		t.Fatalf("report %+v", r)
	}
	rel := env.releases("coastal")
	if len(rel) != 1 || rel[0].Link != srv.URL+"/new/item-1.html" {
		t.Fatalf("releases %+v, want the link resolved against /new/", rel)
	}
}

// intranet is a service on the operator's own network that a pull must
// never reach: it records whether anything asked.
type intranet struct {
	*httptest.Server
	hits atomic.Int32
}

func newIntranet(t *testing.T) *intranet {
	in := &intranet{}
	in.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.hits.Add(1)
		w.Header().Set("Content-Type", "application/atom+xml")
		fmt.Fprint(w, `<feed xmlns="http://www.w3.org/2005/Atom"><title>Intranet</title><id>urn:intranet</id><updated>2026-03-01T09:00:00Z</updated>`+
			`<entry><id>urn:memo</id><title>Internal only memo</title><updated>2026-03-01T09:00:00Z</updated><link href="http://intranet/memo"/></entry></feed>`)
	}))
	t.Cleanup(in.Close)
	return in
}

// TestFetchRefusesPrivateAddresses: by default a pull connects only to
// public addresses. A source on loopback, and a source whose publisher
// (allowed here, as the demo allows its own) redirects to another address
// on loopback, by number or by a name that resolves there, fail with a
// clear refusal, ingest nothing and never reach the address.
func TestFetchRefusesPrivateAddresses(t *testing.T) {
	in := newIntranet(t)
	inURL, _ := url.Parse(in.URL)
	_, inPort, _ := net.SplitHostPort(inURL.Host)
	publisher := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	}))
	t.Cleanup(publisher.Close)
	pubURL, _ := url.Parse(publisher.URL)
	allowPublisher, err := netguard.ParseAllowance(pubURL.Host)
	if err != nil {
		t.Fatal(err)
	}
	guard := netguard.Guard{Allow: []netguard.Allowance{allowPublisher}}
	redirect := func(to string) string { return publisher.URL + "/feed?to=" + url.QueryEscape(to) }

	cases := []struct {
		name  string
		guard netguard.Guard
		url   string
		want  string
	}{
		{"a source on loopback", netguard.Guard{}, in.URL + "/intranet.atom", "refused: 127.0.0.1 is a loopback address; set pull.allow_private to pull from private networks"},
		{"a redirect to loopback", guard, redirect(in.URL + "/intranet.atom"), "refused: 127.0.0.1 is a loopback address"},
		{"a redirect to a name that resolves to loopback", guard, redirect("http://localhost:" + inPort + "/intranet.atom"), "is a loopback address"},
		{"a redirect to mapped loopback", guard, redirect("http://[::ffff:127.0.0.1]:" + inPort + "/intranet.atom"), "is a loopback address"},
		{"a redirect to this network", guard, redirect("http://0.0.0.0:" + inPort + "/intranet.atom"), `is a "this network" address`},
		{"a second hop to loopback", guard, redirect(redirect(in.URL + "/intranet.atom")), "refused: 127.0.0.1 is a loopback address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newGuardedPullEnv(t, pull.Config{Guard: tc.guard}, nil)
			env.addSource("coastal", tc.url, store.FormatAuto)
			r := env.pull(pull.Request{})["coastal"]
			if r.Status != pull.StatusFailed || !strings.Contains(r.Err, tc.want) {
				t.Errorf("report %+v, want failed with %q", r, tc.want)
			}
			if src := env.source("coastal"); !strings.Contains(src.LastError, tc.want) {
				t.Errorf("source's last error %q, want %q", src.LastError, tc.want)
			}
			if rel := env.releases("coastal"); len(rel) != 0 {
				t.Errorf("ingested %+v", rel)
			}
		})
	}
	if n := in.hits.Load(); n != 0 {
		t.Errorf("the intranet service was asked %d times", n)
	}

	// The same redirect with private addresses allowed is followed.
	env := newGuardedPullEnv(t, pull.Config{Guard: netguard.Guard{AllowPrivate: true}}, nil)
	env.addSource("coastal", redirect(in.URL+"/intranet.atom"), store.FormatAuto)
	if r := env.pull(pull.Request{})["coastal"]; r.Status != pull.StatusNew {
		t.Errorf("with allow_private: report %+v", r)
	}
}

// TestFetchErrorsQuoteNoBody: a source that answers with an error status
// and a body is reported by its status line alone.
func TestFetchErrorsQuoteNoBody(t *testing.T) {
	const secret = "herald_admin_token_s3cr3t"
	env := newPullEnv(t, pull.Config{}, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.Error(w, secret, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP %s_total Requests.\n%s_total 12\n", secret, secret)
	}))
	t.Cleanup(srv.Close)
	env.addSource("coastal", srv.URL+"/missing", store.FormatAuto)
	env.addSource("broadband", srv.URL+"/metrics", store.FormatAuto)
	reports := env.pull(pull.Request{})
	for name, want := range map[string]string{"coastal": "HTTP 404 Not Found", "broadband": "not a feed: the body is text/plain"} {
		r := reports[name]
		if r.Status != pull.StatusFailed || !strings.Contains(r.Err, want) || strings.Contains(r.Err, secret) {
			t.Errorf("%s: report %+v, want failed with %q and nothing of the body", name, r, want)
		}
	}
}
