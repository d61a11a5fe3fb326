package publish_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"herald/feeds/netguard"
	"herald/feeds/publish"
	"herald/store"
)

// hubSubscriber is a WebSub subscriber on loopback that records what the
// hub sends it.
type hubSubscriber struct {
	srv      *httptest.Server
	mu       sync.Mutex
	verifies []url.Values
	posts    []hubPost
	failNext int  // POSTs still to answer 500
	deny     bool // refuse verification with 404
	echo     func(challenge string) string
	notify   chan struct{}
}

type hubPost struct {
	body   []byte
	header http.Header
}

func newHubSubscriber(t *testing.T) *hubSubscriber {
	s := &hubSubscriber{notify: make(chan struct{}, 100)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer func() {
			s.mu.Unlock()
			s.notify <- struct{}{}
		}()
		switch r.Method {
		case http.MethodGet:
			q := r.URL.Query()
			s.verifies = append(s.verifies, q)
			if s.deny {
				http.NotFound(w, r)
				return
			}
			reply := q.Get("hub.challenge")
			if s.echo != nil {
				reply = s.echo(reply)
			}
			io.WriteString(w, reply)
		case http.MethodPost:
			body, _ := io.ReadAll(r.Body)
			if s.failNext > 0 {
				s.failNext--
				http.Error(w, "busy", http.StatusInternalServerError)
				return
			}
			s.posts = append(s.posts, hubPost{body, r.Header.Clone()})
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *hubSubscriber) counts() (verifies, posts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.verifies), len(s.posts)
}

func (s *hubSubscriber) lastPost() hubPost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts[len(s.posts)-1]
}

// waitFor polls cond until it holds or the time runs out.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hubEnv is the demo with a hub served over HTTP on loopback, its worker
// running, and a clock safe to move while the worker reads it.
type hubEnv struct {
	*renderEnv
	clock  atomic.Int64
	hubURL string
	stop   func()
}

func newHubEnv(t *testing.T, cfg publish.Config) *hubEnv {
	return newHubEnvWorker(t, cfg, true)
}

// newHubEnvWorker is newHubEnv, with the hub's worker running or not: a
// test whose requests name addresses off this machine must not run it, so
// nothing is ever sent there.
func newHubEnvWorker(t *testing.T, cfg publish.Config, worker bool) *hubEnv {
	h := &hubEnv{renderEnv: newRenderEnv(t, cfg)}
	h.load("demo.json")
	h.clock.Store(time.Date(2026, 3, 5, 9, 0, 0, 0, time.UTC).UnixNano())
	h.nowFn = h.clockNow
	h.pub.Now = h.clockNow
	if _, err := h.pub.RenderAll(h.ctx); err != nil {
		t.Fatal(err)
	}
	h.start(t, worker)
	return h
}

func (h *hubEnv) clockNow() time.Time { return time.Unix(0, h.clock.Load()).UTC() }

func (h *hubEnv) advance(d time.Duration) { h.clock.Add(int64(d)) }

// start serves the publisher's routes and, if worker, runs its worker.
func (h *hubEnv) start(t *testing.T, worker bool) {
	srv := httptest.NewServer(h.mux)
	h.hubURL = srv.URL + "/websub"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if worker {
			h.pub.Run(ctx)
		}
	}()
	stopped := false
	h.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			srv.Close()
		}
	}
	t.Cleanup(h.stop)
}

// restart stops the worker and starts a new publisher over the same store.
func (h *hubEnv) restart(t *testing.T) {
	h.stop()
	h.pub = h.publisher()
	h.pub.Now = h.clockNow
	if err := h.pub.Warm(h.ctx); err != nil {
		t.Fatal(err)
	}
	h.start(t, true)
}

