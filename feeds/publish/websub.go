package publish

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"herald/feeds/netguard"
	"herald/store"
)

// The built-in WebSub hub (W3C Recommendation, 23 January 2018) for
// Herald's own feeds. Subscribe and unsubscribe requests are accepted with
// 202 and stored; a worker (Run) verifies intent by GETting the callback
// with a challenge it must echo, and only then changes the subscription.
// When a feed's bytes change, every live subscriber of it is owed a
// delivery, stored too, so a restart carries on: a POST of the new bytes
// with the feed's Content-Type and Link headers, signed with
// X-Hub-Signature when the subscriber gave a secret, retried with backoff.
// Callbacks must not reach loopback, private or link-local addresses: the
// name is checked when subscribing and every connection's address is
// checked again when it is made.

const (
	hubMaxSecret       = 200 // bytes; the spec asks for less
	hubMaxCallback     = 2000
	hubMinLease        = time.Minute
	hubVerifyAttempts  = 3
	hubDeliverAttempts = 10
	hubBatch           = 50
	hubConcurrency     = 8
	hubTimeout         = 15 * time.Second
	// hubClaimLease is how long a claimed batch is this worker's: long
	// enough for a batch of attempts that all time out, after which a
	// batch left by a dead instance is due again for the others.
	hubClaimLease = 5 * time.Minute
)

type hubState struct {
	p      *Publisher
	wake   chan struct{}
	pings  chan []string
	client *http.Client
	// pinger talks to the external hubs the operator configured.
	pinger *http.Client
}

func (h *hubState) init(p *Publisher) {
	h.p = p
	h.wake = make(chan struct{}, 1)
	h.pings = make(chan []string, 64)
	guard := p.hubGuard()
	dialer := guard.Dialer(10 * time.Second)
	h.pinger = &http.Client{Timeout: hubTimeout}
	h.client = &http.Client{
		Timeout: hubTimeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: hubTimeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
		},
		// A callback answers itself; following a redirect could lead anywhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// hubGuard is where callbacks may be reached.
func (p *Publisher) hubGuard() netguard.Guard { return p.cfg.WebSub.Callbacks }

func (h *hubState) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// published owes subscribers of the changed feed URLs a delivery, wakes
// the worker, and queues a ping of the external hubs.
func (h *hubState) published(ctx context.Context, urls []string) {
	n, err := h.p.db.QueueWebSubDeliveries(ctx, urls)
	if err != nil {
		h.p.log.Error("websub: queue deliveries", slog.Any("error", err))
	}
	if n > 0 {
		h.poke()
	}
	if len(h.p.cfg.WebSub.ExternalHubs) > 0 {
		select {
		case h.pings <- urls:
		default:
			h.p.log.Warn("websub: external hub pings are behind; dropped one", slog.Int("feeds", len(urls)))
		}
	}
}

// hubServe is the hub endpoint, POST /websub.
func (p *Publisher) hubServe(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		hubError(w, http.StatusBadRequest, "the request body must be a form (application/x-www-form-urlencoded) of at most 64 KiB")
		return
	}
	f := r.PostForm
	mode := f.Get("hub.mode")
	if mode != store.WebSubSubscribe && mode != store.WebSubUnsubscribe {
		hubError(w, http.StatusBadRequest, `hub.mode must be "subscribe" or "unsubscribe"`)
		return
	}
	topic := f.Get("hub.topic")
	if !p.hubTopic(topic) {
		hubError(w, http.StatusBadRequest, "hub.topic must be the URL of one of this site's feeds, such as "+p.FeedURL("all", "atom"))
		return
	}
	callback := f.Get("hub.callback")
	cb, err := url.Parse(callback)
	if err != nil || (cb.Scheme != "http" && cb.Scheme != "https") || cb.Host == "" || len(callback) > hubMaxCallback {
		hubError(w, http.StatusBadRequest, "hub.callback must be an absolute http(s) URL of at most 2000 characters")
		return
	}
	if !p.hubAllowed(r, cb.Hostname()) {
		w.Header().Set("Retry-After", "60")
		hubError(w, http.StatusTooManyRequests, "too many subscription requests; try again in a minute")
		return
	}
	secret := f.Get("hub.secret")
	if len(secret) >= hubMaxSecret {
		hubError(w, http.StatusBadRequest, "hub.secret must be shorter than 200 bytes")
		return
	}
	lease := p.cfg.WebSub.LeaseDefault
	if s := f.Get("hub.lease_seconds"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			hubError(w, http.StatusBadRequest, "hub.lease_seconds must be a positive whole number")
			return
		}
		lease = time.Duration(min(n, int64(p.cfg.WebSub.LeaseMax/time.Second))) * time.Second
	}
	lease = min(max(lease, hubMinLease), p.cfg.WebSub.LeaseMax)
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	err = p.hubGuard().CheckHost(ctx, cb.Hostname(), netguard.Port(cb))
	cancel()
	if err != nil {
		if errors.Is(err, netguard.ErrRefused) {
			err = fmt.Errorf("refused: %w; callbacks must be on the public internet", err)
		}
		hubError(w, http.StatusBadRequest, "hub.callback: "+err.Error())
		return
	}
	_, err = p.db.AddWebSubRequest(r.Context(), store.WebSubRequest{
		Mode: mode, Topic: topic, Callback: callback, Secret: secret, LeaseSeconds: int(lease / time.Second),
	})
	if err != nil {
		p.log.Error("websub: store request", slog.Any("error", err))
		hubError(w, http.StatusServiceUnavailable, "the hub cannot take requests right now; try again later")
		return
	}
	p.hub.poke()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, "Accepted: the hub will verify this request with the callback.\n")
}

