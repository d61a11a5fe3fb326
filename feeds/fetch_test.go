package feeds_test

import (
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"herald/feeds"
	"herald/store"
)

func TestFetchIdentifiesHerald(t *testing.T) {
	old := feeds.Version
	feeds.Version = "1.4.0"
	t.Cleanup(func() { feeds.Version = old })
	env := newPullEnv(t, feeds.PullConfig{}, nil)
	pub := newPullPublisher(t)
	env.addSource("coastal", pub.set("/feed", pullFixture(t, "good.xml"), "application/rss+xml"), store.FormatAuto)
	env.pull(feeds.PullRequest{})
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

	custom := newPullEnv(t, feeds.PullConfig{UserAgent: "Herald-staging"}, nil)
	custom.addSource("coastal", pub.URL+"/feed", store.FormatAuto)
	custom.pull(feeds.PullRequest{})
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
			env := newPullEnv(t, feeds.PullConfig{MaxBody: tc.max}, nil)
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
			r := env.pull(feeds.PullRequest{})["coastal"]
			if tc.wantErr == "" {
				if r.Status != feeds.PullStatusNew {
					t.Fatalf("report %+v, want new", r)
				}
				return
			}
			if r.Status != feeds.PullStatusFailed || r.Err != tc.wantErr {
				t.Fatalf("report %+v, want failed with %q", r, tc.wantErr)
			}
		})
	}
}

func TestFetchGzip(t *testing.T) {
	env := newPullEnv(t, feeds.PullConfig{}, nil)
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
	if r := env.pull(feeds.PullRequest{})["coastal"]; r.Status != feeds.PullStatusNew || r.New != 2 {
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
			env := newPullEnv(t, feeds.PullConfig{}, nil)
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
			r := env.pull(feeds.PullRequest{})["coastal"]
			if tc.wantErr == "" {
				if r.Status != feeds.PullStatusNew || r.New != 2 {
					t.Fatalf("report %+v, want 2 new", r)
				}
				return
			}
			if r.Status != feeds.PullStatusFailed || !strings.Contains(r.Err, tc.wantErr) {
				t.Fatalf("report %+v, want failed with %q", r, tc.wantErr)
			}
		})
	}
}

// TestFetchResolvesAgainstFinalURL: after a redirect, relative links are
// relative to where the feed was found, not where it was looked for.
func TestFetchResolvesAgainstFinalURL(t *testing.T) {
	env := newPullEnv(t, feeds.PullConfig{}, nil)
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
	if r := env.pull(feeds.PullRequest{})["coastal"]; r.Status != feeds.PullStatusNew {
		t.Fatalf("report %+v", r)
	}
	rel := env.releases("coastal")
	if len(rel) != 1 || rel[0].Link != srv.URL+"/new/item-1.html" {
		t.Fatalf("releases %+v, want the link resolved against /new/", rel)
	}
}