func (h *hubEnv) request(t *testing.T, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(h.hubURL, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (h *hubEnv) subscriptions(t *testing.T) []store.WebSubSubscription {
	t.Helper()
	subs, err := h.db.WebSubSubscriptions(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	return subs
}

func (h *hubEnv) newRelease(t *testing.T, source, guid, title string) {
	t.Helper()
	h.advance(time.Minute)
	h.pull(source, store.Entry{GUID: guid, Title: title, Published: h.clockNow()})
}

const hubTopic = renderBase + "/feeds/departments/home-office.atom"

func TestWebSubRoundTrip(t *testing.T) {
	h := newHubEnv(t, publish.Config{WebSub: publish.WebSubConfig{Callbacks: netguard.Guard{AllowPrivate: true}, LeaseMax: 24 * time.Hour, LeaseDefault: time.Hour}})
	sub := newHubSubscriber(t)
	callback := sub.srv.URL + "/cb?feed=home"

	code, msg := h.request(t, url.Values{"hub.mode": {"subscribe"}, "hub.topic": {hubTopic}, "hub.callback": {callback},
		"hub.secret": {"correct horse battery staple"}, "hub.lease_seconds": {"999999"}})
	if code != http.StatusAccepted {
		t.Fatalf("subscribe: %d %s", code, msg)
	}
	waitFor(t, 5*time.Second, "the subscription to be verified", func() bool { return len(h.subscriptions(t)) == 1 })
	sub.mu.Lock()
	v := sub.verifies[0]
	sub.mu.Unlock()
	if v.Get("hub.mode") != "subscribe" || v.Get("hub.topic") != hubTopic || v.Get("feed") != "home" ||
		len(v.Get("hub.challenge")) < 16 || v.Get("hub.lease_seconds") != "86400" {
		t.Errorf("verification request %v (want the lease capped at 86400 and the callback's query kept)", v)
	}
	s := h.subscriptions(t)[0]
	if s.Topic != hubTopic || s.Callback != callback || s.LeaseSeconds != 86400 || !s.ExpiresAt.Equal(h.clockNow().Add(24*time.Hour)) {
		t.Errorf("subscription %+v", s)
	}

	// A change in another department's feed owes this subscriber nothing;
	// a change in its own is pushed within a second.
	h.newRelease(t, "treasury", "tr-300", "Gilt auction results")
	h.renderDirty()
	h.newRelease(t, "home-office", "ho-300", "Passport office opening hours")
	start := time.Now()
	h.renderDirty()
	waitFor(t, time.Second, "the delivery", func() bool { _, n := sub.counts(); return n == 1 })
	t.Logf("delivered %v after the render", time.Since(start))
	time.Sleep(100 * time.Millisecond)
	if _, n := sub.counts(); n != 1 {
		t.Fatalf("%d deliveries, want exactly 1", n)
	}
	p := sub.lastPost()
	want := h.body("/feeds/departments/home-office.atom")
	if !bytes.Equal(p.body, want) || !bytes.Contains(p.body, []byte("Passport office opening hours")) {
		t.Error("the delivery is not the feed's new bytes")
	}
	if ct := p.header.Get("Content-Type"); ct != "application/atom+xml; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if link := p.header.Get("Link"); !strings.Contains(link, `<`+renderBase+`/websub>; rel="hub"`) || !strings.Contains(link, `<`+hubTopic+`>; rel="self"`) {
		t.Errorf("Link %q", link)
	}
	mac := hmac.New(sha256.New, []byte("correct horse battery staple"))
	mac.Write(p.body)
	if got := p.header.Get("X-Hub-Signature"); got != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
		t.Errorf("X-Hub-Signature %q", got)
	}

	// Unsubscribing is verified too; afterwards changes go to others only.
	other := newHubSubscriber(t)
	if code, msg := h.request(t, url.Values{"hub.mode": {"subscribe"}, "hub.topic": {hubTopic}, "hub.callback": {other.srv.URL}}); code != 202 {
		t.Fatalf("second subscribe: %d %s", code, msg)
	}
	if code, msg := h.request(t, url.Values{"hub.mode": {"unsubscribe"}, "hub.topic": {hubTopic}, "hub.callback": {callback}}); code != 202 {
		t.Fatalf("unsubscribe: %d %s", code, msg)
	}
	waitFor(t, 5*time.Second, "the unsubscription", func() bool {
		subs := h.subscriptions(t)
		return len(subs) == 1 && subs[0].Callback == other.srv.URL
	})
	sub.mu.Lock()
	if last := sub.verifies[len(sub.verifies)-1]; last.Get("hub.mode") != "unsubscribe" || last.Has("hub.lease_seconds") {
		t.Errorf("unsubscribe verification %v", last)
	}
	sub.mu.Unlock()
	h.newRelease(t, "home-office", "ho-301", "Visa fees consultation")
	h.renderDirty()
	waitFor(t, time.Second, "the other subscriber's delivery", func() bool { _, n := other.counts(); return n == 1 })
	if other.lastPost().header.Get("X-Hub-Signature") != "" {
		t.Error("signed a delivery for a subscriber without a secret")
	}
	time.Sleep(100 * time.Millisecond)
	if _, n := sub.counts(); n != 1 {
		t.Errorf("the unsubscribed callback got %d deliveries, want still 1", n)
	}
}

// TestWebSubRetriesAcrossRestart: a failed delivery is kept in the store,
// retried with backoff, and still delivered by the next process.
func TestWebSubRetriesAcrossRestart(t *testing.T) {
	h := newHubEnv(t, publish.Config{WebSub: publish.WebSubConfig{Callbacks: netguard.Guard{AllowPrivate: true}}})
	sub := newHubSubscriber(t)
	sub.failNext = 2
	if code, msg := h.request(t, url.Values{"hub.mode": {"subscribe"}, "hub.topic": {hubTopic}, "hub.callback": {sub.srv.URL}}); code != 202 {
		t.Fatalf("subscribe: %d %s", code, msg)
	}
	waitFor(t, 5*time.Second, "verification", func() bool { return len(h.subscriptions(t)) == 1 })
	h.newRelease(t, "home-office", "ho-400", "Border statistics")
	h.renderDirty()
	waitFor(t, 2*time.Second, "the first attempt to fail", func() bool {
		return strings.Contains(h.subscriptions(t)[0].LastError, "500")
	})
	h.restart(t)
	time.Sleep(50 * time.Millisecond)
	if _, n := sub.counts(); n != 0 {
		t.Fatal("retried before the backoff ended")
	}
	h.advance(31 * time.Second) // first backoff: 30s
	waitFor(t, 3*time.Second, "the second attempt", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return sub.failNext == 0
	})
	// The subscriber has answered; move the clock only once the hub has
	// recorded the failure and scheduled its retry from the current time
	// (a backoff of a minute, not the claim's lease of minutes).
	waitFor(t, 3*time.Second, "the second failure to be recorded", func() bool {
		at, ok, err := h.db.NextWebSubWork(h.ctx)
		return err == nil && ok && at.After(h.clockNow()) && at.Before(h.clockNow().Add(2*time.Minute))
	})
	h.advance(61 * time.Second) // second backoff: 60s
	waitFor(t, 3*time.Second, "the delivery after the restart", func() bool { _, n := sub.counts(); return n == 1 })
	if !bytes.Contains(sub.lastPost().body, []byte("Border statistics")) {
		t.Error("the retried delivery is not the new feed")
	}
	waitFor(t, time.Second, "the error to clear", func() bool { return h.subscriptions(t)[0].LastError == "" })
}