func hubError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

// hubTopic reports whether topic is the URL of one of Herald's current
// feeds.
func (p *Publisher) hubTopic(topic string) bool {
	path, ok := strings.CutPrefix(topic, p.base)
	if !ok {
		return false
	}
	d := p.cache.get(path)
	return d != nil && d.kind == store.FeedKindCurrent
}

// Run verifies WebSub requests, delivers changed feeds to subscribers,
// retries what failed and pings external hubs until ctx ends. Run it once
// per process, in every instance (each claims the work it does); it
// returns nil when ctx is done.
func (p *Publisher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.hubPinger(ctx)
	}()
	for {
		p.hubWork(ctx)
		// Sleep until the next retry is due, but look again every second:
		// the store's clock, not this process's timers, says what is due.
		wait := time.Second
		if next, ok, err := p.db.NextWebSubWork(ctx); err != nil {
			if ctx.Err() == nil {
				p.log.Error("websub: next work", slog.Any("error", err))
			}
		} else if ok {
			wait = min(max(next.Sub(p.Now()), 10*time.Millisecond), time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-p.hub.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// ExpireWebSub deletes the subscriptions whose lease has ended. It is
// scheduled work, run by one instance: Run delivers nothing to an expired
// subscription either way.
func (p *Publisher) ExpireWebSub(ctx context.Context) (int, error) {
	n, err := p.db.PurgeExpiredWebSub(ctx)
	if err != nil {
		return 0, fmt.Errorf("websub: purge expired: %w", err)
	}
	return n, nil
}

// hubWork handles what is due now: verifications, then deliveries.
func (p *Publisher) hubWork(ctx context.Context) {
	for ctx.Err() == nil {
		reqs, err := p.db.ClaimWebSubRequests(ctx, hubBatch, hubClaimLease)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Error("websub: due requests", slog.Any("error", err))
			}
			return
		}
		dels, err := p.db.ClaimWebSubDeliveries(ctx, hubBatch, hubClaimLease)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Error("websub: due deliveries", slog.Any("error", err))
			}
			return
		}
		if len(reqs) == 0 && len(dels) == 0 {
			return
		}
		sem := make(chan struct{}, hubConcurrency)
		var wg sync.WaitGroup
		for _, r := range reqs {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				p.hubVerify(ctx, r)
			}()
		}
		for _, d := range dels {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				p.hubDeliver(ctx, d)
			}()
		}
		wg.Wait()
	}
}

func hubBackoff(attempts int) time.Duration {
	return min(30*time.Second<<min(attempts, 10), time.Hour)
}

// hubVerify checks a request's intent with its callback and applies it.
func (p *Publisher) hubVerify(ctx context.Context, r store.WebSubRequest) {
	challenge := rand.Text()
	u, err := url.Parse(r.Callback)
	if err != nil {
		p.db.RetryWebSubRequest(ctx, r.ID, "bad callback", time.Time{})
		return
	}
	q := u.Query()
	q.Set("hub.mode", r.Mode)
	q.Set("hub.topic", r.Topic)
	q.Set("hub.challenge", challenge)
	if r.Mode == store.WebSubSubscribe {
		q.Set("hub.lease_seconds", strconv.Itoa(r.LeaseSeconds))
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		p.db.RetryWebSubRequest(ctx, r.ID, "bad callback", time.Time{})
		return
	}
	req.Header.Set("User-Agent", hubUserAgent)
	resp, err := p.hub.client.Do(req)
	var problem string
	retry := false
	switch {
	case err != nil:
		problem = "verification request failed: " + err.Error()
		retry = !errors.Is(err, netguard.ErrRefused)
	default:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		switch {
		case resp.StatusCode >= 500:
			problem, retry = "verification answered "+resp.Status, true
		case resp.StatusCode < 200 || resp.StatusCode > 299:
			problem = "verification refused with " + resp.Status
		case strings.TrimSpace(string(body)) != challenge:
			problem = "verification did not echo the challenge"
		}
	}
	if problem == "" {
		if _, err := p.db.CompleteWebSubRequest(ctx, r.ID); err != nil && ctx.Err() == nil {
			p.log.Error("websub: apply verified request", slog.Any("error", err))
		}
		p.log.Info("websub: verified", slog.String("mode", r.Mode), slog.String("topic", r.Topic))
		return
	}
	var at time.Time
	if retry && r.Attempts+1 < hubVerifyAttempts {
		at = p.Now().Add(hubBackoff(r.Attempts))
	}
	if err := p.db.RetryWebSubRequest(ctx, r.ID, problem, at); err != nil && ctx.Err() == nil {
		p.log.Error("websub: record verification", slog.Any("error", err))
	}
	p.log.Info("websub: not verified", slog.String("mode", r.Mode), slog.String("topic", r.Topic),
		slog.String("problem", problem), slog.Bool("retry", !at.IsZero()))
}