func TestWebSubVerificationFails(t *testing.T) {
	h := newHubEnv(t, publish.Config{WebSub: publish.WebSubConfig{Callbacks: netguard.Guard{AllowPrivate: true}}})
	for _, tc := range []struct {
		name string
		set  func(*hubSubscriber)
	}{
		{"refused", func(s *hubSubscriber) { s.deny = true }},
		{"wrong challenge", func(s *hubSubscriber) { s.echo = func(c string) string { return "not " + c } }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := newHubSubscriber(t)
			tc.set(sub)
			if code, _ := h.request(t, url.Values{"hub.mode": {"subscribe"}, "hub.topic": {hubTopic}, "hub.callback": {sub.srv.URL}}); code != 202 {
				t.Fatalf("subscribe: %d", code)
			}
			waitFor(t, 5*time.Second, "verification", func() bool { v, _ := sub.counts(); return v == 1 })
			time.Sleep(50 * time.Millisecond)
			for _, s := range h.subscriptions(t) {
				if s.Callback == sub.srv.URL {
					t.Errorf("subscribed although verification failed")
				}
			}
		})
	}
}

// hubAllowDocumentation lets callbacks name 192.0.2.0/24, which is not on
// the public internet, as an operator's allowed network would.
var hubAllowDocumentation = publish.WebSubConfig{Callbacks: netguard.Guard{Allow: []netguard.Allowance{{Prefix: netip.MustParsePrefix("192.0.2.0/24")}}}}