const hubUserAgent = "Herald WebSub hub"

// hubDeliver POSTs a subscriber's topic's newest bytes to its callback.
func (p *Publisher) hubDeliver(ctx context.Context, d store.WebSubDelivery) {
	s := d.Subscription
	finish := func(problem, result string, at time.Time) {
		p.metrics.delivered(result)
		if err := p.db.FinishWebSubDelivery(ctx, d, problem, at); err != nil && ctx.Err() == nil {
			p.log.Error("websub: record delivery", slog.Any("error", err))
		}
	}
	// The feed as stored, not this instance's copy in memory: with several
	// instances, the one delivering may not have loaded a change another
	// rendered a moment ago.
	path, _ := strings.CutPrefix(s.Topic, p.base)
	docs, err := p.db.FeedDocsAt(ctx, []string{path})
	if err != nil {
		if ctx.Err() == nil {
			finish("cannot read the feed: "+err.Error(), "retry", p.Now().Add(hubBackoff(d.Attempts)))
		}
		return
	}
	if len(docs) == 0 || docs[0].Kind != store.FeedKindCurrent {
		finish("the feed no longer exists", "failed", time.Time{})
		return
	}
	doc := docs[0]
	body := doc.Body
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Callback, bytes.NewReader(body))
	if err != nil {
		finish("bad callback", "failed", time.Time{})
		return
	}
	req.Header.Set("Content-Type", renderContentType(doc.Format))
	req.Header.Set("Link", "<"+p.hubURL+`>; rel="hub", <`+s.Topic+`>; rel="self"`)
	req.Header.Set("User-Agent", hubUserAgent)
	if s.Secret != "" {
		mac := hmac.New(sha256.New, []byte(s.Secret))
		mac.Write(body)
		req.Header.Set("X-Hub-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := p.hub.client.Do(req)
	if err == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
	switch {
	case err != nil && errors.Is(err, netguard.ErrRefused):
		var refused *netguard.RefusedError
		errors.As(err, &refused)
		finish("delivery refused: "+refused.Error(), "refused", time.Time{})
	case err == nil && resp.StatusCode >= 200 && resp.StatusCode <= 299:
		finish("", "ok", time.Time{})
	case err == nil && resp.StatusCode == http.StatusGone:
		p.metrics.delivered("gone")
		if err := p.db.RemoveWebSubSubscription(ctx, s.ID); err != nil && ctx.Err() == nil {
			p.log.Error("websub: remove gone subscription", slog.Any("error", err))
		}
	default:
		problem := "delivery failed: "
		if err != nil {
			problem += err.Error()
		} else {
			problem += resp.Status
		}
		if d.Attempts+1 >= hubDeliverAttempts {
			finish(problem, "failed", time.Time{})
			p.log.Warn("websub: delivery given up", slog.String("topic", s.Topic), slog.String("problem", problem))
			return
		}
		finish(problem, "retry", p.Now().Add(hubBackoff(d.Attempts)))
	}
}

// hubPinger tells external hubs that feeds changed (hub.mode=publish).
func (p *Publisher) hubPinger(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case urls := <-p.hub.pings:
			form := url.Values{"hub.mode": {"publish"}, "hub.url": urls}
			for _, hub := range p.cfg.WebSub.ExternalHubs {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, hub, strings.NewReader(form.Encode()))
				if err != nil {
					continue
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("User-Agent", hubUserAgent)
				resp, err := p.hub.pinger.Do(req)
				if err != nil {
					p.log.Warn("websub: ping external hub", slog.String("hub", hub), slog.Any("error", err))
					continue
				}
				io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				if resp.StatusCode < 200 || resp.StatusCode > 299 {
					p.log.Warn("websub: ping external hub", slog.String("hub", hub), slog.String("status", resp.Status))
				}
			}
		}
	}
}