func TestWebSubRefusesBadRequests(t *testing.T) {
	// No worker: the accepted request below names an address off this
	// machine (a documentation address, 192.0.2.0/24), which must never be
	// contacted; the hub is told to take it as it would an allowed network.
	h := newHubEnvWorker(t, publish.Config{WebSub: hubAllowDocumentation}, false)
	ok := url.Values{"hub.mode": {"subscribe"}, "hub.topic": {hubTopic}, "hub.callback": {"https://192.0.2.10/cb"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vals := range ok {
			f[key] = vals
		}
		f.Set(k, v)
		return f
	}
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"no mode", with("hub.mode", "")},
		{"publish", with("hub.mode", "publish")},
		{"foreign topic", with("hub.topic", "https://elsewhere.example.org/feed.atom")},
		{"unknown feed", with("hub.topic", renderBase+"/feeds/departments/nowhere.atom")},
		{"archive page", with("hub.topic", renderBase+"/feeds/all/archive/1.atom")},
		{"no callback", with("hub.callback", "")},
		{"ftp callback", with("hub.callback", "ftp://192.0.2.10/cb")},
		{"relative callback", with("hub.callback", "/cb")},
		{"loopback", with("hub.callback", "http://127.0.0.1:9/cb")},
		{"loopback v6", with("hub.callback", "http://[::1]:9/cb")},
		{"localhost", with("hub.callback", "http://localhost:9/cb")},
		{"private", with("hub.callback", "http://10.1.2.3/cb")},
		{"private 192.168", with("hub.callback", "http://192.168.0.1/cb")},
		{"link-local", with("hub.callback", "http://169.254.169.254/latest/meta-data")},
		{"mapped loopback", with("hub.callback", "http://[::ffff:127.0.0.1]/cb")},
		{"NAT64 loopback", with("hub.callback", "http://[64:ff9b::7f00:1]/cb")},
		{"6to4 private", with("hub.callback", "http://[2002:a00:1::1]/cb")},
		{"carrier-grade NAT", with("hub.callback", "http://100.64.0.1/cb")},
		{"benchmarking", with("hub.callback", "http://198.18.0.1/cb")},
		{"reserved", with("hub.callback", "http://240.0.0.1/cb")},
		{"secret too long", with("hub.secret", strings.Repeat("s", 200))},
		{"bad lease", with("hub.lease_seconds", "soon")},
		{"negative lease", with("hub.lease_seconds", "-5")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, msg := h.request(t, tc.form); code != http.StatusBadRequest {
				t.Errorf("%d %s, want 400", code, msg)
			}
		})
	}
	// The same form with a public address is accepted, and waits for
	// verification.
	if code, msg := h.request(t, ok); code != http.StatusAccepted {
		t.Errorf("a public callback: %d %s", code, msg)
	}
	if reqs, err := h.db.DueWebSubRequests(h.ctx, 10); err != nil || len(reqs) != 1 || reqs[0].Callback != "https://192.0.2.10/cb" {
		t.Errorf("pending requests %+v, %v", reqs, err)
	}
}

// TestWebSubChecksAddressAtDelivery: a subscription made where private
// callbacks were allowed is not delivered to by a hub that forbids them;
// the address is checked when connecting, not only when subscribing.
func TestWebSubChecksAddressAtDelivery(t *testing.T) {
	h := newHubEnv(t, publish.Config{WebSub: publish.WebSubConfig{Callbacks: netguard.Guard{AllowPrivate: true}}})
	sub := newHubSubscriber(t)
	if code, _ := h.request(t, url.Values{"hub.mode": {"subscribe"}, "hub.topic": {hubTopic}, "hub.callback": {sub.srv.URL}}); code != 202 {
		t.Fatal("subscribe refused")
	}
	waitFor(t, 5*time.Second, "verification", func() bool { return len(h.subscriptions(t)) == 1 })
	h.cfg.WebSub.Callbacks.AllowPrivate = false
	h.restart(t)
	h.newRelease(t, "home-office", "ho-500", "Asylum statistics")
	h.renderDirty()
	waitFor(t, 3*time.Second, "the refusal", func() bool {
		return strings.Contains(h.subscriptions(t)[0].LastError, "refused")
	})
	if _, n := sub.counts(); n != 0 {
		t.Errorf("delivered %d times to a loopback callback", n)
	}
}

// TestWebSubRateLimitsRequests: one client cannot queue an endless stream
// of verification requests against a callback host.
func TestWebSubRateLimitsRequests(t *testing.T) {
	// No worker: the callbacks name a documentation address that must
	// never be contacted.
	h := newHubEnvWorker(t, publish.Config{WebSub: hubAllowDocumentation}, false)
	accepted, limited := 0, 0
	for i := 0; i < 40; i++ {
		form := url.Values{"hub.mode": {"subscribe"}, "hub.topic": {hubTopic}, "hub.callback": {fmt.Sprintf("https://192.0.2.10/cb/%d", i)}}
		switch code, msg := h.request(t, form); code {
		case http.StatusAccepted:
			accepted++
		case http.StatusTooManyRequests:
			limited++
		default:
			t.Fatalf("request %d: %d %s", i, code, msg)
		}
	}
	if accepted == 0 || limited == 0 || accepted > 25 {
		t.Fatalf("accepted %d and limited %d of 40 requests, want a burst accepted then the rest limited", accepted, limited)
	}
	reqs, err := h.db.DueWebSubRequests(h.ctx, 100)
	if err != nil || len(reqs) != accepted {
		t.Fatalf("%d pending requests (%v), want %d", len(reqs), err, accepted)
	}
}
